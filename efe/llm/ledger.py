"""The token/cost ledger (``llm.jsonl``) and the budget caps read from it.

Several openevolve worker processes call the LLM at once, so the ledger is an append-only
file (one line per call, written with a single O_APPEND write) and the call cap is enforced
with exclusive claim files: two workers can never both take the last call.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from efe.rundir.jsonl import append_jsonl, iter_jsonl, read_jsonl


class BudgetExhausted(RuntimeError):
    """No more LLM calls may be made in this run; the search stops and freezes what it has."""


class EndpointFailing(RuntimeError):
    """The circuit breaker is open: the last calls all failed, so no more are sent."""


LLM_FAILURE_PREFIX = "LLM endpoint failing"


@dataclass(frozen=True)
class Totals:
    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class Ledger:
    def __init__(self, run_dir: str | Path, prices: Mapping[str, Any] | None = None,
                 max_calls: int | None = None, max_cost_usd: float | None = None) -> None:
        self.path = Path(run_dir) / "llm.jsonl"
        self.slots = Path(run_dir) / "llm_slots"
        self.prices = {k: dict(v) for k, v in (prices or {}).items()}
        self.max_calls = int(max_calls) if max_calls is not None else None
        self.max_cost_usd = float(max_cost_usd) if max_cost_usd is not None else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.prices.get(model) or self.prices.get("default") or {}
        return (prompt_tokens * float(price.get("prompt", 0.0))
                + completion_tokens * float(price.get("completion", 0.0))) / 1e6

    def record(self, **entry: Any) -> None:
        entry.setdefault("time", time.time())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_jsonl(self.path, entry)

    def totals(self) -> Totals:
        if not self.path.exists():
            return Totals()
        calls = cached = pt = ct = 0
        cost = 0.0
        for e in iter_jsonl(self.path):
            if e.get("cache_hit"):
                cached += 1
                continue
            if e.get("error"):
                continue
            calls += 1
            pt += int(e.get("prompt_tokens") or 0)
            ct += int(e.get("completion_tokens") or 0)
            cost += float(e.get("cost_usd") or 0.0)
        return Totals(calls, cached, pt, ct, cost)

    def consecutive_failures(self) -> tuple[int, str]:
        """How many of the latest calls failed in a row (any worker), and the last error."""
        if not self.path.exists():
            return 0, ""
        count, last = 0, ""
        for e in reversed(read_jsonl(self.path)):
            if not e.get("error"):
                break
            count += 1
            last = last or str(e["error"])
        return count, last

    def failing(self, max_failures: int | None) -> str | None:
        """The circuit breaker: why to stop after ``max_failures`` failed calls in a row, or None."""
        if not max_failures:
            return None
        count, last = self.consecutive_failures()
        if count < int(max_failures):
            return None
        return f"{LLM_FAILURE_PREFIX}: {count} calls in a row failed; last error: {last}"

    def all_failed(self) -> str | None:
        """Why to call the search stopped by LLM failures when no call got an answer (every one failed,
        fewer than the circuit breaker's limit, so it never tripped), or None when any call was answered."""
        failed, last = 0, ""
        for e in iter_jsonl(self.path):
            if not e.get("error"):
                return None  # an answer (a cache hit included)
            failed, last = failed + 1, str(e["error"])
        if not failed:
            return None
        return f"{LLM_FAILURE_PREFIX}: all {failed} LLM call(s) of the run failed; last error: {last}"

    def claim_call(self) -> None:
        """Reserve one paid call, or raise BudgetExhausted."""
        if self.max_cost_usd is not None:
            spent = self.totals().cost_usd
            if spent >= self.max_cost_usd:
                raise BudgetExhausted(f"LLM cost cap reached (${spent:.4f} of ${self.max_cost_usd:.4f})")
        if self.max_calls is None:
            return
        self.slots.mkdir(parents=True, exist_ok=True)
        for i in range(self.max_calls):
            try:
                os.close(os.open(self.slots / f"{i:06d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return
            except FileExistsError:
                continue
        raise BudgetExhausted(f"LLM call cap reached ({self.max_calls} calls)")

    def exhausted(self) -> str | None:
        """Why the budget is spent, or None."""
        t = self.totals()
        if self.max_calls is not None and t.calls >= self.max_calls:
            return f"LLM call cap reached ({t.calls} of {self.max_calls} calls)"
        if self.max_cost_usd is not None and t.cost_usd >= self.max_cost_usd:
            return f"LLM cost cap reached (${t.cost_usd:.4f} of ${self.max_cost_usd:.4f})"
        return None
