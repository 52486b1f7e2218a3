"""``lineage.jsonl``: every candidate, valid or not, with parent, island, iteration and verdict.

openevolve evicts programs from its database, so the log is written as candidates arrive:
its population hook ``admit`` sees each candidate (always admitting it: selection stays
openevolve's), a thin wrapper on ``database.add`` supplies the iteration, and iterations that
produced no program at all (an LLM error, no code in the response) are caught from
openevolve's own log record (``efe.search.openevolve_adapter`` wires those three hooks).
Verdicts and reasons come from the evaluator, which writes an outcome file per program (keyed
by a hash of its source) from whichever worker ran it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from efe.rundir.atomic import atomic_write_text
from efe.rundir.jsonl import append_jsonl
from efe.rundir.outcomes import read_outcome
from efe.core.programs import code_hash
from efe.rundir.proposals import ProposalIndex, duplicate_sha, rejected_sha
from efe.rundir.records import CANDIDATE, MIGRANT, NO_PROGRAM, SEED, LineageEntry

NO_PROGRAM_METRICS = {"combined_score": 0.0, "valid": 0.0}  # an iteration without a program scores as an invalid one

if TYPE_CHECKING:  # the recorder only reads the candidate's fields; reading a lineage needs no openevolve
    from efe.search.openevolve_adapter import ProgramState


def _lost_iterations(seen: set[int], through_iteration: int | None) -> list[LineageEntry]:
    """Entries for iterations up to the checkpoint that left none: they were still in flight when the
    process died (parallel iterations finish out of order, and openevolve's checkpoint counts finished
    ones), so the resumed search will not run them again; the log says so instead of keeping a hole."""
    if not through_iteration:
        return []
    return [LineageEntry(NO_PROGRAM, iteration=i, metrics=dict(NO_PROGRAM_METRICS), verdict="lost",
                         reason="in flight when the run was killed; the checkpoint it resumed from does not hold it",
                         time=time.time())
            for i in range(1, int(through_iteration) + 1) if i not in seen]


def rewind_lineage(path: str | Path, through_iteration: int | None) -> tuple[int, bool]:
    """Make the log agree with the checkpoint a resumed run starts from, before it appends.

    Entries of iterations after ``through_iteration`` (all of them when None: no checkpoint, the
    search starts over) were written by a process that died before checkpointing them; the
    resumed search runs those iterations again, so they move to ``lineage.orphaned.jsonl``. A
    torn last line (the process killed mid-write) is dropped; iterations up to the checkpoint that
    left no entry get a ``lost`` one. Kept lines stay as they were written. Returns (entries orphaned, torn?).
    """
    p = Path(path)
    if not p.exists():
        return 0, False
    raw = p.read_text()
    lines = raw.splitlines()
    torn = bool(lines) and not raw.endswith("\n")
    if torn:
        lines = lines[:-1]
    kept, orphaned, seen = [], [], set()
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            torn = True
            continue
        entry = LineageEntry.from_dict(data)
        iteration = entry.iteration
        late = through_iteration is None or (iteration is not None and iteration > through_iteration)
        (orphaned if late else kept).append(line)
        if not late and entry.kind in (CANDIDATE, NO_PROGRAM) and iteration is not None:
            seen.add(iteration)
    if orphaned:
        with open(p.with_name("lineage.orphaned.jsonl"), "a") as fh:
            fh.write("".join(f"{line}\n" for line in orphaned))
    lost = _lost_iterations(seen, through_iteration)
    kept += [json.dumps(entry.to_dict()) for entry in lost]
    if orphaned or torn or lost:
        atomic_write_text(p, "".join(f"{line}\n" for line in kept))
    return len(orphaned), torn


class LineageRecorder:
    def __init__(self, path: str | Path, outcomes_dir: str | Path,
                 on_entry: Callable[[LineageEntry], None] | None = None) -> None:
        self.path = Path(path)
        self.outcomes = Path(outcomes_dir)
        self.on_entry = on_entry
        self.current_iteration: int | None = None
        self.proposals = ProposalIndex(self.path.parent)
        self._lock = threading.Lock()

    # --------------------------------------------------------------- hooks (wired by the openevolve adapter)
    def set_iteration(self, iteration: int) -> None:
        """The iteration the next admitted candidate belongs to (from the wrapped ``database.add``)."""
        self.current_iteration = iteration

    def admit(self, candidate: ProgramState, island: int) -> bool:
        """openevolve's admission hook: log the candidate, always admit it (selection stays openevolve's)."""
        migrant = bool(candidate.metadata.get("migrant"))
        outcome = self._outcome(candidate.code)
        metrics = {k: v for k, v in candidate.metrics.items() if isinstance(v, (int, float))}
        kind = MIGRANT if migrant else (SEED if candidate.parent_id is None else CANDIDATE)
        sha = code_hash(candidate.code)
        entry = LineageEntry(
            kind, id=candidate.id, parent=candidate.parent_id, island=int(island),
            iteration=int(self.current_iteration or 0), generation=candidate.generation, metrics=metrics,
            verdict=outcome.get("verdict", "valid" if metrics.get("valid") else "invalid"),
            reason=outcome.get("reason", ""), stage=outcome.get("stage"),
            new_columns=tuple(outcome.get("new_columns", [])),
            dropped_columns=tuple(outcome.get("dropped_columns", [])),
            runtime_s=outcome.get("runtime_s"), code_sha256=sha, changes=candidate.metadata.get("changes"),
            plan=self.proposals.plan(sha) or None,
            role="seed" if kind == SEED else self.proposals.role(sha))
        self._keep_code(candidate.code, sha)
        self.write(entry)
        return True

    def record(self, entry: LineageEntry, code: str) -> None:
        """A program evaluated outside openevolve's loop (final selection's lean variant): its code and its line."""
        self._keep_code(code, entry.code_sha256 or code_hash(code))
        self.write(entry)

    def _keep_code(self, code: str, sha: str) -> None:
        directory = self.path.parent / "programs"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{sha}.py"
        if not path.exists():
            path.write_text(code)

    def no_program(self, iteration: int, reason: str) -> None:
        """An iteration that produced no program (openevolve's ``Iteration N error`` warning)."""
        reason = reason[:500]
        verdict, sha = "no_program", None
        rejected = rejected_sha(reason)
        if rejected:  # a proposal the judge turned down before evaluation
            verdict, sha = "judge_rejected", rejected
        duplicate = duplicate_sha(reason)
        if duplicate:  # a near-duplicate of an evaluated program, turned down before evaluation
            verdict, sha = "duplicate_rejected", duplicate
        self.write(LineageEntry(NO_PROGRAM, iteration=int(iteration), metrics=dict(NO_PROGRAM_METRICS),
                                verdict=verdict, reason=reason, code_sha256=sha,
                                role=self.proposals.role(sha, duplicate=bool(duplicate)) if sha else None))

    # --------------------------------------------------------------- output
    def write(self, entry: LineageEntry) -> None:
        if entry.time is None:
            entry = dataclasses.replace(entry, time=time.time())
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            append_jsonl(self.path, entry.to_dict())
        if self.on_entry is not None:
            self.on_entry(entry)

    def _outcome(self, code: str) -> dict:
        return read_outcome(self.outcomes, code)
