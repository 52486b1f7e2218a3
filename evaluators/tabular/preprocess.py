"""Trusted preprocessing between a program's output and the scorer, fitted on pool A only.

Programs may return text, categories, booleans or dates; scorers want numbers. Categories
are coded with the levels seen in pool A (unseen levels become missing), booleans become 0/1,
dates become seconds. Missing values stay missing: LightGBM, the tree and TabPFN handle NaN
natively; the scikit-learn scorers (``linear``, ``random_forest``, ``sklearn``) impute, scale and
one-hot encode inside their own pipeline (``sklearn_encoding``), also learnt on pool A only.
Scorers see safe aliases (``f0``, ``f1``, …) instead of the user's column names, which may
hold characters a model rejects (LightGBM refuses ``[ ] { } " , :``); everything the user
reads (reports, feedback, frozen programs, exports) keeps the real names.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np
import pandas as pd


class ScorerInput:
    def fit(self, X: pd.DataFrame, raw: "RawColumns | None" = None) -> "ScorerInput":
        """Kinds and category levels from ``X`` (pool A); columns equal to the raw pool's are taken from ``raw``."""
        self.columns_ = list(X.columns)
        self.aliases_ = [f"f{i}" for i in range(len(self.columns_))]
        self.kinds_: dict[str, str] = {}
        self.levels_: dict[str, dict] = {}
        self.raw_ = raw if raw is not None and raw.side_of(X) == "A" else None
        self.reused_: set = set()
        for col in self.columns_:
            s = X[col]
            if self.raw_ is not None and self.raw_.same("A", col, s):
                self.reused_.add(col)
                self.kinds_[col] = self.raw_.prep.kinds_[col]
                if col in self.raw_.prep.levels_:
                    self.levels_[col] = self.raw_.prep.levels_[col]
            elif pd.api.types.is_bool_dtype(s):
                self.kinds_[col] = "bool"
            elif pd.api.types.is_datetime64_any_dtype(s):
                self.kinds_[col] = "datetime"
            elif pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
                self.kinds_[col] = "numeric"
            else:
                self.kinds_[col] = "category"
                values = pd.unique(s.dropna().astype(str))
                self.levels_[col] = {v: i for i, v in enumerate(sorted(values))}
        self._categories = {col: pd.Index(list(levels)) for col, levels in self.levels_.items()}
        return self

    @property
    def categorical_indices_(self) -> list[int]:
        return [i for i, c in enumerate(self.columns_) if self.kinds_[c] == "category"]

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ValueError(f"columns missing at scoring time: {missing}")
        side = self.raw_.side_of(X) if self.raw_ is not None and self.reused_ else None
        out = {}
        for col in self.columns_:
            s = X[col]
            if side is not None and col in self.reused_ and self.raw_.same(side, col, s):
                out[col] = self.raw_.codes(side, col)
            else:
                out[col] = self._column(col, s)
        return pd.DataFrame(dict(zip(self.aliases_, (out[c] for c in self.columns_))), index=X.index,
                            columns=self.aliases_)

    def _column(self, col: str, s: pd.Series) -> np.ndarray:
        kind = self.kinds_[col]
        if kind == "numeric":
            return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
        if kind == "bool":
            return s.astype("float64").to_numpy()
        if kind == "datetime":
            stamps = pd.to_datetime(s, errors="coerce")
            seconds = stamps.astype("int64").astype("float64") / 1e9
            return np.where(stamps.isna(), np.nan, seconds)
        # the level's position in the sorted pool-A levels; unseen and missing -> NaN
        codes = pd.Categorical(s.astype(str), categories=self._categories[col]).codes.astype("float64")
        codes[(codes < 0) | s.isna().to_numpy()] = np.nan
        return codes


class RawColumns:
    """The scorer input of one fold's raw pools, column by column, computed once.

    Most programs keep most input columns as they are; their coded form is the same for every
    program, so it is computed on the first use and reused whenever a column is exactly (values and
    dtype) the raw pool's. Anything else is coded afresh.
    """

    def __init__(self, XA: pd.DataFrame, XB: pd.DataFrame) -> None:
        self.pools = {"A": XA, "B": XB}
        self.prep = ScorerInput().fit(XA)
        self._codes: dict[tuple[str, str], np.ndarray] = {}

    def side_of(self, X: pd.DataFrame) -> str | None:
        """Which raw pool ``X`` holds the rows of (same index), if any."""
        for side, raw in self.pools.items():
            if len(raw) == len(X) and raw.index.equals(X.index):
                return side
        return None

    def same(self, side: str, col: str, s: pd.Series) -> bool:
        raw = self.pools[side]
        return col in self.prep.kinds_ and raw[col].dtype == s.dtype and raw[col].array.equals(s.array)

    def codes(self, side: str, col: str) -> np.ndarray:
        key = (side, col)
        if key not in self._codes:
            self._codes[key] = self.prep._column(col, self.pools[side][col])
            self._codes[key].setflags(write=False)
        return self._codes[key]


def sklearn_encoding(n_columns: int, categorical: list[int], settings: Mapping[str, Any]) -> Any:
    """The scikit-learn scorers' own preprocessing of a ``ScorerInput`` output, fitted on pool A with the model.

    Numeric columns (numbers, booleans, dates): median imputation (plus a 0/1 missing indicator per
    column with missing values when ``missing_indicator``), then standardisation. Categorical columns
    (the pool-A level codes): missing and unseen levels become their own level, then one-hot encoding
    with at most ``max_categories`` columns per input column (rarer levels share one).
    """
    # lazy: scikit-learn's pipeline classes cost ~0.3 s to import; only the scikit-learn scorers encode this way
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = sorted(set(categorical))
    numeric = [i for i in range(n_columns) if i not in set(cats)]
    parts = []
    if numeric:
        parts.append(("num", Pipeline([
            ("impute", SimpleImputer(strategy="median", add_indicator=bool(settings["missing_indicator"]),
                                     keep_empty_features=True)),
            ("scale", StandardScaler())]), numeric))
    if cats:
        parts.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True)),
            ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", sparse_output=False,
                                     max_categories=int(settings["max_categories"])))]), cats))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=True)


_ALIAS = re.compile(r"^(?:num|cat)__(?:missingindicator_)?f(\d+)(?:_|$)")


def encoded_owners(encoding: Any) -> np.ndarray:
    """For each output column of a fitted ``sklearn_encoding``, the index of the input column it came from."""
    owners = []
    for name in encoding.get_feature_names_out():
        match = _ALIAS.match(str(name))
        if match is None:
            raise ValueError(f"cannot trace encoded column {name!r} to an input column")
        owners.append(int(match.group(1)))
    return np.asarray(owners, dtype=int)
