"""Warnings a careful colleague would give before a search: a leak, an identifier, a tiny class.

They never stop a run (the data may be right as it is); they are printed once before the search
and kept in the run spec and the report. Computed on the training part only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from efe.core.config import conf_section, dataclass_from_mapping
from efe.datasets.tabular import TabularDataset

ID_WORDS = {"id", "uuid", "guid", "key"}


@dataclass(frozen=True)
class CheckLimits:
    """Thresholds of the data checks (``checks`` in conf/tab.yaml)."""

    leak_abs_corr: float            # |corr(column, target)| above this: almost the target
    leak_auc: float                 # the column alone ranks the classes this well (either direction)
    mapping_max_unique_fraction: float  # value -> class mapping checked when values repeat this much
    id_unique_fraction: float       # share of distinct values that makes a column look like an ID
    min_minority_rows: int            # fewer minority-class rows than this: gains are hard to measure

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | None) -> "CheckLimits":
        return dataclass_from_mapping(cls, m)

    @classmethod
    def from_conf(cls) -> "CheckLimits":
        """The thresholds as ``conf/tab.yaml`` sets them (``checks``), for a caller outside a run."""
        return cls.from_mapping(conf_section("tab", "checks"))


def data_warnings(ds: TabularDataset, limits: CheckLimits) -> list[str]:
    """One sentence per problem found in the training part, in column order."""
    warnings = []
    for col in ds.X.columns:
        message = _leak(ds.X[col], ds.y, limits) or _identifier(ds.X[col], limits)
        if message:
            warnings.append(f"column '{col}' {message}")
    if ds.task == "regression":
        return warnings
    counts = ds.y.value_counts()
    minority = int(counts.idxmin())
    if int(counts.min()) < limits.min_minority_rows:
        label = ds.classes[minority] if ds.classes else (ds.positive_label if minority == 1 else ds.negative_label)
        warnings.append(f"the minority class of '{ds.target}' ({label!r}) has only {int(counts.min())} of "
                        f"{len(ds.y)} training rows: ROC-AUC on so few rows is noisy, so gains will be hard "
                        "to find and to confirm")
    return warnings


def _leak(series: pd.Series, y: pd.Series, limits: CheckLimits) -> str | None:
    """A column that (almost) determines the target: a leak, or a problem with nothing left to learn.

    The target may be 0/1, class codes (several classes: one-vs-rest ROC-AUC, averaged) or a regression
    target (floats: correlation, also of the column's per-value target means)."""
    continuous = y.dtype.kind == "f"
    several = not continuous and y.nunique() > 2
    advice = (f"almost determines the target ({{}}): if it is recorded after the outcome, it is a leak and "
              "must be dropped; otherwise the problem is already solved and feature engineering has "
              "nothing to add")
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        x = series.astype("float64")
        known = x.notna()
        if known.sum() > 1 and x[known].std() > 0 and y[known].nunique() > 1 and not several:
            corr = float(np.corrcoef(x[known], y[known])[0, 1])
            if abs(corr) > limits.leak_abs_corr:
                return advice.format(f"|correlation| {abs(corr):.3f}")
        if x.notna().any() and x.nunique() > 1 and not continuous:
            lo, hi = float(x.min()), float(x.max())
            # missing values placed at either end: a column present only for one class also counts
            auc = max(_class_auc(y, x.fillna(lo - 1.0)), _class_auc(y, x.fillna(hi + 1.0)))
            if auc > limits.leak_auc:
                return advice.format(f"ROC-AUC {auc:.3f} on its own")
    values = series.astype(str).where(series.notna(), "<missing>")
    n_values = values.nunique()
    if 2 <= n_values <= limits.mapping_max_unique_fraction * len(values):
        if continuous:
            means = y.groupby(values).transform("mean")
            corr = float(np.corrcoef(means, y)[0, 1]) if means.std() > 0 else 0.0
            if abs(corr) > limits.leak_abs_corr:
                return advice.format(f"its {n_values} values' mean targets have correlation {abs(corr):.3f} "
                                     "with the target")
            return None
        if several:  # each class's share per value, ranked one class against the rest
            auc = float(np.mean([_auc((y == k).astype(int), (y == k).groupby(values).transform("mean"))
                                 for k in sorted(y.unique())]))
        else:
            auc = _auc(y, y.groupby(values).transform("mean"))
        if auc > limits.leak_auc:
            return advice.format(f"each of its {n_values} values goes with one class; ROC-AUC {auc:.3f}")
    return None


def _identifier(series: pd.Series, limits: CheckLimits) -> str | None:
    n, distinct = len(series), int(series.nunique())
    if n == 0 or distinct < limits.id_unique_fraction * n:
        return None
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric:
        x = series.dropna().astype("float64")
        integer_valued = bool(np.all(np.mod(x, 1) == 0))
        ordered = bool(x.is_monotonic_increasing or x.is_monotonic_decreasing)
        if not (integer_valued and (ordered or _named_like_id(str(series.name)))):
            return None
    return (f"looks like an identifier ({distinct} distinct values in {n} rows): an ID cannot generalise "
            "to new rows; drop it unless its values carry meaning")


def _named_like_id(name: str) -> bool:
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]
    return bool(words) and (words[0] in ID_WORDS or words[-1] in ID_WORDS)


def _class_auc(y: pd.Series, score: pd.Series) -> float:
    """``_auc`` for 0/1 labels; for class codes, the mean one-vs-rest ROC-AUC over the classes."""
    if y.nunique() <= 2:
        return _auc(y, score)
    return float(np.mean([_auc((y == k).astype(int), score) for k in sorted(y.unique())]))


def _auc(y: pd.Series, score: pd.Series) -> float:
    """ROC-AUC of ``score`` for the 0/1 labels ``y``, in whichever direction is better (Mann-Whitney form)."""
    positive = y.to_numpy() == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = score.rank(method="average").to_numpy()
    auc = (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return float(max(auc, 1.0 - auc))
