"""A run's proposals and verdicts as fine-tuning data (the command: ``python -m efe.traces``).

Every evaluated program of a search is a (context, program, reward) example. This command joins a
run's ``proposals.jsonl`` (the exact conversation behind each proposal) with its ``lineage.jsonl``
(fitness and gate verdict of each candidate) and writes training data in the shapes common
fine-tuning libraries read (TRL, OpenRLHF, ...):

- ``sft``: ``{"messages": [system, user, (plan turns,) assistant]}`` for programs whose fitness beat
  their parent's; the run's frozen winner is marked (``winner``, ``heldout_confirmed``);
- ``preference``: ``{"prompt": [system, user], "chosen": [assistant], "rejected": [assistant]}`` from
  siblings of the same parent program (a better one against a worse or gate-rejected one); the
  prompt is the chosen sibling's;
- ``reward``: ``{"prompt": [system, user], "completion": str, "reward": fitness, "verdict": ...}``.

With plan-first proposals the completion is the plan followed by the program. Several runs are
merged and identical records dropped. Records hold what the LLM saw (the training part's context
and pool-A feedback, aggregate pool-B scores) and what it answered: never held-out rows or labels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from efe.core.errors import EfeError
from efe.rundir.proposals import PROPOSALS_FILE, read_proposals
from efe.rundir.records import CANDIDATE, read_lineage

FORMATS = ("sft", "preference", "reward")


class TraceError(EfeError):
    pass


@dataclass
class Example:
    """One evaluated proposal: what the model was asked, what it answered, what it scored."""

    run: str
    id: str
    parent_sha: str | None
    iteration: int
    system: str
    conversation: list[dict]     # user prompt, and with plan-first: plan request, plan, code request
    response: str
    plan: str | None
    fitness: float
    parent_fitness: float | None
    valid: bool
    verdict: str
    winner: bool = False
    heldout_confirmed: bool = False
    task: str = ""               # tabular runs: binary | multiclass | regression (the fitness's metric follows it)

    def prompt(self) -> list[dict]:
        """System and first user turn: the context a model would answer from."""
        return [{"role": "system", "content": self.system}, self.conversation[0]]

    def completion(self) -> str:
        return f"{self.plan.strip()}\n\n{self.response}" if self.plan else self.response

    def meta(self) -> dict:
        return {"run": self.run, "id": self.id, "iteration": self.iteration, "fitness": self.fitness,
                "parent_fitness": self.parent_fitness, "verdict": self.verdict, "plan": self.plan,
                "winner": self.winner, "heldout_confirmed": self.heldout_confirmed,
                **({"task": self.task} if self.task else {})}


def _heldout_confirmed(report: Mapping[str, Any]) -> bool:
    """Did the held-out part confirm the frozen winner's gain (over no feature engineering / the identity)?"""
    rows = report.get("heldout") or []
    if not rows:
        return False
    if "improvement_pct" in rows[0]:  # time series: MASE on the held-out windows
        return float(rows[0]["improvement_pct"].get("mase", 0.0)) > 0.0
    scorer = report.get("search_scorer")
    chosen = [r for r in rows if r.get("model") == scorer] or rows
    return all(float(r.get("delta", 0.0)) > 0.0 for r in chosen)


