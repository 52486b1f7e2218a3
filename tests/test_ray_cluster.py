"""A real 2-node Ray cluster (``ray start --head`` plus ``ray start --address``) losing a node mid-run.

One test, on purpose: starting two Ray nodes takes a while. The run joins the cluster through
``executor.address``; its gate lives on the driver's node (the head here), so killing the other
node's raylet while it evaluates a program costs at most that evaluation's attempt: the search
either finishes with real evaluations (exit 0, "Done") or stops with the infrastructure exit
status (5, "Stopped"), never "Done" over broken evaluations. The nodes are stopped by process id
in the finalizer (never ``ray stop``, which would stop every Ray runtime of the user on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from efe.rundir.records import read_lineage
from tests.conftest import NO_PLOTS, ROOT, ratio_table, tab_program
from tests.test_tab_run import fenced

pytest.importorskip("ray", reason="evolution.executor=ray needs the extra: pip install 'efe[ray]'")

RAY = str(Path(sys.executable).with_name("ray"))
PROGRAMS = [tab_program("out = X.copy()\nout['log_ratio'] = np.log(X['a'] / X['b'])\nreturn out"),
            tab_program("out = X.copy()\nout['ab'] = X['a'] * X['b']\nreturn out")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry)] = (ppid, cmdline)
    return found


def descendants(root: int, table: dict[int, tuple[int, bytes]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        parent = todo.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent]
        out += children
        todo += children
    return out


def node_processes(directory: Path) -> list[int]:
    """The processes of the Ray node(s) whose temp dir is under ``directory``, with their workers."""
    table = processes()
    mine = [pid for pid, (_, cmdline) in table.items() if str(directory).encode() in cmdline and pid != os.getpid()]
    return list(dict.fromkeys(mine + [d for pid in mine for d in descendants(pid, table)]))


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_node(options: list[str], directory: Path, env: dict) -> None:
    """``ray start`` one node of one CPU; again if it timed out (its agents start slowly on a loaded machine)."""
    for _ in range(3):
        proc = subprocess.run([RAY, "start", *options, "--num-cpus=1", f"--temp-dir={directory}"], env=env,
                              capture_output=True, text=True, timeout=180)
        if proc.returncode == 0:
            return
        kill(node_processes(directory))
    pytest.fail(f"ray start {' '.join(options)} failed three times:\n{(proc.stdout + proc.stderr)[-2000:]}")


@pytest.fixture
def two_nodes():
    """(address, the worker node's temp dir, the environment) of a 2-node cluster on this machine."""
    root = Path(tempfile.mkdtemp(prefix="efe-rc-", dir="/tmp"))  # short: Ray's socket paths live under it
    env = {k: v for k, v in os.environ.items() if k != "EFE_LLM_API_BASE"}
    env.update(TMPDIR=str(root), RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
               # a lost node is noticed within a few seconds (defaults: tens of seconds)
               RAY_health_check_period_ms="1000", RAY_health_check_timeout_ms="1000",
               RAY_health_check_failure_threshold="3", RAY_agent_register_timeout_ms="120000",
               RAY_raylet_start_wait_time_s="120")  # slow starts on a loaded machine
    port = free_port()
    address = f"127.0.0.1:{port}"
    try:
        start_node(["--head", f"--port={port}", "--include-dashboard=false"], root / "head", env)
        start_node([f"--address={address}"], root / "worker", env)
        yield address, root / "worker", env
    finally:
        kill(node_processes(root / "worker"))
        kill(node_processes(root))
        shutil.rmtree(root, ignore_errors=True)


def kill_the_worker_node_mid_evaluation(worker_dir: Path, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the worker node's raylet and its workers once one of them is evaluating a program."""
    while not stop.is_set():
        table = processes()
        raylets = [pid for pid, (_, cmd) in table.items()
                   if b"raylet" in cmd.split(b"\0")[0] and str(worker_dir).encode() in cmd]
        for raylet in raylets:
            below = descendants(raylet, table)
            if any(table[pid][1].startswith((b"ray::evaluate_on_worker", b"ray::call_on_worker"))
                   for pid in below if pid in table):
                kill([raylet, *below])
                killed.append(raylet)
                return
        time.sleep(0.02)


@pytest.mark.timeout(900)  # two node starts and a run: minutes when the machine is shared
def test_a_run_on_a_two_node_cluster_survives_losing_the_worker_node(two_nodes, tmp_path):
    address, worker_dir, env = two_nodes
    csv = tmp_path / "ratio.csv"
    ratio_table(300, seed=1).to_csv(csv, index=False)
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps([fenced(p) for p in PROGRAMS]))
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_the_worker_node_mid_evaluation, args=(worker_dir, killed, stop), daemon=True)
    killer.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={csv}", "dataset.target=label",
             f"runs_root={tmp_path / 'runs'}", "scorer=tree", "report.models=[tree]", "llm=replay",
             f"llm.path={responses}", f"evolution.iterations={len(PROGRAMS)}", "selection.top_k=1",
             "evolution.openevolve.evaluator.parallel_evaluations=2", "evolution.executor=ray",
             f"executor.address={address}", "executor.max_in_flight=2", NO_PLOTS],
            cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    finally:
        stop.set()
        killer.join()
    run = next((tmp_path / "runs" / "tab").glob("*/*"))
    lineage = read_lineage(run / "lineage.jsonl")
    lost = [e for e in lineage if e.verdict == "invalid:infrastructure"]
    evaluated = [e for e in lineage if e.kind == "candidate" and e.verdict != "invalid:infrastructure"]
    status = json.loads((run / "status.json").read_text())
    out = proc.stdout + proc.stderr
    if os.environ.get("EFE_RAY_CLUSTER_LOG"):  # what happened, for a person watching
        Path(os.environ["EFE_RAY_CLUSTER_LOG"]).write_text(
            f"exit {proc.returncode}, killed {killed}\n{[(e.kind, e.verdict, e.reason) for e in lineage]}\n"
            f"{out}\n{(run / 'efe.log').read_text()}")
    assert killed, "the worker node never ran an evaluation"
    if proc.returncode == 0:  # finished: every program evaluated for real, the lost attempt retried elsewhere
        assert status["status"] == "finished" and "Done in" in out, out[-3000:]
        assert len(evaluated) == len(PROGRAMS) and not lost, [(e.kind, e.verdict, e.reason) for e in lineage]
        assert all(e.valid for e in evaluated) and "scoring on the driver" not in (run / "efe.log").read_text()
        assert "scoring after the search on the Ray executor (score_fresh)" in (run / "efe.log").read_text()
    else:  # stopped by the infrastructure breaker: its own exit status and line, never "Done"
        assert proc.returncode == 5, out[-3000:]
        assert status["status"] == "stopped by infrastructure failures" and "Done in" not in out
        assert "Stopped (stopped by infrastructure failures)" in out
    assert not list(Path(env["TMPDIR"]).glob("efe-ray-*"))  # no labelled copy of the data left on the nodes
