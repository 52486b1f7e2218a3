"""Pool A (fit) / pool B (score) rotations, drawn from a small fixed set of seeds.

The rotation for a program is chosen from a hash of its source, so re-evaluating the same
program gives the same score, while different programs see different splits (the paper
re-draws pools between evaluations). Baselines are cached per rotation.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedShuffleSplit


class PoolRotation:
    def __init__(self, X: pd.DataFrame, y: pd.Series, score_fraction: float, n_rotations: int, seed: int):
        if not 0.0 < score_fraction < 1.0:
            raise ValueError(f"pools.score_fraction must be in (0, 1), got {score_fraction}")
        if n_rotations < 1:
            raise ValueError(f"pools.n_rotations must be at least 1, got {n_rotations}")
        self.X, self.y = X, y
        self.score_fraction = score_fraction
        self.n_rotations = int(n_rotations)
        self.seed = int(seed)
        self._indices = lru_cache(maxsize=None)(self._draw)

    def rotation_for(self, source: str) -> int:
        digest = hashlib.sha256(source.encode()).hexdigest()
        return int(digest, 16) % self.n_rotations

    def indices(self, rotation: int) -> tuple[np.ndarray, np.ndarray]:
        return self._indices(int(rotation))

    def _draw(self, rotation: int) -> tuple[np.ndarray, np.ndarray]:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=self.score_fraction,
                                          random_state=self.seed * 1009 + rotation)
        a, b = next(splitter.split(np.zeros(len(self.y)), self.y))
        return np.sort(a), np.sort(b)

    def pool_a(self, rotation: int) -> tuple[pd.DataFrame, pd.Series]:
        a, _ = self.indices(rotation)
        return self.X.iloc[a], self.y.iloc[a]

    def pool_b(self, rotation: int) -> tuple[pd.DataFrame, pd.Series]:
        _, b = self.indices(rotation)
        return self.X.iloc[b], self.y.iloc[b]

    def gate_sample(self, rotation: int, rows: int) -> tuple[pd.DataFrame, pd.Series]:
        """A stratified sample of pool A for the stage-1 gate."""
        XA, yA = self.pool_a(rotation)
        if len(XA) <= rows:
            return XA, yA
        splitter = StratifiedShuffleSplit(n_splits=1, train_size=rows,
                                          random_state=self.seed * 2003 + rotation)
        take, _ = next(splitter.split(np.zeros(len(yA)), yA))
        take = np.sort(take)
        return XA.iloc[take], yA.iloc[take]