def load_examples(run_dir: Path) -> tuple[list[Example], int]:
    """(the run's evaluated proposals, how many candidates had no recorded prompt)."""
    if not (run_dir / "lineage.jsonl").exists():
        raise TraceError(f"run={run_dir}: no lineage.jsonl there (is it an efe run directory?)")
    if not (run_dir / PROPOSALS_FILE).exists():
        raise TraceError(f"run={run_dir}: no {PROPOSALS_FILE} (the run predates recorded prompts); re-run it")
    lineage = read_lineage(run_dir / "lineage.jsonl")
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    winner_id = (report.get("winner") or {}).get("id")
    confirmed = _heldout_confirmed(report)
    by_id = {e.id: e for e in lineage if e.id}
    by_sha: dict[str, list[dict]] = {}
    for p in read_proposals(run_dir):
        # a program recalled from an earlier run (memory.use) has no conversation to learn from
        if p.get("code_sha256") and p.get("messages") and (p.get("judge") or {}).get("passed", True):
            by_sha.setdefault(p["code_sha256"], []).append(p)
    examples, missing = [], 0
    for e in lineage:
        if e.kind != CANDIDATE:
            continue
        parent = by_id.get(e.parent)
        parent_sha = parent.code_sha256 if parent is not None else None
        found = by_sha.get(e.code_sha256 or "", [])
        proposal = next((p for p in found if p.get("parent_sha256") == parent_sha), found[0] if found else None)
        if proposal is None:
            missing += 1
            continue
        examples.append(Example(
            run=str(run_dir), id=str(e.id), parent_sha=proposal.get("parent_sha256") or parent_sha,
            iteration=e.iteration or 0, system=proposal["system"], conversation=proposal["messages"],
            response=proposal["response"], plan=proposal.get("plan"), fitness=e.score,
            parent_fitness=parent.fitness if parent is not None else None,
            valid=e.valid, verdict=e.verdict or "",
            winner=e.id == winner_id, heldout_confirmed=e.id == winner_id and confirmed,
            task=str((report.get("dataset") or {}).get("task") or "")))
    return examples, missing


# ----------------------------------------------------------------------------- formats
def sft_records(examples: Iterable[Example], include_winner: bool = True) -> Iterable[dict]:
    for ex in examples:
        improved = ex.valid and ex.parent_fitness is not None and ex.fitness > ex.parent_fitness
        if improved or (include_winner and ex.winner):
            messages = [{"role": "system", "content": ex.system}, *ex.conversation,
                        {"role": "assistant", "content": ex.response}]
            yield {"messages": messages, "winner": ex.winner, "heldout_confirmed": ex.heldout_confirmed,
                   "metadata": ex.meta()}


def preference_records(examples: Iterable[Example], min_margin: float = 0.0,
                       include_invalid: bool = True) -> Iterable[dict]:
    siblings: dict[tuple[str, str], list[Example]] = {}
    for ex in examples:
        if ex.parent_sha:
            siblings.setdefault((ex.run, ex.parent_sha), []).append(ex)
    for group in siblings.values():
        for better, worse in permutations(group, 2):
            if not better.valid or (not worse.valid and not include_invalid):
                continue
            if worse.valid and better.fitness <= worse.fitness + min_margin:
                continue
            if better.completion() == worse.completion():
                continue
            yield {"prompt": better.prompt(),
                   "chosen": [{"role": "assistant", "content": better.completion()}],
                   "rejected": [{"role": "assistant", "content": worse.completion()}],
                   "metadata": {"chosen": better.meta(), "rejected": worse.meta()}}


def reward_records(examples: Iterable[Example]) -> Iterable[dict]:
    for ex in examples:
        yield {"prompt": ex.prompt(), "completion": ex.completion(), "reward": ex.fitness,
               "verdict": ex.verdict, "valid": ex.valid, "metadata": ex.meta()}


def _key(record: Mapping[str, Any]) -> str:
    content = {k: v for k, v in record.items() if k not in ("metadata", "winner", "heldout_confirmed")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def build_traces(run_dirs: Sequence[Path], fmt: str, options: Mapping[str, Any]) -> tuple[list[dict], dict]:
    """(de-duplicated records, counts) for ``fmt`` from every run in ``run_dirs``."""
    if fmt not in FORMATS:
        raise TraceError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}")
    examples, missing = [], 0
    for run_dir in run_dirs:
        found, lost = load_examples(Path(run_dir))
        examples += found
        missing += lost
    if fmt == "sft":
        records = sft_records(examples, bool(options.get("sft", {}).get("include_winner", True)))
    elif fmt == "preference":
        pref = options.get("preference", {})
        records = preference_records(examples, float(pref.get("min_margin", 0.0)),
                                     bool(pref.get("include_invalid", True)))
    else:
        records = reward_records(examples)
    seen, out = set(), []
    for record in records:
        key = _key(record)
        if key not in seen:
            seen.add(key)
            out.append(record)
    return out, {"runs": len(run_dirs), "examples": len(examples), "without_prompt": missing}


def write_traces(records: Sequence[Mapping[str, Any]], out: Path) -> None:
    """One JSON record a line."""
    with open(out, "w") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
