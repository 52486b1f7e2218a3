"""What the tabular and time-series move libraries share: weighted picks and the memory rules' weights.

Both offline proposers take one step from a parent (add, remove or swap a move); the libraries differ
in their moves and their weights, not in how a weighted choice is drawn or how a distilled rule
(``helped`` / ``no effect`` / ``failed``) reweights a move.
"""

from __future__ import annotations

from typing import Mapping, Sequence, TypeVar

import numpy as np

T = TypeVar("T")

# Weight factor of a move the memory rules name: a move that helped is tried more, one that failed rarely.
RULE_WEIGHTS = {"helped": 2.0, "no effect": 0.4, "failed": 0.1}


class NoMoveAvailable(ValueError):
    """Nothing to add or remove: the dataset offers no sound move and the parent has none."""


def rule_weight(rules: Mapping[str, str] | None, key: str) -> float:
    """How a distilled rule about this move changes its weight (1 without a rule)."""
    return RULE_WEIGHTS.get((rules or {}).get(key, ""), 1.0)


def pick(weighted: Sequence[tuple[T, float]], rng: np.random.Generator) -> T:
    """One item, drawn with probability proportional to its weight (weights below 1e-9 count as 1e-9)."""
    w = np.asarray([max(float(x), 1e-9) for _, x in weighted])
    return weighted[int(rng.choice(len(weighted), p=w / w.sum()))][0]
