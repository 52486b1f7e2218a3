"""The offline proposer's answer to one request, the same for both settings.

The request is the rendered prompt (for the parent program and the steering the prompt carries:
the proposer role and the memory rules) plus the parent's feedback record, read as data from the
run's outcome sidecars (``efe.core.feedback_record``). A setting supplies its move library's ``propose``,
its roles' move kinds and ``view``, which turns a record into what its library weighs.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from efe.core.feedback_record import FeedbackRecord
from efe.rundir.outcomes import read_feedback
from efe.steering.rules import RULES_SECTION, parse_rules
from efe.steering.roles import ROLE_SECTION
from efe.core.programs import prompt_parts

Propose = Callable[..., tuple[str, str]]


def verdict_view(record: FeedbackRecord) -> dict[str, Any]:
    """The parent's validity, and an invalid parent's reason: what both libraries weigh first."""
    return {"valid": True} if record.valid else {"valid": False, "reason": record.reason}


def request_feedback(prompt: str, feedback_dir: str | None,
                     view: Callable[[FeedbackRecord], dict[str, Any]]) -> tuple[str | None, dict[str, Any]]:
    """(parent source, what the library weighs): the parent's record, its role and the memory rules."""
    parent, sections = prompt_parts(prompt)
    record = read_feedback(feedback_dir, parent)
    feedback = view(record) if record is not None else {}
    role = sections.get(ROLE_SECTION, "").strip()
    if role:
        feedback["role"] = role
    if RULES_SECTION in sections:
        feedback["rules"] = parse_rules(sections[RULES_SECTION])
    return parent, feedback


def answer(prompt: str, context: dict, seed: int, propose: Propose, role_kinds: Mapping[str, tuple[str, ...]],
           view: Callable[[FeedbackRecord], dict[str, Any]], feedback_dir: str | None = None,
           **settings: Any) -> tuple[str, str]:
    """(program source, a one-line note) for this request; ``settings`` go to ``propose``."""
    parent, feedback = request_feedback(prompt, feedback_dir, view)
    kinds = role_kinds.get(feedback.get("role") or "")
    source, description = propose(parent or "", context, feedback, np.random.default_rng(seed), kinds=kinds,
                                  **settings)
    role = f" ({feedback['role']})" if feedback.get("role") else ""
    return source, f"Offline proposer{role}: {description}"
