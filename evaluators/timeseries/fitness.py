"""EFE-Time fitness: a lower confidence bound on the MASE gain over the identity, minus reliability and size costs.

The gain is the mean over paired windows of log(MASE identity / MASE program); its lower bound
``gain - confidence_z * SE`` enters as ``1 - exp(-bound)`` (a geometric-mean MASE improvement), so
``confidence_z = 0`` gives the paper's 0.5 + 5·(1 − ratio) and a gain within noise scores below the
identity's 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from efe.core.specs import TimeFitnessSpec


@dataclass(frozen=True)
class TimeFitness:
    score: float
    improvement: float
    harm_penalty: float
    complexity_penalty: float


def gain_bound(gain: float, se: float, z: float) -> float:
    """The lower confidence bound of a log-MASE gain (``-inf`` when its SE is unknown)."""
    return float(gain - z * se) if z > 0 else float(gain)


def time_fitness(gain: float, gain_se: float, fallback_rate: float, harm_rate: float, help_rate: float,
                 block_lines: int, c: TimeFitnessSpec) -> TimeFitness:
    """0.5 + 5*(1 - exp(-(gain - z*SE))) - harm penalty - complexity penalty, clipped."""
    improvement = float(-np.expm1(-gain_bound(gain, gain_se, c.confidence_z)))
    harm = c.fallback_weight * fallback_rate + c.harm_weight * max(0.0, harm_rate - help_rate)
    complexity = c.complexity_weight * max(0, block_lines - c.free_lines) / 100.0
    raw = c.offset + c.mase_weight * improvement - harm - complexity
    low, high = (float(v) for v in c.clip)
    return TimeFitness(min(max(raw, low), high), improvement, harm, complexity)
