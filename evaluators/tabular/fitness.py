"""EFE-Tab fitness: AUC gain over the raw-feature baseline, minus complexity and runtime costs.

The gain that enters the formula is a lower confidence bound of the paired per-fold gain
(mean − z·SE, ``confidence_z``; z = 0 gives the paper's formula), so a program whose gain is
within noise cannot outscore the identity (which gains exactly 0 with SE 0).

The gain is the task's (``efe.core.task.gain``): ΔAUC for binary and multiclass targets (macro
one-vs-rest), the relative RMSE reduction for a regression target, so higher fitness is better for
every task and the weights keep their meaning (0.02 is two AUC points, or 2% lower RMSE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from efe.core.specs import TabFitnessSpec


@dataclass(frozen=True)
class TabFitness:
    score: float
    delta_auc: float          # the gain the formula used (the lower bound when paired)
    complexity_penalty: float
    runtime_penalty: float
    parts: dict = field(default_factory=dict)


def runtime_penalty(runtime_s: float, c: TabFitnessSpec) -> float:
    """The largest penalty whose threshold the runtime exceeds."""
    penalty = 0.0
    for threshold, value in sorted((float(t), float(p)) for t, p in c.runtime_penalties):
        if runtime_s > threshold:
            penalty = value
    return penalty


def tab_fitness(auc_base: float, auc_candidate: float, n_changed: int, pool_b_rows: int,
                runtime_s: float, c: TabFitnessSpec) -> TabFitness:
    """0.5 + 5*dAUC - 0.10*sqrt((n_new + n_dropped)/|B|) - runtime penalty, clipped."""
    delta = auc_candidate - auc_base
    complexity = c.complexity_weight * math.sqrt(max(n_changed, 0) / max(pool_b_rows, 1))
    rt = runtime_penalty(runtime_s, c)
    raw = c.offset + c.auc_weight * delta - complexity - rt
    low, high = (float(v) for v in c.clip)
    score = min(max(raw, low), high)
    return TabFitness(score, delta, complexity, rt, {"raw": raw})


def paired_tab_fitness(mean_delta: float, se: float, n_changed: int, pool_b_rows: int, runtime_s: float,
                       c: TabFitnessSpec, z: float | None = None) -> TabFitness:
    """The fitness of a paired estimate: the formula above with ΔAUC = mean − z·SE.

    ``z`` defaults to ``confidence_z``; a negative ``z`` gives the optimistic bound the cascade
    uses. An infinite SE with z = 0 is just the mean.
    """
    z = c.confidence_z if z is None else z
    bound = mean_delta - (z * se if z else 0.0)
    if not math.isfinite(bound):
        bound = -1.0 if bound < 0 else 1.0
    return tab_fitness(0.0, bound, n_changed, pool_b_rows, runtime_s, c)
