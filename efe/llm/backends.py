"""The back ends behind ``EfeLLM``: an OpenAI-compatible endpoint, a replay file, the offline proposer.

Each returns ``(text, usage)`` for one request; caching, the ledger and budgets live in
``client.EfeLLM`` so that they wrap every back end the same way.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from efe.llm.ledger import BudgetExhausted


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _usage(prompt: str, completion: str, estimated: bool = True) -> dict:
    return {"prompt_tokens": estimate_tokens(prompt), "completion_tokens": estimate_tokens(completion),
            "estimated": estimated}


class OpenAIBackend:
    """openevolve's own OpenAI-compatible client (hosted APIs, vLLM, Ollama, llama.cpp server)."""

    def __init__(self, model_cfg: Any, llm: Mapping[str, Any]) -> None:
        from openevolve.llm.openai import OpenAILLM

        cfg = copy.copy(model_cfg)
        if not cfg.api_key:
            env = llm.get("api_key_env") or "OPENAI_API_KEY"
            cfg.api_key = os.environ.get(env) or "EMPTY"  # local servers accept any key
        self.inner = OpenAILLM(cfg)

    async def complete(self, system: str, messages: list[dict], sample: int) -> tuple[str, dict]:
        text = await self.inner.generate_with_context(system, messages)
        if text is None:
            raise RuntimeError("the endpoint returned no text")
        usage = self.inner.last_usage
        if usage:
            return text, {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
                          "completion_tokens": int(usage.get("completion_tokens") or 0),
                          "estimated": False}
        return text, _usage(system + json.dumps(messages), text)


class ReplayBackend:
    """Responses read in order from a file (JSON list, JSONL of {"response": ...}, or YAML list)."""

    def __init__(self, path: str | Path, claims_dir: Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"llm.path: replay file '{path}' does not exist")
        self.responses = load_responses(self.path)
        self.claims = claims_dir

    async def complete(self, system: str, messages: list[dict], sample: int) -> tuple[str, dict]:
        self.claims.mkdir(parents=True, exist_ok=True)
        for i in range(len(self.responses)):
            try:
                os.close(os.open(self.claims / f"{i:06d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            text = self.responses[i]
            return text, _usage(system + json.dumps(messages), text)
        raise BudgetExhausted(f"replay file '{self.path.name}' exhausted after {len(self.responses)} responses")


def load_responses(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    elif path.suffix == ".jsonl":
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        data = json.loads(text)
    out = []
    for item in data:
        out.append(item["response"] if isinstance(item, dict) else str(item))
    return out


class OfflineBackend:
    """The offline proposer: real moves from the dataset context and the parent's feedback."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        module, _, function = str(spec["offline_proposer"]).partition(":")
        # The run layer names the setting's proposer (conf ``proposer.offline``): the LLM layer never
        # imports a setting package.
        self.propose = getattr(importlib.import_module(module), function)
        self.seed = int(spec.get("seed", 0))
        context_path = spec.get("context_path")
        self.context = json.loads(Path(context_path).read_text()) if context_path else {}

    async def complete(self, system: str, messages: list[dict], sample: int) -> tuple[str, dict]:
        user = messages[-1]["content"] if messages else ""
        digest = hashlib.sha256(f"{self.seed}|{sample}|{user}".encode()).hexdigest()
        seed = int(digest[:16], 16)
        code, note = self.propose(user, self.context, seed)
        text = f"{note}\n\n```python\n{code}\n```\n"
        return text, _usage(system + user, text)
