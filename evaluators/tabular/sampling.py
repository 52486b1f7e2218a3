"""Scoring rows of a large training part: a stratified subsample, the same in every process.

Above ``scoring.max_rows`` training rows the search scores a stratified sample, so a candidate costs
the same on a million rows as on ten thousand. The final selection's pool is carved from the whole
training part first and capped separately (``selection.max_pool_rows``, its memory budget): a large
table confirms small gains on many more rows than the search ever scored. The seed fixes both, so
every evaluator process sees the same rows. The refit of the winner and the held-out report still use
the whole training part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

from efe.core.task import is_continuous
from evaluators.tabular.pools import carve_selection_pool


def _subsample(positions: np.ndarray, y: pd.Series, n: int, seed: int) -> np.ndarray:
    """At most ``n`` of ``positions`` (stratified by ``y`` for classes), sorted."""
    if len(positions) <= n:
        return positions
    kind = ShuffleSplit if is_continuous(y) else StratifiedShuffleSplit
    take, _ = next(kind(n_splits=1, train_size=int(n), random_state=seed).split(np.zeros(len(positions)),
                                                                                y.iloc[positions]))
    return np.sort(positions[take])


def search_and_pool(y: pd.Series, max_rows: int | None, pool_fraction: float, max_pool_rows: int | None,
                    seed: int, pool_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept, search, pool): positions in the training part of the rows an evaluator keeps, and positions
    within ``kept`` of the search rows and the selection-pool rows.

    The pool is carved from the whole training part (``pool_fraction``, stratified), then capped at
    ``max_pool_rows``; the search rows are the rest, sampled down to ``(1 - pool_fraction) * max_rows``
    (the search's cost as before). Up to ``max_rows`` training rows nothing is sampled.
    """
    search, pool = carve_selection_pool(y, pool_fraction, pool_seed)
    if max_rows and len(y) > int(max_rows):
        search = _subsample(search, y, max(2, round(int(max_rows) * (1.0 - pool_fraction))), seed * 4001 + 17)
        if max_pool_rows:
            pool = _subsample(pool, y, int(max_pool_rows), pool_seed * 4001 + 19)
    kept = np.sort(np.concatenate([search, pool]))
    return kept, np.searchsorted(kept, search), np.searchsorted(kept, pool)  # kept is sorted and unique


def scoring_rows(X: pd.DataFrame, y: pd.Series, max_rows: int | None, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """(X, y) unchanged up to ``max_rows`` rows, else a stratified sample of ``max_rows`` rows in table order."""
    if not max_rows or len(y) <= int(max_rows):
        return X, y
    keep = _subsample(np.arange(len(y)), y, int(max_rows), seed * 4001 + 17)
    return X.iloc[keep].copy(), y.iloc[keep].copy()
