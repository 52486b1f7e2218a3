"""Where normalization pays and where it cannot be shown: real short offline runs through the CLI.

A panel where one series is 1000x the others and grows multiplicatively: a global model
(forecaster=mlforecast) gains from a per-series scaling or variance move, and the search finds one
that beats the identity on held-out windows. A panel of pure noise freezes the identity. A single
short trending series has fewer effective selection + claim windows than the evidence minimum:
the identity is frozen whatever the search found, and the report says why.
"""

from __future__ import annotations

import json

import numpy as np

from efe.proposer.time_moves import MANIFEST
from tests.test_time_run import efe
from tests.test_time_selection import run_on

# tiny and fast: few trees, no conformal refits (seasonal naive spread), two finalists, 4 spread origins
TINY_ML = ["forecaster=mlforecast", "forecaster.params.n_estimators=10", "forecaster.params.num_leaves=7",
           "forecaster.params.min_child_samples=3", "forecaster.params.conformal_windows=0"]
FAST = ("selection.top_k=2", "series_loss.se_origins=4")


def scale_panel() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(120)
    series = {f"small{k}": 20 + 5 * k + 6 * np.sin(2 * np.pi * (t + k) / 12) + rng.standard_normal(len(t))
              for k in range(4)}
    series["big"] = (20000 * np.exp(0.02 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
                     * np.exp(0.02 * rng.standard_normal(len(t))))
    return series


def test_one_series_1000x_larger_and_growing_finds_a_scaling_move_with_mlforecast(tmp_path):
    # run_on runs with evolution.deterministic=true (and the outcome is structural: trees cannot
    # extrapolate the growing series nor resolve the small ones next to it)
    out = run_on(tmp_path, scale_panel(), "four small seasonal series and one 1000x larger, growing multiplicatively",
                 iterations=4, forecaster=TINY_ML, extra=FAST)
    report = out["report"]
    assert report["selection"]["decision"] == "gain", out["md"][-3000:]
    manifest = next(line for line in out["frozen"].splitlines() if line.strip().startswith(MANIFEST))
    assert any(move in manifest for move in ("log", "boxcox", "scale", "detrend", "difference", "anchor")), manifest
    held = report["heldout"][0]
    assert held["forecaster"] == "mlforecast" and held["fallback"] == 0
    assert held["gain"]["log_mase"] > 0 and held["improvement_pct"]["mase"] > 0, held
    assert "significant" in held["series_losses"] and "raw" in held["series_losses"]
    assert report["selection"]["evidence"]["enough"]

    # efe.transfer carries the program found with mlforecast to another forecaster (the other way round:
    # test_mlforecast.py), and in front of mlforecast itself reproduces the run's held-out numbers
    transfer = efe("efe.transfer", f"run={out['run']}", "forecasters=[mlforecast,seasonal_naive]")
    assert transfer.returncode == 0, transfer.stderr[-3000:]
    rows = json.loads((out["run"] / "transfer.json").read_text())
    assert [r["forecaster"] for r in rows] == ["mlforecast", "seasonal_naive"]
    assert rows[0]["program"] == held["program"]
    # seasonal naive repeats a past value, so any pointwise transform (log, a per-series scale) leaves its
    # forecasts as they were: only that the program ran in front of it without falling back can be asserted
    assert rows[1]["fallback"] == 0 and np.isfinite(rows[1]["program"]["mase"])


def test_a_panel_without_structure_freezes_the_identity_with_mlforecast(tmp_path):
    rng = np.random.default_rng(3)  # run_on runs with evolution.deterministic=true
    series = {f"s{k}": 100.0 + 5.0 * rng.standard_normal(120) for k in range(4)}
    out = run_on(tmp_path, series, "independent noise around a constant level", iterations=4, forecaster=TINY_ML,
                 extra=FAST)
    report = out["report"]
    assert report["selection"]["decision"] in ("no gain found", "not confirmed"), out["md"][-3000:]
    assert MANIFEST not in out["frozen"]
    assert report["heldout"][0]["improvement_pct"]["mase"] == 0.0


def test_a_single_short_trending_series_freezes_the_identity_and_says_why(tmp_path):
    # 89 quarterly points of a smooth trend: 4 selection and 2 claim windows half a horizon apart are worth
    # 3 effective windows, fewer than selection.min_windows_total (8)
    t = np.arange(89)
    series = {"population": 1000.0 * np.exp(0.012 * t) + 3.0 * np.sin(t)}
    out = run_on(tmp_path, series, "a smooth trending quarterly population series", iterations=4,
                 forecaster=["forecaster=theta"], horizon=8, season=4, freq="QS")
    report = out["report"]
    selection = report["selection"]
    assert selection["decision"] == "not enough evidence", out["md"][-3000:]
    assert selection["evidence"]["enough"] is False and selection["evidence"]["total"] == 3.0
    assert "selection.min_windows_total=8" in selection["evidence"]["reason"]
    assert MANIFEST not in out["frozen"] and report["heldout"][0]["improvement_pct"]["mase"] == 0.0
    md = out["md"]
    assert "## Evidence" in md and "not enough: no program can be confirmed" in md
    assert "selection.min_windows_total=8" in md
