"""Scoring rows of a large training part: a stratified subsample, the same in every process.

Above ``scoring.max_rows`` training rows, the search's folds and the final selection's fresh
folds are drawn from a stratified sample of that many rows (the seed fixes it, so every
evaluator process scores on the same rows). The refit of the winner and the held-out report
still use the whole training part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

from efe.core.task import is_continuous


def scoring_rows(X: pd.DataFrame, y: pd.Series, max_rows: int | None, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """(X, y) unchanged up to ``max_rows`` rows, else a stratified sample of ``max_rows`` rows in table order."""
    if not max_rows or len(y) <= int(max_rows):
        return X, y
    kind = ShuffleSplit if is_continuous(y) else StratifiedShuffleSplit  # a regression target: plain sample
    splitter = kind(n_splits=1, train_size=int(max_rows), random_state=seed * 4001 + 17)
    keep, _ = next(splitter.split(np.zeros(len(y)), y))
    keep = np.sort(keep)
    return X.iloc[keep].copy(), y.iloc[keep].copy()
