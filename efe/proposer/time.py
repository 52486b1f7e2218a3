"""The time-series offline proposer: the parent program from the prompt, its feedback record as data."""

from __future__ import annotations

from typing import Any, Mapping

from efe.core.feedback_record import FeedbackRecord
from efe.proposer.offline import answer, verdict_view
from efe.proposer.time_moves import propose
from efe.proposer.time_roles import ROLE_KINDS


def feedback_view(record: FeedbackRecord) -> dict[str, Any]:
    """What ``efe.proposer.time_moves.propose`` weighs: validity and the gate's reason, MASE ratio, help/harm rates."""
    feedback = verdict_view(record)
    ts = record.time
    if ts is not None:
        feedback["mase_ratio"] = ts.mase_ratio
        if ts.n_windows:
            feedback["help_rate"], feedback["harm_rate"] = ts.help_rate, ts.harm_rate
    return feedback


def propose_from_prompt(prompt: str, context: dict, seed: int, *, feedback_dir: str | None = None,
                        moves: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """One offline proposal; ``feedback_dir`` is the run's outcomes directory, ``moves`` conf ``proposer.moves``."""
    settings = {"max_moves": int(moves["max_moves"])} if moves and moves.get("max_moves") else {}
    return answer(prompt, context, seed, propose, ROLE_KINDS, feedback_view, feedback_dir, **settings)
