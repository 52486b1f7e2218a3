"""A model and an evaluator file for driving openevolve itself in tests (tests/test_openevolve_adapter.py).

openevolve builds models in its worker processes (spawned: ``init_client`` must be importable by
name), so they live in this module. Calls are counted in a file under ``OE_FAKE_DIR``: the call
numbered in ``OE_FAKE_FAIL`` raises, the others return a new program each time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from openevolve.llm.base import LLMInterface

SEED = """# EVOLVE-BLOCK-START
VALUE = 0
# EVOLVE-BLOCK-END
"""

EVALUATOR = """
import re


def evaluate(program_path):
    value = int(re.search(r"VALUE = (\\d+)", open(program_path).read()).group(1))
    return {"combined_score": 0.5 + value / 1000.0}
"""


def _next_call() -> int:
    """1, 2, 3, ... across every worker process (one O_APPEND write per call)."""
    path = Path(os.environ["OE_FAKE_DIR"]) / "calls"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
    return path.stat().st_size


class FakeLLM(LLMInterface):
    def __init__(self, model_cfg: Any) -> None:
        self.model = model_cfg.name
        self.last_usage: dict | None = None

    async def generate(self, prompt: str, **kwargs: Any) -> str:
        return await self.generate_with_context("", [{"role": "user", "content": prompt}])

    async def generate_with_context(self, system_message: str, messages: list[dict], **kwargs: Any) -> str:
        call = _next_call()
        if str(call) == os.environ.get("OE_FAKE_FAIL"):
            raise RuntimeError(f"fake endpoint down on call {call}")
        self.last_usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        return f"```python\n# EVOLVE-BLOCK-START\nVALUE = {call}\n# EVOLVE-BLOCK-END\n```"


def fake_client(model_cfg: Any) -> FakeLLM:
    return FakeLLM(model_cfg)
