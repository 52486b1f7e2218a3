"""The time-series dataset context: aggregate only (no raw values), from the training part."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _f(x: float, digits: int = 3) -> float | None:
    return float(f"{x:.{digits}g}") if x is not None and math.isfinite(x) else None


def seasonal_strength(y: np.ndarray, season: int) -> float:
    y = y[np.isfinite(y)]
    if season < 2 or len(y) < 2 * season:
        return 0.0
    trend = np.convolve(y, np.ones(season) / season, mode="same")
    detrended = (y - trend)[season // 2: len(y) - season // 2]
    phases = np.arange(season // 2, len(y) - season // 2) % season
    profile = np.array([detrended[phases == p].mean() for p in range(season)])
    resid = detrended - profile[phases]
    denom = np.var(detrended)
    return float(max(0.0, 1.0 - np.var(resid) / denom)) if denom > 0 else 0.0


def trend_strength(y: np.ndarray) -> float:
    y = y[np.isfinite(y)]
    if len(y) < 3 or np.std(y) == 0:
        return 0.0
    r = np.corrcoef(np.arange(len(y)), y)[0, 1]
    return float(r * r) if math.isfinite(r) else 0.0


def build_context(name: str, description: str, series: dict[str, np.ndarray], freq: str, horizon: int,
                  season: int) -> dict[str, Any]:
    values = list(series.values())
    lengths = np.array([len(v) for v in values])
    finite = [v[np.isfinite(v)] for v in values]
    cvs = [np.std(v) / abs(np.mean(v)) for v in finite if len(v) > 1 and np.mean(v) != 0]
    levels = [np.median(v) for v in finite if len(v)]
    return {
        "name": name, "description": description, "freq": freq, "prediction_length": int(horizon),
        "season": int(season), "n_series": len(values),
        "length": {"min": int(lengths.min()), "median": int(np.median(lengths)), "max": int(lengths.max())},
        "positive_fraction": _f(np.mean([bool(len(v)) and bool(np.all(v > 0)) for v in finite])),
        "zero_fraction": _f(np.mean([np.mean(v == 0) if len(v) else 0.0 for v in finite])),
        "has_missing": bool(any(np.isnan(v).any() for v in values)),
        "median_cv": _f(float(np.median(cvs))) if cvs else None,
        "median_trend_strength": _f(float(np.median([trend_strength(v) for v in values]))),
        "median_seasonal_strength": _f(float(np.median([seasonal_strength(v, season) for v in values]))),
        "level_spread_log10": _f(float(np.log10(max(levels) / min(levels)))) if levels and min(levels) > 0 else None,
    }


def render_context(ctx: dict[str, Any]) -> str:
    lines = [f"Dataset: {ctx['name']}: {ctx['n_series']} series, frequency {ctx['freq']}, forecast horizon "
             f"{ctx['prediction_length']} steps, seasonal period {ctx['season']}",
             f"Series lengths (training part): min {ctx['length']['min']}, median {ctx['length']['median']}, "
             f"max {ctx['length']['max']}"]
    if ctx.get("description"):
        lines.append(f"Description: {ctx['description']}")
    lines.append(
        f"Share of strictly positive series {ctx['positive_fraction']}; share of zeros {ctx['zero_fraction']}; "
        f"missing values: {'yes' if ctx['has_missing'] else 'no'}; median coefficient of variation {ctx['median_cv']}; "
        f"median trend strength (R^2 of a line) {ctx['median_trend_strength']}; median seasonal strength "
        f"{ctx['median_seasonal_strength']}; spread of series levels (log10 max/min median) {ctx['level_spread_log10']}")
    return "\n".join(lines)
