"""Stage-1 validity and leakage checks, run in the trusted process on what the sandbox returned.

The child only runs the program; every judgement is made here on plain data. Each check
returns a short, specific reason that goes back to the LLM as feedback.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from efe.core import plain
from efe.core.specs import TabGateSpec
from evaluators import mutation


class GateFailure(Exception):
    """A program output broke a rule; ``reason`` is what the LLM reads."""

    def __init__(self, gate: str, reason: str) -> None:
        super().__init__(reason)
        self.gate = gate
        self.reason = reason


def check_output(name: str, X: pd.DataFrame, out: Any, limits: TabGateSpec) -> pd.DataFrame:
    """Shape and value rules for one transform output (used on the sample and on both pools)."""
    if not isinstance(out, pd.DataFrame):
        raise GateFailure("output_type", f"transform must return a pandas DataFrame, got "
                                         f"{type(out).__name__} for {name}")
    if len(out) != len(X):
        raise GateFailure("row_count", f"transform changed the number of rows of {name} "
                                       f"({len(X)} in, {len(out)} out)")
    if not out.index.equals(X.index):
        raise GateFailure("row_alignment", f"transform changed the index or row order of {name}; "
                                           "keep X.index and the row order")
    cap = int(limits.max_column_factor * X.shape[1])
    if out.shape[1] > cap:
        raise GateFailure("too_many_columns", f"transform returned {out.shape[1]} columns, more than "
                                              f"{limits.max_column_factor:g}x the {X.shape[1]} input columns")
    if out.shape[1] == 0:
        raise GateFailure("no_columns", "transform returned no columns")
    new_cols = [c for c in out.columns if c not in X.columns]
    for col in new_cols:
        if out[col].isna().all():
            raise GateFailure("all_nan_column", f"new column '{col}' is entirely NaN on {name}")
    numeric = out.select_dtypes(include=["number"])
    if numeric.shape[1]:
        values = numeric.to_numpy(dtype="float64", na_value=np.nan)
        inf_mask = np.isinf(values)
        if inf_mask.any():
            col = numeric.columns[np.where(inf_mask.any(axis=0))[0][0]]
            raise GateFailure("infinite_value", f"column '{col}' contains inf on {name} "
                                                f"({int(inf_mask[:, list(numeric.columns).index(col)].sum())} rows); "
                                                "guard divisions and logs")
        with np.errstate(invalid="ignore"):
            big = np.abs(values) > limits.max_abs_value
        if big.any():
            col = numeric.columns[np.where(big.any(axis=0))[0][0]]
            raise GateFailure("value_too_large", f"column '{col}' has |values| above "
                                                 f"{limits.max_abs_value:g} on {name}")
    for col in out.columns:
        if col in X.columns and not same_values(X[col], out[col], limits):
            raise GateFailure("original_changed", f"original column '{col}' was changed; keep original "
                                                  "columns as they are (or drop them) and add new ones")
    return out


def check_unmutated(before: Mapping[str, Any], after: Mapping[str, Any], who: str) -> None:
    """Inputs as they were before the program ran against what they are after it (values or their ``plain.digest``)."""
    for name, original in before.items():
        returned = after.get(name)
        if returned is None:
            continue
        columns = mutation.changed(original, returned)
        if columns is None:
            continue
        old = mutation.fingerprint(original)
        labels = isinstance(original, pd.Series) or (isinstance(old, dict) and "series" in old)
        what = "labels y" if labels else f"input {name}"
        detail = f" (columns {', '.join(columns[:5])})" if columns else ""
        raise GateFailure("input_mutated", f"{who} modified its {what} in place{detail}; work on a copy")


def check_batch_independence(whole: pd.DataFrame, parts: Iterable[pd.DataFrame], limits: TabGateSpec) -> None:
    parts = list(parts)
    for part in parts:
        if list(part.columns) != list(whole.columns):
            raise GateFailure("batch_dependence", "transform returned different columns for a subset of "
                                                  "the rows; the output schema must not depend on the batch")
    joined = pd.concat(parts).loc[whole.index]
    for col in whole.columns:
        if not same_values(whole[col], joined[col], limits):
            raise GateFailure("batch_dependence",
                              f"column '{col}' for a row depends on the other rows passed to transform "
                              "(transform of the whole batch differs from transform of its parts); "
                              "compute statistics in fit and store them in state")


def check_index_invariance(plain_out: pd.DataFrame, reindexed_out: pd.DataFrame, limits: TabGateSpec) -> None:
    if list(plain_out.columns) != list(reindexed_out.columns):
        raise GateFailure("index_dependence", "transform returned different columns when only the index changed")
    for col in plain_out.columns:
        a = plain_out[col].reset_index(drop=True)
        b = reindexed_out[col].reset_index(drop=True)
        if not same_values(a, b, limits):
            raise GateFailure("index_dependence", f"column '{col}' depends on the index values; "
                                                  "features must come from the row's columns only")


def check_state_unchanged(after_fit: Any, after_transforms: Any) -> None:
    """The fitted state (a dict, or its ``plain.digest``) is what fit returned, after every transform."""
    if _state_fingerprint(after_fit) != _state_fingerprint(after_transforms):
        raise GateFailure("state_mutated", "transform modified the fitted state; state must be read-only "
                                           "after fit")


def _state_fingerprint(state: Any) -> str:
    return state if isinstance(state, str) else plain.digest(state)


def same_values(a: pd.Series, b: pd.Series, limits: TabGateSpec) -> bool:
    """Equal values and equal missing pattern; floats within tolerance."""
    if len(a) != len(b):
        return False
    if a.dtype == b.dtype and _identical(a, b):  # the common case, fast
        return True
    na_a, na_b = pd.isna(a).to_numpy(), pd.isna(b).to_numpy()
    if not np.array_equal(na_a, na_b):
        return False
    keep = ~na_a
    a_num = pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a)
    b_num = pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b)
    if a_num and b_num and not isinstance(a.dtype, pd.CategoricalDtype):
        va = a.to_numpy(dtype="float64", na_value=np.nan)[keep]
        vb = b.to_numpy(dtype="float64", na_value=np.nan)[keep]
        return bool(np.allclose(va, vb, rtol=limits.rtol, atol=limits.atol, equal_nan=False))
    va = np.asarray(a.astype(object))[keep]
    vb = np.asarray(b.astype(object))[keep]
    return bool(np.all(va == vb))


def _identical(a: pd.Series, b: pd.Series) -> bool:
    """Exactly equal values of the same numpy dtype (NaN where NaN); False means "look closer", not "differ"."""
    if not isinstance(a.dtype, np.dtype):
        return bool(a.array.equals(b.array))
    va, vb = a.to_numpy(), b.to_numpy()
    if a.dtype.kind in "fc":
        return bool(np.array_equal(va, vb, equal_nan=True))
    if a.dtype.kind == "O":
        try:
            return bool(np.all(va == vb))  # None == None holds; NaN cells fall through to the closer look
        except (TypeError, ValueError):
            return False
    return bool(np.array_equal(va, vb))

