"""EFE-Time does no harm: noise freezes the identity; a real multiplicative structure is found and its
held-out gain lies inside the interval the report claims. Real short offline runs through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from efe.time.moves import MANIFEST
from tests.test_time_run import efe, only_run


def write_long_csv(path: Path, series: dict[str, np.ndarray]) -> Path:
    frames = [pd.DataFrame({"item_id": k, "timestamp": pd.date_range("2000-01-01", periods=len(v), freq="MS"),
                            "target": v}) for k, v in series.items()]
    pd.concat(frames).to_csv(path, index=False)
    return path


def run_on(tmp_path: Path, series: dict[str, np.ndarray], description: str, iterations: int) -> dict:
    csv = write_long_csv(tmp_path / "data.csv", series)
    proc = efe("efe.time", "dataset=long", f"dataset.path={csv}", f"dataset.description='{description}'",
               "dataset.prediction_length=12", "dataset.season=12", "forecaster=theta", "heldout.windows=3",
               "heldout.stride=0.5", "windows.n_windows=4", f"evolution.iterations={iterations}", f"runs_root={tmp_path / 'runs'}",
               f"llm.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path / "runs")
    return {"report": json.loads((run / "report.json").read_text()), "md": (run / "report.md").read_text(),
            "frozen": (run / "frozen" / "program.py").read_text()}


def test_noise_around_a_level_freezes_the_identity(tmp_path):
    rng = np.random.default_rng(0)
    series = {f"s{k}": 100.0 + 5.0 * rng.standard_normal(132) for k in range(4)}
    out = run_on(tmp_path, series, "independent noise around a constant level", iterations=6)
    report = out["report"]
    assert report["selection"]["decision"] == "no gain found"
    assert len(report["selection"]["table"]) >= 2  # the identity and at least one candidate were compared
    assert report["winner"]["id"] == next(r["id"] for r in report["selection"]["table"] if r["kind"] == "seed")
    assert "no gain found" in out["md"] and MANIFEST not in out["frozen"]
    assert report["heldout"][0]["improvement_pct"]["mase"] == 0.0


def test_multiplicative_growth_and_season_finds_a_variance_stabilising_program(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(144)
    series = {}
    for k in range(4):
        level = 10.0 * (k + 1) * np.exp(0.03 * t)
        season = 1.0 + 0.35 * np.sin(2 * np.pi * (t + k) / 12)
        series[f"s{k}"] = level * season * np.exp(0.03 * rng.standard_normal(len(t)))
    out = run_on(tmp_path, series, "multiplicative growth with a yearly season that grows with the level",
                 iterations=10)
    report = out["report"]
    assert report["selection"]["decision"] == "gain", out["md"][-3000:]
    manifest = next(line for line in out["frozen"].splitlines() if line.strip().startswith(MANIFEST))
    assert "log" in manifest or "boxcox" in manifest, manifest
    lo, hi = report["selection"]["claimed"]["interval"]
    realised = report["heldout"][0]["gain"]["log_mase"]
    assert lo > 0 and lo <= realised <= hi, (lo, realised, hi)
