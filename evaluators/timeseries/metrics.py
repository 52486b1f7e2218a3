"""Forecast accuracy metrics: MASE, MAE, quantile loss and WQL, all ignoring missing targets.

Conventions follow GluonTS / the Chronos benchmarks so that scores are comparable with
published numbers: MASE is scaled by the in-sample seasonal-naive error of the history,
the quantile loss is twice the pinball loss, WQL is the total quantile loss over the total
absolute target, averaged over the quantile levels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_1d(y) -> np.ndarray:
    return np.asarray(y, dtype=np.float64).ravel()


def seasonal_scale(y_hist: np.ndarray, season: int) -> float:
    """Mean |y_t − y_{t−m}| over the history; lag 1 when no lag-m pair is observed.

    Never zero or NaN, so a flat or periodic history cannot make MASE divide by zero: the
    fallback is 1e-3·mean|y| (or 1.0 for an all-zero or empty history).
    """
    y = _as_1d(y_hist)
    scale = np.nan
    for lag in (max(int(season), 1), 1):
        if len(y) > lag:
            diffs = np.abs(y[lag:] - y[:-lag])
            if np.isfinite(diffs).any():
                scale = float(np.nanmean(np.where(np.isfinite(diffs), diffs, np.nan)))
                break
    if np.isfinite(scale) and scale > 0:
        return scale
    level = float(np.nanmean(np.abs(y))) if np.isfinite(y).any() else 0.0
    return level * 1e-3 if np.isfinite(level) and level > 0 else 1.0


def mae(y_true, y_pred_median) -> float:
    """Mean absolute error over the observed targets (NaN when none is observed)."""
    y, p = _as_1d(y_true), _as_1d(y_pred_median)
    if y.shape != p.shape:
        raise ValueError(f"y_true has {len(y)} points but the forecast has {len(p)}")
    ok = np.isfinite(y)
    return float(np.mean(np.abs(y[ok] - p[ok]))) if ok.any() else float("nan")


def mase(y_true, y_pred_median, y_hist, season: int) -> float:
    return mae(y_true, y_pred_median) / seasonal_scale(y_hist, season)


def quantile_loss(y_true, q_pred, levels: Sequence[float]) -> float:
    """Sum over horizon and levels of 2 × pinball loss; unobserved targets contribute nothing."""
    y = _as_1d(y_true)
    q = np.asarray(q_pred, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64)
    if q.shape != (len(y), len(lv)):
        raise ValueError(f"q_pred must have shape (horizon, levels) = {(len(y), len(lv))}, got {q.shape}")
    ok = np.isfinite(y)
    err = y[ok, None] - q[ok]
    return float(2.0 * np.sum(np.maximum(lv * err, (lv - 1.0) * err)))


def wql(y_true_list: Sequence, q_pred_list: Sequence, levels: Sequence[float]) -> float:
    """Weighted quantile loss over many series: Σ quantile loss / Σ |y|, mean over levels.

    0 for a perfect forecast; inf when every observed target is 0 but the forecast is not.
    """
    if len(y_true_list) != len(q_pred_list):
        raise ValueError(f"{len(y_true_list)} target series but {len(q_pred_list)} forecasts")
    loss = sum(quantile_loss(y, q, levels) for y, q in zip(y_true_list, q_pred_list))
    scale = sum(float(np.nansum(np.abs(_as_1d(y)))) for y in y_true_list) * len(levels)
    if scale == 0:
        return 0.0 if loss == 0 else float("inf")
    return float(loss / scale)
