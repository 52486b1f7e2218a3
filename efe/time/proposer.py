"""The offline proposer for time series: reads the prompt, answers with ``efe.time.moves``."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from efe.programs import prompt_parts

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
    return parent, feedback


def propose_from_prompt(prompt: str, context: dict, seed: int) -> tuple[str, str]:
    from efe.time.moves import propose

    parent, feedback = parse_prompt(prompt)
    source, description = propose(parent or "", context, feedback, np.random.default_rng(seed))
    return source, f"Offline proposer: {description}"
