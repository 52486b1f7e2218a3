"""``python -m efe.time`` and ``python -m efe.transfer`` end to end, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from efe.frozen.freeze import load_frozen
from efe.rundir.records import read_lineage
from tests.conftest import NO_PLOTS, ROOT

SMALL = ["dataset=synthetic_exp", "dataset.n_series=8", "dataset.length=100", "dataset.prediction_length=12",
         "windows.n_rotations=1"]


def efe(module: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("EFE_LLM_API_BASE", None)
    runs = (NO_PLOTS,) if module in ("efe.tab", "efe.time") else ()
    return subprocess.run([sys.executable, "-m", module, *runs, *args], cwd=ROOT, capture_output=True, text=True,
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


def test_a_series_with_a_run_of_nan_is_refused_in_one_line_or_filled_by_dataset_nan_policy(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    parts = []
    for k in range(4):
        y = 10 + k + np.arange(100) * 0.1 + np.sin(np.arange(100) * 2 * np.pi / 12) + rng.normal(0, 0.1, 100)
        if k == 1:
            y[40:52] = np.nan  # a year without data
        parts.append(pd.DataFrame({"item_id": f"s{k}", "timestamp": pd.date_range("2000-01-01", periods=100,
                                                                                  freq="MS"), "target": y}))
    path = tmp_path / "gap.csv"
    pd.concat(parts).to_csv(path, index=False)
    args = ["dataset=long", f"dataset.path={path}", "dataset.prediction_length=12", "forecaster=theta",
            "windows.n_rotations=1", f"llm.cache_dir={tmp_path / 'cache'}", "evolution.iterations=1"]
    refused = efe("efe.time", *args, f"runs_root={tmp_path / 'refused'}")
    assert refused.returncode == 2, refused.stderr[-3000:]
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: '{path}': series 's1' has a gap of 12 missing values in a row, 2003-05-01 to "
                      "2004-04-01; runs of more than 11 missing values are gaps (dataset.max_nan_run). Set "
                      "dataset.nan_policy=fill (linear interpolation inside a series, gaps at its ends trimmed) or "
                      "drop (leave such series out)"], refused.stderr[-3000:]
    assert "Traceback" not in refused.stderr and not list((tmp_path / "refused").rglob("lineage.jsonl"))

    filled = efe("efe.time", *args, f"runs_root={tmp_path / 'runs'}", "dataset.nan_policy=fill")
    assert filled.returncode == 0, filled.stderr[-3000:]
    assert "dataset.nan_policy=fill: filled or trimmed 1 gap(s) in 1 series (series 's1'" in filled.stderr
    run = only_run(tmp_path / "runs")
    candidates = [e for e in read_lineage(run / "lineage.jsonl") if e.kind == "candidate"]
    assert candidates and all(e.verdict == "valid" for e in candidates), candidates
