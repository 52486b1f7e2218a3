"""Stage-1 checks for time-series programs, judged in the trusted process on sandbox outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from evaluators import mutation


class GateFailure(Exception):
    def __init__(self, gate: str, reason: str) -> None:
        super().__init__(reason)
        self.gate = gate
        self.reason = reason


def as_array(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        raise GateFailure("output_type", f"{what} must return a 1-D numeric array, got {type(value).__name__}") from None
    if arr.ndim != 1:
        raise GateFailure("output_type", f"{what} must return a 1-D array, got shape {arr.shape}")
    return arr


def check_state(state: Any, hist_len: int) -> None:
    if not isinstance(state, dict):
        raise GateFailure("state", "fit must return a dict")
    if "hist_len" not in state:
        raise GateFailure("state", "the state returned by fit must include 'hist_len' (the history length): "
                                   "inverse_transform needs it to align forecast positions")
    if state["hist_len"] != hist_len:
        raise GateFailure("state", f"state['hist_len'] is {state['hist_len']!r} but the history has {hist_len} values")


def check_forward(y: np.ndarray, z: Any, what: str) -> np.ndarray:
    z = as_array(z, "transform")
    if len(z) != len(y):
        raise GateFailure("length", f"transform changed the length of {what} ({len(y)} in, {len(z)} out)")
    if not np.array_equal(np.isnan(y), np.isnan(z)):
        extra = int((np.isnan(z) & ~np.isnan(y)).sum())
        if extra:
            raise GateFailure("new_nan", f"transform produced {extra} new NaN value(s) on {what}")
        raise GateFailure("nan_positions", f"transform filled missing values of {what}; keep NaN where the input is NaN")
    if np.isinf(z).any():
        raise GateFailure("infinite_value", f"transform produced inf on {what}")
    finite_y = y[np.isfinite(y)]
    finite_z = z[np.isfinite(z)]
    if len(finite_y) > 1 and np.ptp(finite_y) > 0:
        if len(finite_z) < 2 or np.ptp(finite_z) <= 1e-12 * max(1.0, float(np.max(np.abs(finite_z)))):
            raise GateFailure("collapsed", f"transform collapsed the non-constant {what} to a constant")
    return z


def check_inverse(z: Any, n: int, what: str) -> np.ndarray:
    r = as_array(z, "inverse_transform")
    if len(r) != n:
        raise GateFailure("inverse_length", f"inverse_transform changed the length of {what} ({n} in, {len(r)} out)")
    if not np.isfinite(r).all():
        raise GateFailure("inverse_not_finite", f"inverse_transform is not finite on {what}; forecasts can "
                                                "overshoot the history's transformed range")
    return r


def check_round_trip(future: np.ndarray, recovered: np.ndarray, rtol: float) -> None:
    tol = rtol * np.maximum(np.abs(future), 1.0)
    err = np.abs(recovered - future)
    bad = err > tol
    if bad.any():
        i = int(np.argmax(err / tol))
        raise GateFailure("round_trip", f"inverse_transform(transform(y)) does not give y back on the forecast "
                                        f"horizon (worst at step {i + 1}: relative error {err[i] / max(abs(future[i]), 1.0):.2e}, "
                                        f"tolerance {rtol:g}); inverse must undo transform at positions hist_len, hist_len+1, ...")


def check_lookahead(z_hist: np.ndarray, z_ext_prefix: np.ndarray) -> None:
    if not np.allclose(z_hist, z_ext_prefix, rtol=1e-9, atol=1e-12, equal_nan=True):
        raise GateFailure("lookahead", "transform of the history changes when later values are appended: the "
                                       "value at a position must depend only on the state and that position's past")


def check_unchanged(before: Any, after: Any, who: str, what: str) -> None:
    """``before`` and ``after``: values or their fingerprints (the plan's ``digest`` step)."""
    if mutation.changed(before, after) is not None:
        raise GateFailure("mutated", f"{who} modified {what} in place; work on a copy")
