"""Evaluation instances: rolling-origin forecast windows cut from the training part of each series.

An instance is (history up to an origin, the next ``horizon`` values). Origins step back by
``stride`` (shorter than the horizon is allowed: windows then overlap); the latest window ends
``end_offset`` steps before the end of the series, so a later stretch (the selection windows)
can be kept out of the search. Instances are also split into a few rotation groups, chosen per
program from a hash of its source: a cheap first cascade stage before all windows are scored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from efe.core.series_meta import history_meta  # noqa: F401 - re-exported: the evaluator and held-out scoring use it


@dataclass(frozen=True)
class Instance:
    item_id: str
    window: int           # 1 = the latest window
    history: np.ndarray
    future: np.ndarray

    @property
    def key(self) -> str:
        return f"{self.item_id}@{self.window}"


def cut_windows(series: dict[str, np.ndarray], horizon: int, n_windows: int, min_history: int,
                stride: int | None = None, end_offset: int = 0) -> list[Instance]:
    """Windows 1..n_windows per series, window 1 the latest; origins ``stride`` steps apart (default: horizon)."""
    step = max(1, int(stride or horizon))
    out = []
    for item_id, values in series.items():
        values = np.asarray(values, dtype="float64")
        for w in range(1, n_windows + 1):
            origin = len(values) - int(end_offset) - horizon - (w - 1) * step
            if origin < min_history:
                break
            future = values[origin: origin + horizon]
            if np.isfinite(future).sum() == 0:
                continue
            out.append(Instance(str(item_id), w, values[:origin].copy(), future.copy()))
    return out


def windows_per_series(n_windows: int, max_total: int, n_series: int) -> int:
    """Windows each series gets when at most ``max_total`` series x windows are scored (0 = no cap): >= 2."""
    if not max_total:
        return int(n_windows)
    return max(2, min(int(n_windows), int(max_total) // max(int(n_series), 1)))


def spread_windows(series: dict[str, np.ndarray], horizon: int, n_origins: int, min_history: int) -> list[Instance]:
    """Up to ``n_origins`` windows per series with origins evenly spread over its whole history (from
    ``min_history`` to the last full window), not neighbouring ones: how much one window's result varies
    across the series' history. Series of one length share their origins (one global fit per origin)."""
    out = []
    for item_id, values in series.items():
        values = np.asarray(values, dtype="float64")
        last = len(values) - horizon
        if last < min_history or n_origins <= 0:
            continue
        origins = sorted(set(np.linspace(min_history, last, int(n_origins)).round().astype(int).tolist()))
        for w, origin in enumerate(reversed(origins), start=1):
            future = values[origin: origin + horizon]
            if np.isfinite(future).sum() == 0:
                continue
            out.append(Instance(str(item_id), w, values[:origin].copy(), future.copy()))
    return out


def span(horizon: int, n_windows: int, stride: int) -> int:
    """Steps at the end of a series that ``n_windows`` windows ``stride`` apart cover (0 for none)."""
    return 0 if n_windows <= 0 else int(horizon) + (int(n_windows) - 1) * max(1, int(stride))


def stride_steps(stride_horizons: float | None, horizon: int) -> int:
    """A stride given in horizons (0.5 = half a horizon; null = one horizon) as a number of steps."""
    return max(1, int(round(float(1.0 if stride_horizons is None else stride_horizons) * horizon)))


def rotation_groups(instances: list[Instance], n_rotations: int, seed: int, min_per_group: int) -> list[list[int]]:
    n_rotations = max(1, min(int(n_rotations), len(instances) // max(min_per_group, 1)))
    order = np.random.default_rng(seed).permutation(len(instances))
    return [sorted(order[r::n_rotations].tolist()) for r in range(n_rotations)]


def rotation_for(source: str, n_groups: int) -> int:
    return int(hashlib.sha256(source.encode()).hexdigest(), 16) % n_groups


def seasonal_continuation(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """A plausible future (seasonal naive over the finite history) for round-trip gates."""
    finite = y[np.isfinite(y)]
    if len(finite) == 0:
        return np.zeros(horizon)
    m = season if season > 1 and len(finite) >= season else 1
    last = finite[-m:]
    return np.resize(last, horizon).astype("float64")
