"""``python -m efe.tab`` under faults a real user meets: odd column names, a dead LLM endpoint,
concurrent runs, kill -9 and resume, resume with overrides, an unusable runs_root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import efe
from efe.rundir.records import read_lineage
from tests.conftest import NO_PLOTS, ROOT, ratio_table
from tests.helpers.fake_openai import FakeOpenAI
from tests.test_tab_run import GOOD_1, efe_tab, fenced, only_run

ODD_NAMES = {"a": "price[usd]", "b": "a{b}", "n1": '"q"', "n2": "x,y"}


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "ratio.csv"
    ratio_table(300, seed=3).to_csv(path, index=False)
    return path


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("scorer", ["lightgbm", "tree"])
def test_column_names_with_json_and_csv_specials_run_to_a_frozen_program(tmp_path, scorer):
    table = ratio_table(300, seed=4).rename(columns=ODD_NAMES)
    table["k:v"] = table['"q"'] * 2
    csv = tmp_path / "odd.csv"
    table.to_csv(csv, index=False)
    proc = efe_tab(tmp_path, csv, "llm=offline", f"scorer={scorer}", "evolution.iterations=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    no_traceback(proc)
    run = only_run(tmp_path)
    lineage = read_lineage(run / "lineage.jsonl")
    seed = next(e for e in lineage if e.kind == "seed")
    assert seed.verdict == "valid", seed.reason
    report = json.loads((run / "report.json").read_text())
    assert {r["model"] for r in report["heldout"]} == {"lightgbm", "tree"}
    assert f"sandbox isolation: {report['sandbox_mode']}" in proc.stderr
    assert f"Sandbox isolation of candidate programs: {report['sandbox_mode']}" in (run / "report.md").read_text()
    manifest = json.loads((run / "frozen" / "manifest.json").read_text())
    names = [c["name"] for c in manifest["input_schema"]]
    assert names == [*ODD_NAMES.values(), "k:v"]
    out = efe.load_program(run).transform(table.drop(columns=["label"]))
    assert set(names) <= set(out.columns) or report["winner"]["dropped_columns"]


@pytest.mark.parametrize("fault,reason", [("500", "HTTP 500"), ("hang", "timeout"), ("malformed", "malformed")])
def test_dead_llm_endpoint_trips_the_circuit_breaker(tmp_path, small_csv, fault, reason):
    with FakeOpenAI(lambda messages: fenced(GOOD_1), fault=fault) as server:
        proc = efe_tab(tmp_path, small_csv, "llm=openai", f"llm.api_base={server.url}",
                       "llm.models=[{name: fake-model, weight: 1}]", "evolution.iterations=50", "llm.timeout=1",
                       "llm.retries=1", "llm.retry_delay=0.2", "llm.max_consecutive_failures=3", "selection.top_k=0",
                       env={"OPENAI_API_KEY": "sk-test"})
    assert proc.returncode == 4, proc.stderr[-3000:]
    no_traceback(proc)
    calling = server.request_times[-1] - server.request_times[0]
    assert calling < 30, f"kept calling a dead endpoint for {calling:.0f}s"
    line = next(l for l in proc.stderr.splitlines() if "stopped by LLM failures" in l)
    assert reason in line and server.url in line, line
    run = only_run(tmp_path)
    report = json.loads((run / "report.json").read_text())
    assert report["search"]["status"] == "stopped by LLM failures"
    assert reason in report["search"]["stop_reason"]
    assert "stopped by LLM failures" in (run / "report.md").read_text()
    assert (run / "frozen" / "program.py").exists()
    errors = [json.loads(l) for l in (run / "llm.jsonl").read_text().splitlines()]
    assert errors and all(reason in e["error"] for e in errors)
    # one retry layer: each failed call is at most retries + 1 = 2 requests
    assert len(server.requests) <= 2 * len(errors)


def test_a_run_whose_every_llm_call_failed_below_the_breaker_limit_is_stopped_by_llm_failures(tmp_path, small_csv):
    with FakeOpenAI(lambda messages: fenced(GOOD_1), fault="500") as server:
        proc = efe_tab(tmp_path, small_csv, "llm=openai", f"llm.api_base={server.url}",
                       "llm.models=[{name: fake-model, weight: 1}]", "evolution.iterations=2", "llm.retries=0",
                       "llm.max_consecutive_failures=5", "selection.top_k=0", "report.models=[tree]",
                       env={"OPENAI_API_KEY": "sk-test"})
    assert proc.returncode == 4, proc.stderr[-3000:]
    no_traceback(proc)
    run = only_run(tmp_path)
    errors = [json.loads(l) for l in (run / "llm.jsonl").read_text().splitlines()]
    assert 0 < len(errors) < 5 and all("HTTP 500" in e["error"] for e in errors)
    line = next(l for l in proc.stderr.splitlines() if "stopped by LLM failures" in l)
    assert f"all {len(errors)} LLM call(s) of the run failed" in line and "HTTP 500" in line, line
    report = json.loads((run / "report.json").read_text())
    assert report["search"]["status"] == "stopped by LLM failures"


def test_two_runs_started_together_in_one_runs_root_both_finish(tmp_path, small_csv):
    args = [sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={small_csv}", "dataset.target=label",
            f"runs_root={tmp_path / 'runs'}", "scorer=tree", "llm=offline", "report.models=[tree]",
            "evolution.iterations=2", f"llm.cache_dir={tmp_path / 'cache'}",
            # both ask for the same directory name, as two runs started in the same second do
            "hydra.run.dir='${efe_run_dir:${runs_root},tab,same,null,${resume},same-second}'"]
    env = {k: v for k, v in os.environ.items() if k != "EFE_LLM_API_BASE"}
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
        assert "Traceback" not in err
    runs = sorted((tmp_path / "runs" / "tab").glob("*/*"))
    assert [r.name for r in runs] == ["same-second", "same-second-2"]
    for run in runs:
        assert json.loads((run / "spec.json").read_text())["run_dir"] == str(run.resolve())
        assert (run / "frozen" / "manifest.json").exists()


@pytest.mark.parametrize("root", ["file-as-parent", "read-only-dir", "proc"])
def test_unusable_runs_root_is_one_line_and_exit_2(tmp_path, small_csv, root):
    if root == "file-as-parent":
        blocker = tmp_path / "blocker"
        blocker.write_text("not a directory")
        runs_root = blocker / "runs"
    elif root == "read-only-dir":
        if os.geteuid() == 0:
            pytest.skip("root ignores directory permissions")
        runs_root = tmp_path / "ro"
        runs_root.mkdir(mode=0o500)
    else:
        runs_root = Path("/proc/efe-runs")
    proc = subprocess.run([sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={small_csv}",
                           "dataset.target=label", f"runs_root={runs_root}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    no_traceback(proc)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: runs_root"), proc.stderr


def resume(run: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "efe.tab", f"resume={run}", NO_PLOTS, *overrides], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_kill_9_between_checkpoints_then_resume_leaves_one_entry_per_iteration(tmp_path, small_csv):
    args = [sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={small_csv}", "dataset.target=label",
            f"runs_root={tmp_path / 'runs'}", "scorer=tree", "llm=offline", "report.models=[tree]",
            "evolution.iterations=60", "evolution.openevolve.checkpoint_interval=3",
            f"llm.cache_dir={tmp_path / 'cache'}"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    run = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            runs = list((tmp_path / "runs" / "tab").glob("*/*"))
            if runs and (runs[0] / "evolution" / "checkpoints" / "checkpoint_3").exists():
                run = runs[0]
                done = [e.iteration for e in read_lineage(run / "lineage.jsonl") if e.kind == "candidate"]
                if done and max(done) % 3 != 0 and max(done) > 4:
                    break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert run is not None, "no checkpoint was written in time"
    with open(run / "lineage.jsonl", "a") as fh:
        fh.write('{"kind": "candidate", "iteration": 9')  # a write torn by the kill
    second = resume(run, "evolution.iterations=12")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "torn" in (run / "efe.log").read_text()
    lineage = read_lineage(run / "lineage.jsonl")
    per_iteration = Counter(e.iteration for e in lineage if e.kind in ("candidate", "no_program"))
    assert per_iteration and max(per_iteration.values()) == 1, per_iteration
    assert sorted(per_iteration) == list(range(1, max(per_iteration) + 1))
    assert len([e for e in lineage if e.kind == "seed"]) == 1


def test_resume_applies_a_group_override_and_refuses_a_fixed_one(tmp_path, small_csv):
    first = efe_tab(tmp_path, small_csv, "llm=offline", "evolution.iterations=2")
    assert first.returncode == 0, first.stderr[-3000:]
    run = only_run(tmp_path)
    refused = resume(run, "scorer=lightgbm", "evolution.iterations=4")
    assert refused.returncode == 2
    no_traceback(refused)
    assert "scorer" in refused.stderr and "scorer=tree" in refused.stderr
    assert recorded_config(run)["scorer"]["name"] == "tree"

    (run / "responses.json").write_text(json.dumps([fenced(GOOD_1)] * 4))
    switched = resume(run, "llm=replay", f"llm.path={run / 'responses.json'}", "evolution.iterations=4")
    assert switched.returncode in (0, 3), switched.stderr[-3000:]
    no_traceback(switched)
    recorded = recorded_config(run)
    assert recorded["llm"]["backend"] == "replay" and recorded["llm"]["path"] == str(run / "responses.json")
    assert recorded["scorer"]["name"] == "tree"
    assert json.loads((run / "report.json").read_text())["search"]["llm"] == "replay"


def recorded_config(run: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(run / "config.yaml"))


def test_sigterm_after_the_search_freezes_and_reports_like_sigint(tmp_path, small_csv):
    args = [sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={small_csv}", "dataset.target=label",
            f"runs_root={tmp_path / 'runs'}", "scorer=tree", "llm=offline", "evolution.iterations=3",
            f"llm.cache_dir={tmp_path / 'cache'}"]
    env = {k: v for k, v in os.environ.items() if k != "EFE_LLM_API_BASE"}
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("search finished"):
                proc.send_signal(signal.SIGTERM)  # during the final selection
                break
        seen.append(proc.stderr.read())
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(seen)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "SIGTERM received after the search" in err
    run = only_run(tmp_path)
    assert (run / "frozen" / "manifest.json").exists() and (run / "report.md").exists()
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"


# A SIGTERM delivered in the gap between the end of the search and the start of the final selection: the search's
# last checkpoint is being written, openevolve's handlers are gone and the selection's are not yet in place.
SIGTERM_IN_THE_GAP = """
import os, signal, sys
import efe.search.openevolve_adapter as oe
from efe.tab.__main__ import main

save = oe.save_checkpoint

def save_after_a_sigterm(controller):
    os.kill(os.getpid(), signal.SIGTERM)
    save(controller)

oe.save_checkpoint = save_after_a_sigterm
sys.argv = ["efe.tab", *sys.argv[1:]]
main()
"""


def test_sigterm_between_the_search_and_the_selection_freezes_and_reports(tmp_path, small_csv):
    args = [sys.executable, "-c", SIGTERM_IN_THE_GAP, "dataset=csv", f"dataset.path={small_csv}",
            "dataset.target=label", f"runs_root={tmp_path / 'runs'}", "scorer=tree", "llm=offline",
            "evolution.iterations=2", f"llm.cache_dir={tmp_path / 'cache'}"]
    env = {k: v for k, v in os.environ.items() if k != "EFE_LLM_API_BASE"}
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 130, (proc.returncode, proc.stderr[-3000:])
    no_traceback(proc)
    assert "SIGTERM received after the search" in proc.stderr
    run = only_run(tmp_path)
    assert (run / "frozen" / "manifest.json").exists() and (run / "report.md").exists()
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
