"""Roles and novelty of a run: the run spec's ``roles`` section, and the report's summary of both."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from efe.steering.router import ROUTERS, role_stats
from efe.rundir.proposals import read_proposals
from efe.rundir.records import LineageEntry


def roles_spec(proposer: Mapping[str, Any], setting: str, applicable: list[str]) -> dict:
    """Which roles the router chooses among (``proposer.roles``, default: those that apply) and how."""
    router = str(proposer["router"])
    if router not in ROUTERS:
        raise ValueError(f"proposer.router={router!r}: expected one of {', '.join(ROUTERS)}")
    wanted = proposer["roles"]
    names = list(applicable)
    if wanted not in (None, "all"):
        if isinstance(wanted, str):
            wanted = [w.strip() for w in wanted.split(",") if w.strip()]
        unknown = sorted(set(map(str, wanted)) - set(applicable))
        if unknown:
            raise ValueError(f"proposer.roles: {', '.join(unknown)} not among the roles that apply here "
                             f"({', '.join(applicable)})")
        names = [str(w) for w in wanted]
    return {"setting": setting, "names": names if proposer["use_roles"] else [], "router": router,
            "exploration": float(proposer["router_exploration"]),
            "cost_weight": float(proposer["router_cost_weight"])}


def steering_summary(lineage: list[LineageEntry], run_dir: Path, roles: Mapping[str, Any] | None) -> dict:
    """Per-role table (tries, valid rate, improvements, best gain, cost) and the novelty counts."""
    names = list((roles or {}).get("names") or [])
    stats = role_stats(lineage, names)
    proposals = read_proposals(run_dir)
    retried = sum(1 for p in proposals if p.get("duplicate_of"))
    rejected = sum(1 for e in lineage if e.duplicate)
    return {"router": (roles or {}).get("router"), "roles": [s.as_dict() for s in stats.values()],
            "novelty": {"duplicates_caught": retried, "iterations_rejected": rejected}}


def steering_markdown(summary: Mapping[str, Any] | None) -> list[str]:
    """The report's per-role table and the novelty counts."""
    if not summary:
        return []
    lines = []
    roles = summary.get("roles") or []
    if roles:
        lines += ["## Proposer roles", "",
                  f"Router: `{summary.get('router')}` (proposer.router). An improvement is a valid child whose "
                  "noise-aware fitness (combined_score, which uses mean − z·SE of the paired folds) beats its "
                  "parent's; best gain is the largest such difference; cost is the evaluation time of the role's "
                  "programs.", "",
                  "| role | tries | valid rate | improvements | best gain | rejected before evaluation | cost (eval s) |",
                  "|---|---|---|---|---|---|---|"]
        for r in roles:
            rate = f"{100 * r['valid_rate']:.0f}%" if r.get("valid_rate") is not None else "-"
            gain = f"{r['best_gain']:+.4f}" if r.get("best_gain") is not None else "-"
            lines.append(f"| {r['role']} | {r['tries']} | {rate} | {r['improvements']} | {gain} | {r['rejected']} | "
                         f"{r['eval_s']:.1f} |")
        lines.append("")
    n = summary.get("novelty") or {}
    lines += [f"Novelty check: {n.get('duplicates_caught', 0)} proposal(s) repeated an evaluated program and were "
              f"turned down before evaluation; {n.get('iterations_rejected', 0)} iteration(s) ended without a new "
              "program because of it.", ""]
    return lines
