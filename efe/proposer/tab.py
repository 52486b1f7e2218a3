"""The tabular offline proposer: the parent program from the prompt, its feedback record as data.

It sees what an LLM would see (the rendered prompt: parent, role, memory rules) and the evaluator's
feedback record of the parent (``efe.core.feedback_record``), and answers with a full program built by
``efe.proposer.tab_moves``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

from efe.core.feedback_record import FeedbackRecord
from efe.core.moves_manifest import read_manifest
from efe.proposer.offline import answer, verdict_view
from efe.proposer.tab_moves import Move, MoveLimits, canonical_entries, manifest_of, propose
from efe.proposer.tab_roles import ROLE_KINDS

# The run directory's evaluated programs (one file each, written by the lineage) and the novelty
# check's claims of programs still being evaluated (``efe.llm.novelty``: one file per key, the
# move-list key named ``moves_<sha256 of the manifest text>``).
PROGRAMS_DIR = "programs"
CLAIMS_DIR = "novelty_claims"


class TriedPrograms:
    """Which move lists this run has evaluated (in any order) or is evaluating, read incrementally."""

    def __init__(self, run_dir: str | Path) -> None:
        self.programs = Path(run_dir) / PROGRAMS_DIR
        self.claims = Path(run_dir) / CLAIMS_DIR
        self.keys: set[str] = set()
        self.read: set[str] = set()

    def refresh(self) -> "TriedPrograms":
        if self.programs.is_dir():
            for path in self.programs.glob("*.py"):
                if path.name in self.read:
                    continue
                try:
                    entries = read_manifest(path.read_text())
                except OSError:
                    continue
                self.read.add(path.name)
                if isinstance(entries, list):
                    self.keys.add(canonical_entries(entries))
        return self

    def __call__(self, moves: list[Move]) -> bool:
        if canonical_entries([[m.kind, list(m.columns), list(m.params)] for m in moves]) in self.keys:
            return True
        key = hashlib.sha256(manifest_of(moves).encode()).hexdigest()
        return (self.claims / f"moves_{key}").exists()


_TRIED: dict[str, TriedPrograms] = {}


def tried_programs(feedback_dir: str | None) -> TriedPrograms | None:
    """The run's tried move lists, refreshed (None without a run: ``feedback_dir`` is ``<run>/outcomes``)."""
    if not feedback_dir:
        return None
    run_dir = str(Path(feedback_dir).parent)
    return _TRIED.setdefault(run_dir, TriedPrograms(run_dir)).refresh()


def feedback_view(record: FeedbackRecord) -> dict[str, Any]:
    """What ``efe.proposer.tab_moves.propose`` weighs: validity, importances on pool A, the paired AUC delta."""
    feedback = verdict_view(record)
    tab = record.tab
    if tab is not None:
        feedback["delta_auc"] = tab.scores.delta
        if tab.new_columns:
            feedback["new_columns"] = list(tab.new_columns)
        if tab.importance_method is not None:
            feedback["importance"] = tab.importance_by_column
    return feedback


def propose_from_prompt(prompt: str, context: dict, seed: int, *, feedback_dir: str | None = None,
                        moves: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """One offline proposal; ``feedback_dir`` is the run's outcomes directory, ``moves`` conf ``proposer.moves``."""
    return answer(prompt, context, seed, propose, ROLE_KINDS, feedback_view, feedback_dir,
                  limits=MoveLimits.from_mapping(moves), tried=tried_programs(feedback_dir))
