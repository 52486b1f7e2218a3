"""Paired folds of the training part: repeated stratified K-fold, the same for every program.

One pool A / pool B draw gives a ROC-AUC difference whose noise (±0.02-0.03 on a few hundred
rows) is larger than the gains the search looks for. Every program is therefore scored on the
same K × R folds (fit on the fold's training rows = pool A, score on its validation rows =
pool B), the baseline is cached per fold, and the per-fold differences are paired. The search
and the final selection use different seeds, so the final check runs on folds the search never
scored.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit


class FoldPlan:
    def __init__(self, X: pd.DataFrame, y: pd.Series, n_folds: int, n_repeats: int, seed: int) -> None:
        if n_folds < 2:
            raise ValueError(f"pools.n_folds must be at least 2, got {n_folds}")
        if n_repeats < 1:
            raise ValueError(f"pools.n_repeats must be at least 1, got {n_repeats}")
        smallest = int(y.value_counts().min()) if len(y) else 0
        self.X, self.y = X, y
        self.n_folds_per_repeat = max(2, min(int(n_folds), smallest)) if smallest >= 2 else int(n_folds)
        self.n_repeats = int(n_repeats)
        self.seed = int(seed)
        self._indices = lru_cache(maxsize=None)(self._draw)

    @property
    def n_folds(self) -> int:
        return self.n_folds_per_repeat * self.n_repeats

    @property
    def test_train_ratio(self) -> float:
        """n_validation / n_training of one fold (the Nadeau-Bengio correction term)."""
        return 1.0 / (self.n_folds_per_repeat - 1)

    def indices(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        return self._indices(int(fold))

    def _draw(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        repeat, k = divmod(fold, self.n_folds_per_repeat)
        skf = StratifiedKFold(n_splits=self.n_folds_per_repeat, shuffle=True,
                              random_state=self.seed * 1009 + repeat)
        a, b = list(skf.split(np.zeros(len(self.y)), self.y))[k]
        return np.sort(a), np.sort(b)

    def pool_a(self, fold: int) -> tuple[pd.DataFrame, pd.Series]:
        a, _ = self.indices(fold)
        return self.X.iloc[a], self.y.iloc[a]

    def pool_b(self, fold: int) -> tuple[pd.DataFrame, pd.Series]:
        _, b = self.indices(fold)
        return self.X.iloc[b], self.y.iloc[b]

    def gate_sample(self, rows: int) -> tuple[pd.DataFrame, pd.Series]:
        """A stratified sample of the first fold's pool A for the stage-1 gate."""
        XA, yA = self.pool_a(0)
        if len(XA) <= rows:
            return XA, yA
        splitter = StratifiedShuffleSplit(n_splits=1, train_size=rows, random_state=self.seed * 2003)
        take, _ = next(splitter.split(np.zeros(len(yA)), yA))
        take = np.sort(take)
        return XA.iloc[take], yA.iloc[take]


def paired_estimate(deltas: list[float], test_train_ratio: float) -> tuple[float, float]:
    """(mean, standard error) of per-fold paired differences.

    Folds share training rows, so the plain SE of the mean understates the noise; the
    Nadeau-Bengio corrected variance ``s² (1/J + n_val/n_train)`` accounts for that. With a
    single fold the SE is unknown and reported as infinite.
    """
    d = np.asarray(deltas, dtype=float)
    if d.size == 0:
        return 0.0, math.inf
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.inf
    var = float(d.var(ddof=1))
    return mean, math.sqrt(var * (1.0 / d.size + test_train_ratio))
