"""Paired folds of the training part: repeated stratified K-fold, the same for every program.

(Stratified by class; a regression target, coded as floats, gets plain shuffled K-fold.)

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
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

from efe.core.task import is_continuous


def _kfold(y: pd.Series, n_splits: int, seed: int) -> StratifiedKFold | KFold:
    """Stratified K-fold for class labels; plain shuffled K-fold for a continuous target."""
    kind = KFold if is_continuous(y) else StratifiedKFold
    return kind(n_splits=n_splits, shuffle=True, random_state=seed)


def _shuffle_split(y: pd.Series, seed: int, **sizes) -> StratifiedShuffleSplit | ShuffleSplit:
    kind = ShuffleSplit if is_continuous(y) else StratifiedShuffleSplit
    return kind(n_splits=1, random_state=seed, **sizes)


class FoldPlan:
    def __init__(self, X: pd.DataFrame, y: pd.Series, n_folds: int, n_repeats: int, seed: int) -> None:
        if n_folds < 2:
            raise ValueError(f"pools.n_folds must be at least 2, got {n_folds}")
        if n_repeats < 1:
            raise ValueError(f"pools.n_repeats must be at least 1, got {n_repeats}")
        smallest = (len(y) if is_continuous(y) else int(y.value_counts().min())) if len(y) else 0
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

    @property
    def independent_folds(self) -> int:
        """How many fold differences count as independent in the standard error (all, for the search)."""
        return self.n_folds

    def indices(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        return self._indices(int(fold))

    def _draw(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        repeat, k = divmod(fold, self.n_folds_per_repeat)
        skf = _kfold(self.y, self.n_folds_per_repeat, self.seed * 1009 + repeat)
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
        splitter = _shuffle_split(yA, self.seed * 2003, train_size=rows)
        take, _ = next(splitter.split(np.zeros(len(yA)), yA))
        take = np.sort(take)
        return XA.iloc[take], yA.iloc[take]


def paired_estimate(deltas: list[float], test_train_ratio: float,
                    independent: int | None = None) -> tuple[float, float]:
    """(mean, standard error) of per-fold paired differences.

    Folds share training rows, so the plain SE of the mean understates the noise; the
    Nadeau-Bengio corrected variance ``s² (1/J + n_val/n_train)`` accounts for that, with J
    capped at ``independent`` (folds re-validating the same rows are not independent evidence).
    With a single fold the SE is unknown and reported as infinite.
    """
    d = np.asarray(deltas, dtype=float)
    if d.size == 0:
        return 0.0, math.inf
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.inf
    var = float(d.var(ddof=1))
    j = min(d.size, independent) if independent else d.size
    return mean, math.sqrt(var * (1.0 / j + test_train_ratio))


def carve_selection_pool(y: pd.Series, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(search rows, selection-pool rows): positions of a stratified split of the training part.

    The search scores programs only on the search rows; the final selection validates its
    finalists only on the selection-pool rows, which the search never scored, so its estimate
    carries none of the search's selection bias. ``fraction`` 0 keeps every row for the search.
    """
    everything = np.arange(len(y))
    if fraction <= 0.0:
        return everything, everything[:0]
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"selection.pool_fraction must be in [0, 1), got {fraction}")
    splitter = _shuffle_split(y, int(seed) * 3001 + 7, test_size=fraction)
    search, pool = next(splitter.split(np.zeros(len(y)), y))
    return np.sort(search), np.sort(pool)


class SelectionPlan(FoldPlan):
    """Repeated stratified K-fold over the selection pool, training on the search rows as well.

    Fold k fits on every search row plus the selection pool's other parts and validates on the
    pool's part k, so every validation row is one the search never scored, while each fit still
    sees almost the whole training part (as the final refit will).
    """

    def __init__(self, X: pd.DataFrame, y: pd.Series, search_rows: np.ndarray, pool_rows: np.ndarray,
                 n_folds: int, n_repeats: int, seed: int) -> None:
        self.search_rows, self.pool_rows = np.asarray(search_rows), np.asarray(pool_rows)
        super().__init__(X.iloc[self.pool_rows], y.iloc[self.pool_rows], n_folds, n_repeats, seed)
        self.X, self.y = X, y  # indices() below are positions in the whole training part

    @property
    def test_train_ratio(self) -> float:
        n_val = len(self.pool_rows) / self.n_folds_per_repeat
        return n_val / max(len(self.search_rows) + len(self.pool_rows) - n_val, 1.0)

    @property
    def independent_folds(self) -> int:
        """K, not K x repeats: every repeat validates on the same pool rows again, so repeats lower the
        partition noise but add no new validation evidence; the pool's own sampling noise (what a
        held-out part would see) is that of one K-fold pass over it."""
        return self.n_folds_per_repeat

    def _draw(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        repeat, k = divmod(fold, self.n_folds_per_repeat)
        pool_y = self.y.iloc[self.pool_rows]
        skf = _kfold(pool_y, self.n_folds_per_repeat, self.seed * 1009 + repeat)
        a, b = list(skf.split(np.zeros(len(self.pool_rows)), pool_y))[k]
        return np.sort(np.concatenate([self.search_rows, self.pool_rows[a]])), np.sort(self.pool_rows[b])


def usable_pool_fraction(y: pd.Series, fraction: float, min_minority_rows: int) -> tuple[float, str | None]:
    """``fraction``, or 0 with a warning when the pool would hold too few rows of the smaller class."""
    if fraction <= 0.0 or not len(y):
        return 0.0, None
    if is_continuous(y):  # a regression target: the pool's size is what counts
        expected, rows_of = int(math.floor(len(y) * fraction)), "rows"
    else:
        expected = int(math.floor(int(y.value_counts().min()) * fraction)) if y.nunique() > 1 else 0
        rows_of = "rows of the smaller class"
    if expected >= max(int(min_minority_rows), 2):
        return float(fraction), None
    return 0.0, (f"a selection pool of {fraction:.0%} of the training rows would hold only {expected} {rows_of} "
                 f"(selection.min_pool_minority_rows={min_minority_rows}); the final selection re-scores the "
                 "finalists on fresh folds of the search's own rows instead, which can keep part of the "
                 "search's optimism")
