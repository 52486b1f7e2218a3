"""``lineage.jsonl``: every candidate, valid or not, with parent, island, iteration and verdict.

openevolve evicts programs from its database, so the log is written as candidates arrive:
its population hook ``admit`` sees each candidate (always admitting it: selection stays
openevolve's), a thin wrapper on ``database.add`` supplies the iteration, and iterations that
produced no program at all (an LLM error, no code in the response) are caught from
openevolve's own log record. Verdicts and reasons come from the evaluator, which writes an
outcome file per program (keyed by a hash of its source) from whichever worker ran it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

from openevolve.population import PopulationSnapshot, PopulationStrategy, ProgramState

from efe.proposals import ProposalIndex, rejected_sha
from efe.programs import code_hash


def write_outcome(outcomes_dir: str | Path, code: str, outcome: dict) -> None:
    """Called by evaluators (any process): the latest verdict for this source."""
    directory = Path(outcomes_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{code_hash(code)}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(outcome, default=str))
    tmp.replace(path)


def read_lineage(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


_ITERATION_ERROR = re.compile(r"Iteration (\d+) error: (.*?)(?: \| tokens:.*)?$", re.S)


class LineageRecorder(logging.Handler):
    def __init__(self, path: str | Path, outcomes_dir: str | Path,
                 on_entry: Callable[[dict], None] | None = None) -> None:
        super().__init__(level=logging.WARNING)
        self.path = Path(path)
        self.outcomes = Path(outcomes_dir)
        self.on_entry = on_entry
        self.current_iteration: int | None = None
        self.proposals = ProposalIndex(self.path.parent)
        self._lock = threading.Lock()

    # --------------------------------------------------------------- hooks
    def strategy(self) -> PopulationStrategy:
        return PopulationStrategy(admit=self._admit)

    def attach(self, controller: Any) -> None:
        database = controller.database
        original_add = database.add

        def add(program, iteration=None, target_island=None):
            if iteration is not None:
                self.current_iteration = iteration
            elif not program.metadata.get("migrant"):  # migrants arrive during the current iteration
                self.current_iteration = program.iteration_found
            return original_add(program, iteration=iteration, target_island=target_island)

        database.add = add
        logging.getLogger("openevolve.process_parallel").addHandler(self)

    def detach(self) -> None:
        logging.getLogger("openevolve.process_parallel").removeHandler(self)

    def _admit(self, snapshot: PopulationSnapshot, candidate: ProgramState, island: int) -> bool:
        migrant = bool(candidate.metadata.get("migrant"))
        outcome = self._outcome(candidate.code)
        metrics = {k: v for k, v in candidate.metrics.items() if isinstance(v, (int, float))}
        entry = {
            "kind": "migrant" if migrant else ("seed" if candidate.parent_id is None else "candidate"),
            "id": candidate.id,
            "parent": candidate.parent_id,
            "island": int(island),
            "iteration": int(self.current_iteration or 0),
            "generation": candidate.generation,
            "metrics": metrics,
            "verdict": outcome.get("verdict", "valid" if metrics.get("valid") else "invalid"),
            "reason": outcome.get("reason", ""),
            "stage": outcome.get("stage"),
            "new_columns": outcome.get("new_columns", []),
            "dropped_columns": outcome.get("dropped_columns", []),
            "runtime_s": outcome.get("runtime_s"),
            "code_sha256": code_hash(candidate.code),
            "changes": candidate.metadata.get("changes"),
        }
        plan = self.proposals.plan(entry["code_sha256"])
        if plan:
            entry["plan"] = plan
        self._keep_code(candidate.code, entry["code_sha256"])
        self.write(entry)
        return True

    def _keep_code(self, code: str, sha: str) -> None:
        directory = self.path.parent / "programs"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{sha}.py"
        if not path.exists():
            path.write_text(code)

    def emit(self, record: logging.LogRecord) -> None:  # logging.Handler
        match = _ITERATION_ERROR.match(record.getMessage())
        if match:
            reason = match.group(2).strip()[:500]
            entry = {"kind": "no_program", "id": None, "parent": None, "island": None,
                     "iteration": int(match.group(1)), "metrics": {"combined_score": 0.0, "valid": 0.0},
                     "verdict": "no_program", "reason": reason}
            rejected = rejected_sha(reason)
            if rejected:  # a proposal the judge turned down before evaluation
                entry.update(verdict="judge_rejected", code_sha256=rejected)
            self.write(entry)

    # --------------------------------------------------------------- output
    def write(self, entry: dict) -> None:
        entry.setdefault("time", time.time())
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as fh:
                fh.write(json.dumps(entry, default=str) + "\n")
        if self.on_entry is not None:
            self.on_entry(entry)

    def _outcome(self, code: str) -> dict:
        try:
            return json.loads((self.outcomes / f"{code_hash(code)}.json").read_text())
        except (OSError, ValueError):
            return {}
