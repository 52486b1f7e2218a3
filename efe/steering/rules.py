"""Memory within a run: rules distilled from the lineage, rendered into every prompt.

A rule names one change between a parent and its child (a move of the offline proposer's
manifest, or a new column of an LLM-written program) and what it did: ``helped`` (the child's
noise-aware fitness beat its parent's), ``no effect`` (valid, not better) or ``failed`` (a gate or
an exception rejected the child; the reason is kept). The list is bounded (``memory.max_rules``):
the largest gains first, then failures, then changes that did nothing. Rules of earlier runs on the
same table (``memory.use``) are added after this run's own. The offline proposer reads the rules
back as data (``parse_rules``): helped moves gain weight, useless and failing ones lose it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from efe.rundir.records import CANDIDATE, LineageEntry
from efe.steering.router import gain_over_parent, parent_scores
from efe.core.moves_manifest import manifest_keys

RULES_SECTION = "memory_rules"
VERDICTS = ("helped", "no effect", "failed")
_RULE = re.compile(r"^- \[(?P<verdict>helped|no effect|failed)\] add (?P<change>\S.*?\))", re.M)


class RuleBook:
    """Distils rules from a run's lineage; program sources are read once per hash."""

    def __init__(self, run_dir: str | Path, max_rules: int = 12) -> None:
        self.programs = Path(run_dir) / "programs"
        self.max_rules = int(max_rules)
        self._keys: dict[str, set[str] | None] = {}

    def _changes(self, sha: str | None) -> set[str] | None:
        if not sha:
            return None
        if sha not in self._keys:
            path = self.programs / f"{sha}.py"
            self._keys[sha] = manifest_keys(path.read_text()) if path.exists() else None
        return self._keys[sha]

    def distill(self, lineage: list[LineageEntry]) -> list[dict]:
        by_id = {e.id: e for e in lineage if e.id}
        scores = parent_scores(lineage)
        found: dict[tuple[str, str], dict] = {}
        for entry in lineage:
            parent = by_id.get(entry.parent or "")
            if entry.kind != CANDIDATE or parent is None:
                continue
            child_keys, parent_keys = self._changes(entry.code_sha256), self._changes(parent.code_sha256)
            if child_keys is not None and parent_keys is not None:
                added = sorted(child_keys - parent_keys)
            else:  # an LLM-written program: its new columns stand for the change
                added = [f"column({c})" for c in sorted(set(entry.new_columns) - set(parent.new_columns))]
            valid = entry.valid
            gain = gain_over_parent(entry, scores)
            verdict = "failed" if not valid else ("helped" if gain is not None and gain > 0 else "no effect")
            for change in added[:3]:
                rule = found.setdefault((verdict, change), {"verdict": verdict, "change": change, "count": 0,
                                                            "gain": None, "reason": ""})
                rule["count"] += 1
                if gain is not None and valid:
                    rule["gain"] = gain if rule["gain"] is None else max(rule["gain"], gain)
                if not valid:
                    rule["reason"] = str(entry.reason or entry.verdict or "")[:120]
        return bounded(list(found.values()), self.max_rules)


def bounded(rules: list[dict], max_rules: int) -> list[dict]:
    """At most ``max_rules``: half for the best gains, a quarter for failures, the rest for no-effect
    changes (most frequent first); slots one kind leaves empty go to the others in that order."""
    groups = [sorted((r for r in rules if r["verdict"] == "helped"), key=lambda r: -(r.get("gain") or 0.0)),
              sorted((r for r in rules if r["verdict"] == "failed"), key=lambda r: -r["count"]),
              sorted((r for r in rules if r["verdict"] == "no effect"), key=lambda r: -r["count"])]
    quotas = [max_rules // 2, max_rules // 4, max_rules - max_rules // 2 - max_rules // 4]
    chosen = [group[:quota] for group, quota in zip(groups, quotas)]
    for k, group in enumerate(groups):
        room = max_rules - sum(len(c) for c in chosen)
        chosen[k] += group[len(chosen[k]):len(chosen[k]) + max(room, 0)]
    return [r for c in chosen for r in c][:max_rules]


def render_rule(rule: dict) -> str:
    line = f"- [{rule['verdict']}] add {rule['change']}"
    if rule.get("gain") is not None:
        line += f": fitness {rule['gain']:+.4f} over the parent"
    if rule.get("reason"):
        line += f": {rule['reason']}"
    if rule.get("count", 1) > 1:
        line += f" ({rule['count']}x)"
    if rule.get("source"):
        line += f" [{rule['source']}]"
    return line


def render_rules(rules: list[dict]) -> str:
    """The memory section of the prompt (empty when there is nothing to say yet)."""
    if not rules:
        return ""
    body = "\n".join(render_rule(r) for r in rules)
    return ("\n\n# Memory: what changes did so far (helped = beat the parent's noise-aware fitness)\n"
            f"Build on what helped; do not repeat what failed or did nothing.\n\n### {RULES_SECTION}\n```\n{body}\n```\n")


def parse_rules(text: str) -> dict[str, str]:
    """{change: verdict} from a rendered memory section (the first rule about a change wins)."""
    out: dict[str, str] = {}
    for m in _RULE.finditer(text or ""):
        out.setdefault(m.group("change"), m.group("verdict"))
    return out


def claim_memory_program(run_dir: str | Path, programs: list[dict]) -> dict | None:
    """The next stored program of an earlier run not yet proposed in this run (one claim per program,
    safe across openevolve's worker processes), or None when all are claimed."""
    claims = Path(run_dir) / "memory_claims"
    claims.mkdir(parents=True, exist_ok=True)
    for i, program in enumerate(programs):
        try:
            os.close(os.open(claims / f"{i:04d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        return program
    return None
