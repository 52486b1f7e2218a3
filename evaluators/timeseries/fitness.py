"""EFE-Time fitness: relative MASE improvement over the identity, minus reliability and size costs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from efe.config import dataclass_from_mapping


@dataclass(frozen=True)
class TimeFitnessConstants:
    offset: float = 0.5
    mase_weight: float = 5.0
    fallback_weight: float = 0.5     # times the share of instances where the program failed (identity used)
    harm_weight: float = 0.1         # times max(0, harmed share - helped share)
    complexity_weight: float = 0.05  # times (EVOLVE-block lines beyond free_lines) / 100
    free_lines: int = 60
    clip_low: float = 0.0
    clip_high: float = 1.5
    invalid_score: float = 0.0

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | None) -> "TimeFitnessConstants":
        m = dict(m or {})
        if "clip" in m:
            m["clip_low"], m["clip_high"] = (float(v) for v in m.pop("clip"))
        return dataclass_from_mapping(cls, m)


@dataclass(frozen=True)
class TimeFitness:
    score: float
    improvement: float
    harm_penalty: float
    complexity_penalty: float


def time_fitness(mase_ratio: float, fallback_rate: float, harm_rate: float, help_rate: float,
                 block_lines: int, c: TimeFitnessConstants) -> TimeFitness:
    """0.5 + 5*(1 - MASE_cand/MASE_base) - harm penalty - complexity penalty, clipped."""
    improvement = 1.0 - mase_ratio
    harm = c.fallback_weight * fallback_rate + c.harm_weight * max(0.0, harm_rate - help_rate)
    complexity = c.complexity_weight * max(0, block_lines - c.free_lines) / 100.0
    raw = c.offset + c.mase_weight * improvement - harm - complexity
    return TimeFitness(min(max(raw, c.clip_low), c.clip_high), improvement, harm, complexity)
