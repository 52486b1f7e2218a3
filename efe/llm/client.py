"""``init_client``: the hook openevolve calls to build each model, in every worker process.

It returns an ``EfeLLM``: the configured back end wrapped by the response cache, the ledger
and the budget caps, whose output is normalised to the program template (the fixed factory
below the EVOLVE block is restored whatever the model wrote there). Settings come from the
run spec named by ``EFE_RUN_SPEC``, which openevolve passes to its workers' environment.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from openevolve.llm.base import LLMInterface

from efe.llm.backends import (
    LLMEndpointError,
    OfflineBackend,
    OpenAIBackend,
    ReplayBackend,
)
from efe.llm.cache import ResponseCache, request_key
from efe.llm.ledger import BudgetExhausted, EndpointFailing, Ledger
from efe.core.programs import normalise_response
from efe.rundir.claims import claim_index
from efe.core.specs import RunSpec, load_spec


def resolve_backend(llm: Mapping[str, Any]) -> str:
    """``auto`` means an OpenAI-compatible endpoint when one is configured, else the offline proposer."""
    backend = llm.get("backend", "auto")
    if backend == "auto":
        return "openai" if llm.get("api_base") else "offline"
    return backend


def init_client(model_cfg: Any) -> "EfeLLM":
    return EfeLLM(model_cfg, load_spec())


class EfeLLM(LLMInterface):
    def __init__(self, model_cfg: Any, spec: RunSpec) -> None:
        llm = spec.search.llm
        run_dir = Path(spec.run_dir)
        self.model = model_cfg.name  # openevolve's ensemble logs this attribute
        self.system_message = model_cfg.system_message
        self.backend_name = llm["backend"]
        if self.backend_name == "openai":
            self.backend = OpenAIBackend(model_cfg, llm)
        elif self.backend_name == "replay":
            self.backend = ReplayBackend(llm["path"], run_dir / "replay_claims")
        elif self.backend_name == "offline":
            self.backend = OfflineBackend(spec)
        else:
            raise ValueError(f"unknown llm.backend {self.backend_name!r}")
        # a deterministic search with a proposer that needs no cache does not read one: a response cached
        # by another run for the same prompt would stand in for this run's own proposal
        uncached = self.backend_name in ("offline", "replay") and spec.search.executor.get("deterministic")
        self.cache = ResponseCache(llm.get("cache_dir") if llm.get("cache", True) and not uncached else None)
        self.ledger = Ledger(run_dir, llm.get("prices"), llm.get("max_calls"), llm.get("max_cost_usd"))
        self.max_failures = llm.get("max_consecutive_failures")
        self.claims = run_dir / "llm_claims"
        self.template = Path(spec.search.seed_program).read_text()
        self.last_usage: dict | None = None
        self.last_response: str | None = None  # the raw text of the last call (proposals log, judge)
        self.last_cache_hit = False

    async def generate(self, prompt: str, **kwargs: Any) -> str:
        return await self.generate_with_context(self.system_message, [{"role": "user", "content": prompt}])

    async def generate_with_context(self, system_message: str, messages: list[dict], **kwargs: Any) -> str:
        key = request_key(f"{self.backend_name}:{self.model}", system_message, messages)
        sample = claim_index(self.claims, key)
        start = time.perf_counter()
        cached = self.cache.get(key, sample)
        if cached is not None:
            text, usage = cached["response"], cached.get("usage", {})
            self.ledger.record(model=self.model, backend=self.backend_name, cache_hit=True,
                               prompt_tokens=usage.get("prompt_tokens", 0),
                               completion_tokens=usage.get("completion_tokens", 0), cost_usd=0.0,
                               latency_s=time.perf_counter() - start, sample=sample)
        else:
            tripped = self.ledger.failing(self.max_failures)
            if tripped:  # fail fast: the search is being stopped, don't wait on a dead endpoint again
                raise EndpointFailing(tripped)
            self.ledger.claim_call()
            try:
                text, usage = await self.backend.complete(system_message, messages, sample)
            except BudgetExhausted:
                raise
            except Exception as exc:
                self.ledger.record(model=self.model, backend=self.backend_name, cache_hit=False,
                                   error=(str(exc) if isinstance(exc, LLMEndpointError)
                                          else f"{type(exc).__name__}: {exc}")[:300],
                                   latency_s=time.perf_counter() - start, sample=sample)
                raise
            cost = self.ledger.cost(self.model, usage["prompt_tokens"], usage["completion_tokens"])
            self.ledger.record(model=self.model, backend=self.backend_name, cache_hit=False,
                               prompt_tokens=usage["prompt_tokens"],
                               completion_tokens=usage["completion_tokens"],
                               tokens_estimated=bool(usage.get("estimated")), cost_usd=cost,
                               latency_s=time.perf_counter() - start, sample=sample)
            self.cache.put(key, sample, {"model": self.model, "response": text, "usage": usage})
        self.last_usage = {"prompt_tokens": usage.get("prompt_tokens", 0),
                           "completion_tokens": usage.get("completion_tokens", 0),
                           "total_tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)}
        self.last_response, self.last_cache_hit = text, cached is not None
        return normalise_response(text, self.template)
