"""What a time-series program's ``fit(y_hist, meta)`` receives besides the history.

Part of the program contract, so it lives below both the evaluator (which builds it for every
window) and the frozen normalization (which builds it for a user's history) and needs neither.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def history_meta(y: np.ndarray, horizon: int, season: int) -> dict:
    """The compact metadata ``fit(y_hist, meta)`` receives (paper appendix C.2)."""
    finite = y[np.isfinite(y)]
    n = len(finite)
    recent = finite[-max(horizon, 1):] if n else finite

    def f(x: float) -> float:
        return float(x) if np.isfinite(x) else 0.0

    mean = f(np.mean(finite)) if n else 0.0
    std = f(np.std(finite)) if n else 0.0
    trend = 0.0
    if n >= 3 and std > 0:
        slope, _, r, _, _ = stats.linregress(np.arange(n), finite)
        trend = f(r * r)
    return {
        "prediction_length": int(horizon), "season": int(season), "hist_len": int(len(y)), "n_valid": int(n),
        "mean": mean, "std": std, "median": f(np.median(finite)) if n else 0.0,
        "min": f(np.min(finite)) if n else 0.0, "max": f(np.max(finite)) if n else 0.0,
        "range": f(np.ptp(finite)) if n else 0.0,
        "positive_fraction": f(np.mean(finite > 0)) if n else 0.0,
        "zero_fraction": f(np.mean(finite == 0)) if n else 0.0,
        "skewness": f(stats.skew(finite)) if n > 2 and std > 0 else 0.0,
        "cv": f(std / abs(mean)) if mean else 0.0,
        "trend_strength": trend,
        "recent_mean": f(np.mean(recent)) if len(recent) else 0.0,
        "recent_std": f(np.std(recent)) if len(recent) else 0.0,
    }
