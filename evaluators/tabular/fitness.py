"""EFE-Tab fitness: AUC gain over the raw-feature baseline, minus complexity and runtime costs.

The gain that enters the formula is a lower confidence bound of the paired per-fold gain
(mean − z·SE, ``confidence_z``; z = 0 gives the paper's formula), so a program whose gain is
within noise cannot outscore the identity (which gains exactly 0 with SE 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from efe.core.config import dataclass_from_mapping


@dataclass(frozen=True)
class FitnessConstants:
    offset: float = 0.5
    auc_weight: float = 5.0
    complexity_weight: float = 0.10
    runtime_penalties: tuple[tuple[float, float], ...] = ((60.0, 0.05), (120.0, 0.10))
    clip_low: float = 0.0
    clip_high: float = 1.5
    invalid_score: float = 0.0
    confidence_z: float = 1.0

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | None) -> "FitnessConstants":
        m = dict(m or {})
        if "runtime_penalties" in m:
            m["runtime_penalties"] = tuple((float(t), float(p)) for t, p in m["runtime_penalties"])
        if "clip" in m:
            m["clip_low"], m["clip_high"] = (float(v) for v in m.pop("clip"))
        return dataclass_from_mapping(cls, m)


@dataclass(frozen=True)
class TabFitness:
    score: float
    delta_auc: float          # the gain the formula used (the lower bound when paired)
    complexity_penalty: float
    runtime_penalty: float
    parts: dict = field(default_factory=dict)


def runtime_penalty(runtime_s: float, c: FitnessConstants) -> float:
    """The largest penalty whose threshold the runtime exceeds."""
    penalty = 0.0
    for threshold, value in sorted(c.runtime_penalties):
        if runtime_s > threshold:
            penalty = value
    return penalty


def tab_fitness(auc_base: float, auc_candidate: float, n_changed: int, pool_b_rows: int,
                runtime_s: float, c: FitnessConstants) -> TabFitness:
    """0.5 + 5*dAUC - 0.10*sqrt((n_new + n_dropped)/|B|) - runtime penalty, clipped."""
    delta = auc_candidate - auc_base
    complexity = c.complexity_weight * math.sqrt(max(n_changed, 0) / max(pool_b_rows, 1))
    rt = runtime_penalty(runtime_s, c)
    raw = c.offset + c.auc_weight * delta - complexity - rt
    score = min(max(raw, c.clip_low), c.clip_high)
    return TabFitness(score, delta, complexity, rt, {"raw": raw})


def paired_tab_fitness(mean_delta: float, se: float, n_changed: int, pool_b_rows: int, runtime_s: float,
                       c: FitnessConstants, z: float | None = None) -> TabFitness:
    """The fitness of a paired estimate: the formula above with ΔAUC = mean − z·SE.

    ``z`` defaults to ``confidence_z``; a negative ``z`` gives the optimistic bound the cascade
    uses. An infinite SE with z = 0 is just the mean.
    """
    z = c.confidence_z if z is None else z
    bound = mean_delta - (z * se if z else 0.0)
    if not math.isfinite(bound):
        bound = -1.0 if bound < 0 else 1.0
    return tab_fitness(0.0, bound, n_changed, pool_b_rows, runtime_s, c)
