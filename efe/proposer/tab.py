"""The tabular offline proposer: the parent program from the prompt, its feedback record as data.

It sees what an LLM would see (the rendered prompt: parent, role, memory rules) and the evaluator's
feedback record of the parent (``efe.core.feedback_record``), and answers with a full program built by
``efe.proposer.tab_moves``.
"""

from __future__ import annotations

from typing import Any, Mapping

from efe.core.feedback_record import FeedbackRecord
from efe.proposer.offline import answer, verdict_view
from efe.proposer.tab_moves import MoveLimits, propose
from efe.proposer.tab_roles import ROLE_KINDS


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
                  limits=MoveLimits.from_mapping(moves))
