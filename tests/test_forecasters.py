"""Forecasters (classical and tiny random Chronos checkpoints) and forecast metrics, offline."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.timeseries.forecasters import FORECASTERS, make_forecaster
from evaluators.timeseries.metrics import mae, mase, quantile_loss, seasonal_scale, wql

LEVELS = [0.1, 0.25, 0.5, 0.75, 0.9]
HORIZON = 7
SEASON = 12


def histories() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(120)
    base = 20 + 3 * np.sin(2 * np.pi * t / SEASON) + 0.05 * t + rng.normal(0, 0.3, len(t))
    with_gaps = base[:60].copy()
    with_gaps[[0, 5, 6, 30, 59]] = np.nan
    return [
        base,                          # long, seasonal
        base[:30],                     # just over two seasons
        with_gaps,                     # missing values, including both ends
        base[:10],                     # shorter than two seasons: season 1
        np.array([4.0, np.nan]),       # fewer than 3 observed points: last value
        rng.lognormal(0, 1, 45),       # noisy, positive
    ]


def check_output(out: np.ndarray, n: int, horizon: int = HORIZON, levels=LEVELS) -> None:
    assert out.shape == (n, horizon, len(levels))
    assert out.dtype == np.float64
    assert np.isfinite(out).all()
    assert (np.diff(out, axis=-1) >= 0).all()


@pytest.mark.parametrize("name", ["seasonal_naive", "ets", "theta"])
def test_classical_forecasters(name):
    model = make_forecaster({"name": name})
    hs = histories()
    first = model.forecast(hs, HORIZON, SEASON, LEVELS)
    check_output(first, len(hs))
    np.testing.assert_array_equal(first, model.forecast(hs, HORIZON, SEASON, LEVELS))
    np.testing.assert_array_equal(first[4], 4.0)  # repeat last observed value


def test_seasonal_naive_repeats_the_period():
    period = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    y = np.tile(period, 5)
    out = make_forecaster({"name": "seasonal_naive"}).forecast([y], 7, 7, [0.1, 0.5, 0.9])
    np.testing.assert_allclose(out[0, :, 1], period)
    np.testing.assert_allclose(out[0, :, 0], period)  # zero residuals: a degenerate interval


def test_median_only_and_level_mapping():
    hs = histories()
    model = make_forecaster({"name": "ets"})
    full = model.forecast(hs, HORIZON, SEASON, [0.05, 0.5, 0.95])
    median = model.forecast(hs, HORIZON, SEASON, [0.5])
    np.testing.assert_allclose(full[..., 1], median[..., 0])
    lo, mid, hi = full[0, 0]
    assert lo < mid < hi and np.isclose(mid - lo, hi - mid)  # symmetric 90% interval


def test_factory_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown forecaster"):
        make_forecaster({"name": "prophet"})
    with pytest.raises(ValueError, match="model_path"):
        make_forecaster({"name": "chronos2"})
    with pytest.raises(ValueError, match="cannot download"):
        make_forecaster({"name": "chronos2", "model_path": "nobody/no-such-model-xyz"})
    with pytest.raises(ValueError, match="config.json"):
        make_forecaster({"name": "chronos_bolt", "model_path": str(tmp_path / "missing")})
    with pytest.raises(ValueError, match="bad params"):
        make_forecaster({"name": "ets", "params": {"no_such_param": 1}})
    with pytest.raises(ValueError, match="0.5"):
        make_forecaster({"name": "theta"}).forecast(histories(), 3, 12, [0.1, 0.9])
    assert set(FORECASTERS) == {"chronos2", "chronos_bolt", "mlforecast", "seasonal_naive", "ets", "theta"}


@pytest.mark.parametrize("name", ["chronos2", "chronos_bolt"])
def test_chronos_tiny_checkpoint(name, tmp_path):
    from tests.helpers.tiny_chronos import build_tiny_chronos2, build_tiny_chronos_bolt

    build = build_tiny_chronos2 if name == "chronos2" else build_tiny_chronos_bolt
    path = build(tmp_path / name)
    model = make_forecaster({"name": name, "model_path": str(path),
                             "params": {"batch_size": 4, "context_length": 100}})
    hs = histories() + [np.array([], dtype=float), np.full(8, np.nan)]
    out = model.forecast(hs, 70, SEASON, LEVELS)  # longer than the native 64 steps
    check_output(out, len(hs), horizon=70)
    np.testing.assert_array_equal(out, model.forecast(hs, 70, SEASON, LEVELS))
    pipeline = model._pipeline
    model.forecast(hs[:2], 3, SEASON, [0.5])
    assert model._pipeline is pipeline  # loaded once


# --------------------------------------------------------------------------- metrics

def test_seasonal_scale_and_mase():
    hist = np.array([1.0, 2.0, 4.0, 7.0])
    assert seasonal_scale(hist, 2) == pytest.approx((3 + 5) / 2)
    assert seasonal_scale(hist, 1) == pytest.approx((1 + 2 + 3) / 3)
    assert seasonal_scale(hist, 12) == pytest.approx(2.0)  # too short for the season: lag 1
    assert seasonal_scale(np.array([1.0, np.nan, 4.0, 7.0, 9.0]), 2) == pytest.approx((3 + 5) / 2)
    assert seasonal_scale(np.array([2.0, 2.0, 2.0]), 1) == pytest.approx(2e-3)  # flat history
    assert seasonal_scale(np.zeros(5), 1) == 1.0
    assert seasonal_scale(np.array([5.0]), 1) == pytest.approx(5e-3)
    assert mae([1.0, 2.0, 3.0], [2.0, 2.0, 1.0]) == pytest.approx(1.0)
    assert mase([1.0, 2.0, 3.0], [2.0, 2.0, 1.0], hist, 2) == pytest.approx(0.25)


def test_metrics_ignore_missing_targets():
    assert mae([1.0, np.nan, 3.0], [2.0, 100.0, 3.0]) == pytest.approx(0.5)
    assert np.isnan(mae([np.nan, np.nan], [1.0, 2.0]))
    levels = [0.1, 0.5, 0.9]
    q = np.array([[0.0, 1.0, 2.0], [5.0, 5.0, 5.0]])
    # y=3 over all three quantiles: 2*(0.1*3 + 0.5*2 + 0.9*1) = 4.4; second row is unobserved
    assert quantile_loss([3.0, np.nan], q, levels) == pytest.approx(4.4)
    # y=0.5: 2*(0.1*0.5 + 0.5*0.5 + 0.1*1.5) = 0.9 (over-forecasts cost 1 - level)
    assert quantile_loss([0.5, np.nan], q, levels) == pytest.approx(0.9)


def test_wql():
    levels = [0.1, 0.5, 0.9]
    ys = [np.array([1.0, 2.0]), np.array([np.nan, -4.0])]
    perfect = [np.repeat(y[:, None], 3, axis=1) for y in ys]
    perfect[1][0] = 99.0  # a forecast for a missing target does not count
    assert wql(ys, perfect, levels) == 0.0
    q = [np.zeros((2, 3)), np.zeros((2, 3))]
    # losses: series 1: 2*(0.1+0.5+0.9)*(1+2) = 9; series 2 (y=-4): 2*(0.9+0.5+0.1)*4 = 12
    assert wql(ys, q, levels) == pytest.approx((9 + 12) / (7 * 3))
    assert wql([np.zeros(2)], [np.ones((2, 3))], levels) == float("inf")
    with pytest.raises(ValueError):
        quantile_loss([1.0], np.zeros((2, 3)), levels)
