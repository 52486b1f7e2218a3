"""``python -m efe.time`` and ``python -m efe.transfer`` end to end, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from efe.frozen.freeze import load_frozen
from efe.rundir.records import read_lineage
from tests.conftest import ROOT

SMALL = ["dataset=synthetic_exp", "dataset.n_series=8", "dataset.length=100", "dataset.prediction_length=12",
         "windows.n_rotations=1"]


def efe(module: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("EFE_LLM_API_BASE", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


def only_run(root: Path) -> Path:
    runs = list((root / "time").glob("*/*"))
    assert len(runs) == 1, runs
    return runs[0]


def test_offline_run_with_a_classical_forecaster_and_transfer(tmp_path):
    proc = efe("efe.time", *SMALL, "forecaster=theta", "evolution.iterations=6", f"runs_root={tmp_path}",
               f"llm.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "offline proposer" in proc.stderr and "ETA" in proc.stderr
    run = only_run(tmp_path)
    report = json.loads((run / "report.json").read_text())
    row = report["heldout"][0]
    assert row["forecaster"] == "theta" and row["n_windows"] == 8
    assert set(row["identity"]) == {"mase", "wql", "mae"}
    assert "MASE identity" in (run / "report.md").read_text()
    lineage = read_lineage(run / "lineage.jsonl")
    assert sum(e.kind == "candidate" for e in lineage) == 6
    assert load_frozen(run / "frozen").manifest["setting"] == "time"

    transfer = efe("efe.transfer", f"run={run}", "forecasters=[seasonal_naive,theta]")
    assert transfer.returncode == 0, transfer.stderr[-3000:]
    rows = json.loads((run / "transfer.json").read_text())
    assert [r["forecaster"] for r in rows] == ["seasonal_naive", "theta"]
    assert rows[1]["program"] == row["program"]  # same program, same windows, same forecaster
    assert "| seasonal_naive |" in (run / "transfer.md").read_text()
    assert (run / "transfer.csv").read_text().startswith("forecaster,")


def test_offline_run_with_a_tiny_random_chronos2(tmp_path):
    from tests.helpers.tiny_chronos import build_tiny_chronos2

    model = build_tiny_chronos2(tmp_path / "chronos2")
    proc = efe("efe.time", *SMALL, "forecaster=chronos2", f"forecaster.model_path={model}",
               "evolution.iterations=3", f"runs_root={tmp_path / 'runs'}", f"llm.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((only_run(tmp_path / "runs") / "report.json").read_text())
    assert report["forecaster"] == "chronos2" and report["heldout"][0]["n_windows"] == 8


def test_bad_inputs_get_clear_errors(tmp_path):
    proc = efe("efe.time", "dataset=synthetic_exp", "dataset.length=30", f"runs_root={tmp_path}")
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert "too short" in proc.stderr or "shorter" in proc.stderr
    proc = efe("efe.time", "forecaster=chronos2", f"runs_root={tmp_path}")
    assert proc.returncode == 2 and "model_path" in proc.stderr
    proc = efe("efe.transfer", f"run={tmp_path / 'nope'}")
    assert proc.returncode == 2 and "not an efe run directory" in proc.stderr
