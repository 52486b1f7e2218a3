"""The back ends behind ``EfeLLM``: an OpenAI-compatible endpoint, a replay file, the offline proposer.

Each returns ``(text, usage)`` for one request; caching, the ledger and budgets live in
``client.EfeLLM`` so that they wrap every back end the same way.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import importlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import openai
import yaml
from openevolve.llm.openai import OpenAILLM

from efe.llm.ledger import BudgetExhausted
from efe.core.programs import proposal_request
from efe.steering.roles import ROLE_SECTION
from efe.steering.rules import RULES_SECTION
from efe.core.specs import RunSpec

log = logging.getLogger(__name__)


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _usage(prompt: str, completion: str, estimated: bool = True) -> dict:
    return {"prompt_tokens": estimate_tokens(prompt), "completion_tokens": estimate_tokens(completion),
            "estimated": estimated}


class LLMEndpointError(RuntimeError):
    """One request to the endpoint failed for good (after the retries); the message names why."""


def describe_failure(exc: BaseException, api_base: str | None, timeout: float | None) -> str:
    """One line a user can act on: status code, timeout, connection or malformed body."""
    where = api_base or "the endpoint"
    if isinstance(exc, (asyncio.TimeoutError, openai.APITimeoutError)):
        return f"no answer within {timeout:g}s from {where} (timeout)"
    if isinstance(exc, openai.APIStatusError):
        body = str(getattr(exc, "message", "") or exc).strip().replace("\n", " ")
        return f"HTTP {exc.status_code} from {where}: {body[:200]}"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot connect to {where}: {exc.__cause__ or exc}"
    if isinstance(exc, (ValueError, TypeError, AttributeError, KeyError, IndexError)):
        return f"malformed response from {where}: {type(exc).__name__}: {str(exc)[:200]}"
    return f"request to {where} failed: {type(exc).__name__}: {str(exc)[:200]}"


class OpenAIBackend:
    """openevolve's own OpenAI-compatible client (hosted APIs, vLLM, Ollama, llama.cpp server).

    The only retry layer: the SDK's and openevolve's own retries are switched off, and each
    request gets ``llm.timeout`` seconds; failures are retried ``llm.retries`` times with
    exponential backoff from ``llm.retry_delay`` capped at ``llm.retry_max_delay``.
    """

    def __init__(self, model_cfg: Any, llm: Mapping[str, Any]) -> None:
        cfg = copy.copy(model_cfg)
        if not cfg.api_key:
            env = llm.get("api_key_env") or "OPENAI_API_KEY"
            cfg.api_key = os.environ.get(env) or "EMPTY"  # local servers accept any key
        self.timeout = float(llm.get("timeout") or cfg.timeout or 60)
        self.retries = int(llm.get("retries") or 0)
        self.retry_delay = float(llm.get("retry_delay") or 0.0)
        self.retry_max_delay = float(llm.get("retry_max_delay") or self.retry_delay)
        self.api_base = cfg.api_base
        cfg.retries = 0  # the SDK's max_retries
        cfg.timeout = self.timeout  # the SDK's own request timeout, so a hung call's thread ends too
        self.inner = OpenAILLM(cfg)

    def backoff(self, attempt: int) -> float:
        return min(self.retry_delay * (2 ** attempt), self.retry_max_delay)

    async def complete(self, system: str, messages: list[dict], sample: int) -> tuple[str, dict]:
        for attempt in range(self.retries + 1):
            try:
                text = await self.inner.generate_with_context(system, messages, retries=0, timeout=self.timeout)
                if not isinstance(text, str):
                    raise ValueError("the response holds no message text")
                break
            except Exception as exc:  # noqa: BLE001 - every failure is described and maybe retried
                reason = describe_failure(exc, self.api_base, self.timeout)
                if attempt >= self.retries:
                    raise LLMEndpointError(reason) from None
                delay = self.backoff(attempt)
                log.warning("LLM request failed (%s); retry %d/%d in %.1fs", reason, attempt + 1, self.retries, delay)
                await asyncio.sleep(delay)
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

    def __init__(self, spec: RunSpec) -> None:
        module, _, function = spec.search.offline_proposer.partition(":")
        # The run layer names the setting's proposer (conf ``proposer.offline``): the LLM layer never
        # imports a setting package.
        self.propose = getattr(importlib.import_module(module), function)
        self.seed = spec.seed
        # a deterministic search seeds each proposal from what the proposer reads (the parent and the
        # prompt's steering sections), not from the whole prompt, whose metrics carry timings
        self.deterministic = bool(spec.search.executor.get("deterministic"))
        self.context = json.loads(Path(spec.search.context_path).read_text())
        # the parent's feedback record is read from the outcome sidecars (as data, never from the prompt's prose)
        self.settings = {"feedback_dir": spec.search.outcomes_dir, "moves": dict(spec.search.offline_moves)}

    async def complete(self, system: str, messages: list[dict], sample: int) -> tuple[str, dict]:
        user = messages[-1]["content"] if messages else ""
        request = proposal_request(user, (ROLE_SECTION, RULES_SECTION)) if self.deterministic else user
        digest = hashlib.sha256(f"{self.seed}|{sample}|{request}".encode()).hexdigest()
        seed = int(digest[:16], 16)
        code, note = self.propose(user, self.context, seed, **self.settings)
        text = f"{note}\n\n```python\n{code}\n```\n"
        return text, _usage(system + user, text)
