"""The router: which proposer role gets the next iteration (``proposer.router``).

``uniform`` draws a role at random; ``ucb`` (UCB1) and ``thompson`` (Beta-Bernoulli sampling) learn
from the lineage which roles' programs improved on their parents. The reward of one try is 1 when
the child's ``combined_score`` beats its parent's; ``combined_score`` is already noise-aware (it
uses mean − z·SE of the paired fold differences), so a gain within noise is no improvement. With
``cost_weight`` > 0 a role's value is divided by (its mean evaluation seconds / the overall mean)
to that power. The state is the lineage itself, so a resumed run continues where it stopped.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Iterable

from efe.rundir.records import CANDIDATE, MIGRANT, SEED, LineageEntry, scores_by_id

ROUTERS = ("uniform", "ucb", "thompson")


@dataclass
class RoleStats:
    role: str
    tries: int = 0            # proposals that ended in an evaluation or a rejection
    evaluated: int = 0
    valid: int = 0
    improvements: int = 0     # children whose combined_score beat their parent's
    best_gain: float | None = None
    eval_s: float = 0.0       # evaluation seconds spent on the role's programs
    rejected: int = 0         # turned down before evaluation (duplicate, judge)

    @property
    def valid_rate(self) -> float | None:
        return self.valid / self.evaluated if self.evaluated else None

    def as_dict(self) -> dict:
        return {**asdict(self), "valid_rate": self.valid_rate}


def gain_over_parent(entry: LineageEntry, scores: dict[str, float]) -> float | None:
    """The child's combined_score minus its parent's (None when the parent is unknown)."""
    return entry.gain_over(scores.get(entry.parent or ""))


def parent_scores(lineage: Iterable[LineageEntry]) -> dict[str, float]:
    return scores_by_id(lineage)


def role_stats(lineage: list[LineageEntry], roles: Iterable[str] = ()) -> dict[str, RoleStats]:
    """Tries, validity, improvements, best gain and cost of every role, from the lineage."""
    stats = {r: RoleStats(r) for r in roles}
    scores = parent_scores(lineage)
    for entry in lineage:
        role = entry.role
        if not role or role == "seed" or entry.kind in (SEED, MIGRANT):
            continue
        s = stats.setdefault(role, RoleStats(role))
        if entry.kind == CANDIDATE:
            s.tries += 1
            s.evaluated += 1
            s.valid += int(entry.valid)
            s.eval_s += entry.runtime_s or 0.0
            gain = gain_over_parent(entry, scores)
            if gain is not None and entry.valid:
                s.best_gain = gain if s.best_gain is None else max(s.best_gain, gain)
                s.improvements += int(gain > 0)
        elif entry.rejected:
            s.tries += 1
            s.rejected += 1
    return stats


def choose_role(router: str, roles: list[str], stats: dict[str, RoleStats], rng: random.Random,
                exploration: float = 1.0, cost_weight: float = 0.0) -> str:
    """The role of the next proposal."""
    if not roles:
        raise ValueError("the router has no roles to choose from")
    if router not in ROUTERS:
        raise ValueError(f"proposer.router={router!r}: expected one of {', '.join(ROUTERS)}")
    if router == "uniform":
        return rng.choice(roles)
    seen = [stats.get(r) or RoleStats(r) for r in roles]
    untried = [s.role for s in seen if s.tries == 0]
    if untried:
        return rng.choice(untried)
    cost = _cost_factor(seen, cost_weight)
    total = sum(s.tries for s in seen)
    values = {}
    for s in seen:
        if router == "ucb":
            mean = s.improvements / s.tries
            value = mean + exploration * math.sqrt(2.0 * math.log(total) / s.tries)
        else:
            value = rng.betavariate(1 + s.improvements, 1 + s.tries - s.improvements)
        values[s.role] = value / cost[s.role]
    best = max(values.values())
    return rng.choice([r for r, v in values.items() if v >= best - 1e-12])


def _cost_factor(seen: list[RoleStats], cost_weight: float) -> dict[str, float]:
    """(mean evaluation seconds of the role / overall mean) ** cost_weight; 1 without cost data."""
    per_try = {s.role: s.eval_s / s.evaluated for s in seen if s.evaluated and s.eval_s > 0}
    if cost_weight <= 0 or not per_try:
        return {s.role: 1.0 for s in seen}
    overall = sum(per_try.values()) / len(per_try)
    return {s.role: (per_try.get(s.role, overall) / overall) ** cost_weight for s in seen}
