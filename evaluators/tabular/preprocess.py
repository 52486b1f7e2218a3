"""Trusted preprocessing between a program's output and the scorer, fitted on pool A only.

Programs may return text, categories, booleans or dates; scorers want numbers. Categories
are coded with the levels seen in pool A (unseen levels become missing), booleans become 0/1,
dates become seconds. Missing values stay missing: all three scorers handle NaN natively.
Scorers see safe aliases (``f0``, ``f1``, …) instead of the user's column names, which may
hold characters a model rejects (LightGBM refuses ``[ ] { } " , :``); everything the user
reads (reports, feedback, frozen programs, exports) keeps the real names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class ScorerInput:
    def fit(self, X: pd.DataFrame) -> "ScorerInput":
        self.columns_ = list(X.columns)
        self.aliases_ = [f"f{i}" for i in range(len(self.columns_))]
        self.kinds_: dict[str, str] = {}
        self.levels_: dict[str, dict] = {}
        for col in self.columns_:
            s = X[col]
            if pd.api.types.is_bool_dtype(s):
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
        out = {}
        for col in self.columns_:
            s = X[col]
            kind = self.kinds_[col]
            if kind == "numeric":
                out[col] = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
            elif kind == "bool":
                out[col] = s.astype("float64").to_numpy()
            elif kind == "datetime":
                stamps = pd.to_datetime(s, errors="coerce")
                seconds = stamps.astype("int64").astype("float64") / 1e9
                out[col] = np.where(stamps.isna(), np.nan, seconds)
            else:  # the level's position in the sorted pool-A levels; unseen and missing -> NaN
                codes = pd.Categorical(s.astype(str), categories=self._categories[col]).codes.astype("float64")
                codes[(codes < 0) | s.isna().to_numpy()] = np.nan
                out[col] = codes
        return pd.DataFrame(dict(zip(self.aliases_, (out[c] for c in self.columns_))), index=X.index,
                            columns=self.aliases_)
