"""The offline proposer for time series: reads the prompt, answers with ``efe.time.moves``."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from efe.llm.memory import RULES_SECTION, parse_rules
from efe.programs import prompt_parts
from efe.time.moves import propose
from efe.time.roles import ROLE_KINDS

_RATIO = re.compile(r"ratio (\d+\.\d+)")
_SERIES = re.compile(r"(\d+) forecast windows: helped (\d+), harmed (\d+)")


def parse_prompt(prompt: str) -> tuple[str | None, dict[str, Any]]:
    parent, sections = prompt_parts(prompt)
    feedback: dict[str, Any] = {"valid": "reason" not in sections}
    if "scores" in sections and (m := _RATIO.search(sections["scores"])):
        feedback["mase_ratio"] = float(m.group(1))
    if "series" in sections and (m := _SERIES.search(sections["series"])):
        n, helped, harmed = (int(x) for x in m.groups())
        if n:
            feedback["help_rate"], feedback["harm_rate"] = helped / n, harmed / n
    if "reason" in sections:
        feedback["reason"] = sections["reason"].strip()
    if sections.get("role", "").strip():
        feedback["role"] = sections["role"].strip()
    if RULES_SECTION in sections:
        feedback["rules"] = parse_rules(sections[RULES_SECTION])
    return parent, feedback


def propose_from_prompt(prompt: str, context: dict, seed: int) -> tuple[str, str]:
    parent, feedback = parse_prompt(prompt)
    kinds = ROLE_KINDS.get(feedback.get("role") or "")
    source, description = propose(parent or "", context, feedback, np.random.default_rng(seed), kinds=kinds)
    role = f" ({feedback['role']})" if feedback.get("role") else ""
    return source, f"Offline proposer{role}: {description}"
