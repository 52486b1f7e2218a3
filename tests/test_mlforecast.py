"""forecaster=mlforecast (one global LightGBM across series) and the bundled real panels, offline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from efe.datasets.timeseries import load_timeseries
from efe.frozen.freeze import load_frozen
from efe.transfer import forecaster_config
from evaluators.timeseries.evaluator import TimeEvaluator
from evaluators.timeseries.forecasters import make_forecaster
from tests.test_time_evaluator import IDENTITY, spec_for, time_program
from tests.test_time_run import efe, only_run

LEVELS = [0.1, 0.5, 0.9]
HORIZON = 4
SEASON = 4
TINY = {"n_estimators": 10, "num_leaves": 7, "min_child_samples": 3}


def panel(n_series: int = 5, length: int = 48) -> list[np.ndarray]:
    """Related quarterly series on different levels: what a global model learns across."""
    rng = np.random.default_rng(0)
    t = np.arange(length)
    return [(10.0 + 5 * k) * (1 + 0.2 * np.sin(2 * np.pi * t / SEASON)) + 0.1 * k * t + rng.normal(0, 0.3, length)
            for k in range(n_series)]


def model(**params):
    return make_forecaster({"name": "mlforecast", "params": {**TINY, **params}})


def check(out: np.ndarray, n: int) -> None:
    assert out.shape == (n, HORIZON, len(LEVELS)) and out.dtype == np.float64
    assert np.isfinite(out).all()
    assert (np.diff(out, axis=-1) >= 0).all()


def test_one_global_fit_per_forecast_origin(monkeypatch):
    from mlforecast import MLForecast

    fits: list[list[str]] = []
    depth = [0]  # conformal intervals refit inside fit (cross-validation): count the outer calls
    original = MLForecast.fit

    def recording_fit(self, df, *args, **kwargs):
        if depth[0] == 0:
            fits.append(sorted(df["unique_id"].unique().tolist()))
        depth[0] += 1
        try:
            return original(self, df, *args, **kwargs)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(MLForecast, "fit", recording_fit)
    hs = panel()
    earlier = hs[0][:40]  # the first series at an earlier origin: its later history holds this window's future
    out = model().forecast(hs + [earlier], HORIZON, SEASON, LEVELS)
    check(out, 6)
    assert sorted(len(f) for f in fits) == [1, 5]  # all five series of the latest origin in ONE fit call
    alone = model().forecast(hs[:1], HORIZON, SEASON, LEVELS)
    assert not np.allclose(alone[0], out[0])  # series 0's forecast depends on the other series: a global model


def test_deterministic_with_the_seed_and_conformal_quantiles():
    hs = panel()
    first = model(seed=3).forecast(hs, HORIZON, SEASON, LEVELS)
    check(first, len(hs))
    np.testing.assert_array_equal(first, model(seed=3).forecast(hs, HORIZON, SEASON, LEVELS))
    assert (first[..., 2] > first[..., 0]).any()  # conformal intervals, not a point forecast repeated
    # The median is the LightGBM point forecast with or without intervals; without conformal windows the
    # spread around it is the seasonal naive's (the documented fallback).
    point_only = model(seed=3, conformal_windows=0).forecast(hs, HORIZON, SEASON, LEVELS)
    np.testing.assert_allclose(point_only[..., 1], first[..., 1])
    naive = make_forecaster({"name": "seasonal_naive"}).forecast(hs, HORIZON, SEASON, LEVELS)
    np.testing.assert_allclose(point_only - point_only[..., 1:2], naive - naive[..., 1:2], atol=1e-9)


def test_awkward_histories_fall_back_per_series():
    hs = panel(3) + [np.array([4.0, np.nan]), np.array([1.0, 2.0, 3.0, 4.0, 5.0])]
    hs[1] = hs[1].copy()
    hs[1][[0, 7, 20]] = np.nan
    out = model().forecast(hs, HORIZON, SEASON, LEVELS)
    check(out, len(hs))
    np.testing.assert_array_equal(out[3], 4.0)  # fewer than 3 observed points: the last value


def test_config_file_and_bad_params():
    cfg = forecaster_config("mlforecast", {})
    assert cfg["params"]["n_jobs"] == 1 and cfg["params"]["conformal_windows"] >= 2
    assert make_forecaster(cfg).global_model
    with pytest.raises(ValueError, match="bad params"):
        make_forecaster({"name": "mlforecast", "params": {"trees": 3}})
    with pytest.raises(ValueError, match="lag"):
        make_forecaster({"name": "mlforecast", "params": {"lags": [], "seasonal_lags": []}})


def test_the_identity_gains_exactly_zero_on_every_batch(tmp_path):
    """A global model's forecast of a window depends on its batch: the evaluator compares a program with
    the identity fitted on the very same batch (rotation group, then the rest), whatever was cached before."""
    spec = spec_for(tmp_path, "mlforecast", n_series=6)
    spec["forecaster"]["params"] = dict(TINY)
    spec["windows"].update(n_rotations=3, min_instances_per_rotation=3)
    ev = TimeEvaluator(spec)
    try:
        assert ev.n_rotations == 3
        for rotation in (0, 1, 2):
            out = ev.stage2(IDENTITY, rotation=rotation, full=True)
            assert out.valid, out.reason
            assert out.metrics["gain"] == 0.0 and out.metrics["mase_ratio"] == 1.0
            assert out.metrics["n_windows"] == len(ev.instances)
        scaled = time_program(fit="return {'hist_len': int(len(y_hist)), 's': float(np.nanmax(np.abs(y_hist)))}",
                              transform="return np.asarray(y, dtype=float) / state['s']",
                              inverse="return np.asarray(z, dtype=float) * state['s']")
        out = ev.stage2(scaled, rotation=1, full=True)
        assert out.valid and out.metrics["fallback_rate"] == 0.0 and out.metrics["gain"] != 0.0
    finally:
        ev.close()


@pytest.mark.parametrize("name, n_series, freq, length", [
    ("aus_visitor_nights", 20, "QS-JAN", 76), ("aus_prison", 32, "QS-JAN", 48), ("us_employment", 145, "MS", 357)])
def test_bundled_panels(name, n_series, freq, length):
    ds = load_timeseries({"name": name})
    assert len(ds.series) == n_series and ds.freq == freq
    assert set(ds.lengths.values()) == {length} and len(set(ds.start.values())) == 1
    assert all(np.isfinite(v).all() for v in ds.series.values()) and not ds.warnings


SMALL = ["windows.n_windows=2", "windows.n_rotations=1", "selection.windows=2", "selection.claim_windows=1",
         "evolution.iterations=2"]


def test_search_on_a_real_panel_with_mlforecast(tmp_path):
    proc = efe("efe.time", "dataset=aus_visitor_nights", "forecaster=mlforecast", *SMALL,
               "forecaster.params.n_estimators=10", f"runs_root={tmp_path}", f"llm.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path)
    report = json.loads((run / "report.json").read_text())
    assert report["forecaster"] == "mlforecast"
    row = report["heldout"][0]
    assert row["forecaster"] == "mlforecast" and row["n_windows"] == 20 and row["fallback"] == 0
    assert all(np.isfinite(row[k][m]) for k in ("identity", "program") for m in ("mase", "wql", "mae"))
    assert "| mlforecast |" in (run / "report.md").read_text()
    assert load_frozen(run / "frozen").manifest["setting"] == "time"


def test_transfer_of_a_theta_program_to_mlforecast(tmp_path):
    # require_gain/confirm off and no per-series veto: the best finalist is frozen, so a real program travels
    proc = efe("efe.time", "dataset=aus_visitor_nights", "forecaster=theta", *SMALL, "selection.require_gain=false",
               "selection.confirm=false", "selection.max_series_loss=null", "evolution.deterministic=true",
               f"runs_root={tmp_path}",
               f"llm.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path)
    theta = json.loads((run / "report.json").read_text())["heldout"][0]
    transfer = efe("efe.transfer", f"run={run}", "forecasters=[theta,mlforecast]")
    assert transfer.returncode == 0, transfer.stderr[-3000:]
    rows = json.loads((run / "transfer.json").read_text())
    assert [r["forecaster"] for r in rows] == ["theta", "mlforecast"]
    assert rows[0]["program"] == theta["program"]  # same program, same windows, same forecaster
    ml = rows[1]
    assert ml["n_windows"] == 20 and ml["fallback"] == 0
    assert ml["identity"]["mase"] != rows[0]["identity"]["mase"]  # another forecaster
    assert ml["program"]["mase"] != ml["identity"]["mase"]  # the frozen program changed mlforecast's forecasts
    assert "| mlforecast |" in (run / "transfer.md").read_text()
