"""``evolution.executor=ray``: evaluations as Ray tasks, a dead worker costs one candidate, never the run.

Needs the extra ``efe[ray]`` (CI installs it with the dev extra). One local Ray runtime
(``ray.init(num_cpus=2)``) is shared by the module: the searches join it through ``executor.address``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from efe.rundir.jsonl import read_jsonl
from efe.rundir.records import read_lineage
from tests.conftest import IDENTITY_TAB, NO_PLOTS, ROOT, make_spec, ratio_table, tab_program
from tests.test_tab_run import SYNTAX, fenced

ray = pytest.importorskip("ray", reason="evolution.executor=ray needs the extra: pip install 'efe[ray]'")

GATE = tab_program("return X.assign(centred=X['a'] - X['a'].mean())")
RATIO = tab_program("out = X.copy()\nout['log_ratio'] = np.log(X['a'] / X['b'])\nreturn out")
PRODUCT = tab_program("out = X.copy()\nout['ab'] = X['a'] * X['b']\nreturn out")


@pytest.fixture(scope="module")
def worker_tmp():
    """The temporary directory of the Ray workers (they inherit ``TMPDIR`` from the runtime's start)."""
    directory = Path(tempfile.mkdtemp(prefix="efe-rt-", dir="/tmp"))  # short: Ray's socket paths live under it
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(directory)
    yield directory
    if before is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_address(worker_tmp):
    ray.init(num_cpus=2, include_dashboard=False, namespace="efe-tests", logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def labelled_copies(directory: Path) -> list[Path]:
    """The workers' temporary copies of the training data (``efe-ray-*``) still on disk."""
    return sorted(directory.glob("efe-ray-*"))


class DyingEvaluator:
    """Its worker process dies in every evaluation, as on a lost node."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec

    def evaluate(self, source: str):
        os._exit(1)


def test_a_worker_that_dies_twice_costs_that_candidate_only(ray_address, worker_tmp, tmp_path):
    from evaluators.ray_executor import (
        evaluate_remotely,
        infrastructure_outcome,
        start_gate,
    )
    from evaluators.tabular.evaluator import TabEvaluator

    spec = make_spec(tmp_path, ratio_table(200), "label")
    spec["executor"] = {"kind": "ray", "address": ray_address, "namespace": "efe-tests", "gate": "gate-unit",
                        "max_in_flight": 2, "retries": 1}
    gate = start_gate(spec, spec["executor"])
    try:
        outcome, failures = evaluate_remotely(DyingEvaluator, spec, IDENTITY_TAB, "evaluate")
        assert outcome is None and len(failures) == 2, failures  # first attempt, one retry
        lost = infrastructure_outcome(TabEvaluator(spec).internal_error(IDENTITY_TAB, "Ray worker lost"), failures)
        assert lost.verdict == "invalid:infrastructure" and "lost 2 time(s)" in lost.reason
        assert {"combined_score", "generated_feature_count"} <= set(lost.metrics)  # MAP-Elites axes present
        outcome, failures = evaluate_remotely(TabEvaluator, spec, IDENTITY_TAB, "evaluate")
        assert failures == [] and outcome.valid and outcome.metrics["combined_score"] == pytest.approx(0.5)
        assert labelled_copies(worker_tmp) == []  # the worker's copy of the data went with the evaluation
    finally:
        ray.kill(gate)


def evaluating_workers() -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if cmdline.startswith(b"ray::evaluate_on_worker"):
            found.append(int(pid))
    return found


def kill_one_evaluating_worker(killed: list[int], stop: threading.Event) -> None:
    while not stop.is_set() and not killed:
        for pid in evaluating_workers():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            break
        time.sleep(0.01)


def search(tmp_path: Path, name: str, *overrides: str) -> Path:
    csv = tmp_path / "ratio.csv"
    if not csv.exists():
        ratio_table(400, seed=1).to_csv(csv, index=False)
        (tmp_path / "responses.json").write_text(json.dumps([fenced(p) for p in (SYNTAX, GATE, RATIO, PRODUCT)]))
    env = {k: v for k, v in os.environ.items() if k != "EFE_LLM_API_BASE"}
    args = [sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={csv}", "dataset.target=label",
            f"runs_root={tmp_path / name}", "scorer=tree", "report.models=[tree]", "llm=replay",
            f"llm.path={tmp_path / 'responses.json'}", "evolution.iterations=4", "selection.top_k=2",
            "evolution.openevolve.evaluator.parallel_evaluations=2", NO_PLOTS, *overrides]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next((tmp_path / name / "tab").glob("*/*"))


def lineage_shape(run: Path) -> tuple[set, set, set, set]:
    entries = read_jsonl(run / "lineage.jsonl")  # the lines as written: the keys are part of the shape
    return ({k for e in entries for k in e}, {e.get("verdict") for e in entries},
            {k for e in entries for k in e.get("metrics", {})}, {e.get("kind") for e in entries})


@pytest.mark.timeout(1200)  # two searches, one joining Ray: slow on a shared machine
def test_ray_search_matches_the_local_one_and_survives_a_killed_worker(ray_address, worker_tmp, tmp_path):
    local = search(tmp_path, "local")
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_one_evaluating_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        remote = search(tmp_path, "ray", "evolution.executor=ray", f"executor.address={ray_address}",
                        "executor.max_in_flight=2")
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray worker was seen evaluating a program"
    assert labelled_copies(worker_tmp) == []  # no labelled copy of the training data left on the workers
    log = (remote / "efe.log").read_text()  # the final selection's re-scoring ran on Ray too
    assert "scoring after the search on the Ray executor (score_fresh)" in log and "scoring on the driver" not in log
    spec = json.loads((remote / "spec.json").read_text())
    assert spec["executor"]["kind"] == "ray" and spec["executor"]["address"] == ray_address
    assert lineage_shape(remote) == lineage_shape(local)
    assert len(read_lineage(remote / "lineage.jsonl")) == len(read_lineage(local / "lineage.jsonl"))
    for run in (local, remote):
        manifest = json.loads((run / "frozen" / "manifest.json").read_text())
        assert manifest["input_schema"] == json.loads((local / "frozen" / "manifest.json").read_text())["input_schema"]
        assert manifest["output_schema"] and json.loads((run / "report.json").read_text())["winner"]["source"]
