"""The offline proposer's reading of a prompt: the parent program and its aggregate feedback.

It sees exactly what an LLM would see (the rendered prompt) plus the dataset context, and
answers with a full program built by ``efe.tab.moves``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from efe.llm.memory import RULES_SECTION, parse_rules
from efe.programs import prompt_parts
from efe.tab.moves import propose
from efe.tab.roles import ROLE_KINDS

_IMPORTANCE = re.compile(r"^(?P<col>.+?): (?P<value>[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?) ±", re.M)
_DELTA = re.compile(r"delta ([+-]?\d+\.\d+)")


def parse_prompt(prompt: str) -> tuple[str | None, dict[str, Any]]:
    """(parent source, feedback) from a rendered user prompt."""
    parent, sections = prompt_parts(prompt)
    feedback: dict[str, Any] = {}
    for key in ("importance_pool_a", "permutation_importance_pool_a"):  # the scorer's own, or permutation
        if key in sections:
            feedback["importance"] = {m.group("col").strip(): float(m.group("value"))
                                      for m in _IMPORTANCE.finditer(sections[key])}
    if "scores" in sections:
        found = _DELTA.search(sections["scores"])
        if found:
            feedback["delta_auc"] = float(found.group(1))
    if "new_columns" in sections and sections["new_columns"].strip() != "(none)":
        feedback["new_columns"] = [c.strip() for c in sections["new_columns"].split(",") if c.strip()]
    verdict = sections.get("verdict", "")
    feedback["valid"] = not verdict.startswith("invalid") and "reason" not in sections
    if "reason" in sections:
        feedback["reason"] = sections["reason"].strip()
    if sections.get("role", "").strip():
        feedback["role"] = sections["role"].strip()
    if RULES_SECTION in sections:
        feedback["rules"] = parse_rules(sections[RULES_SECTION])
    return parent, feedback


def propose_from_prompt(prompt: str, context: dict, seed: int) -> tuple[str, str]:
    parent, feedback = parse_prompt(prompt)
    rng = np.random.default_rng(seed)
    kinds = ROLE_KINDS.get(feedback.get("role") or "")
    source, description = propose(parent or "", context, feedback, rng, kinds=kinds)
    role = f" ({feedback['role']})" if feedback.get("role") else ""
    return source, f"Offline proposer{role}: {description}"
