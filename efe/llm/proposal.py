"""What openevolve calls to get a proposal: plan-first, the judge, and the proposals log.

``init_proposer`` (openevolve's ``init_client`` hook) wraps efe's client (``client.EfeLLM``:
back end, cache, ledger, budgets) and adds three things around each request:

- ``proposer.plan_first``: on the LLM path, ask for a plan, then for the program that implements
  it (two calls in one conversation); the plan becomes the program's class docstring;
- ``judge``: ``rules`` or ``llm`` verdict before the program reaches the evaluator. A rejected
  proposal raises ``JudgeRejected``, which openevolve records as an iteration without a program,
  so it costs no evaluation; the lineage marks it ``judge_rejected``;
- ``proposals.jsonl`` in the run directory: one line per proposal with the exact conversation
  (system message, user prompt, plan turns), the raw response, the program's hash, its parent's
  hash and the judge's verdict. ``python -m efe.traces`` joins it with the lineage.

Before the request, ``roles.Steering`` picks the proposer role (the router) and adds the role's
prompt and the memory rules to the user message; programs stored by earlier runs on the same table
(``memory.use``) are proposed first, once each. After it, the novelty check turns down a program
that repeats an evaluated one (``DuplicateRejected``, like a judge rejection: no evaluation; the
offline proposer is asked again up to ``proposer.novelty.retries_offline`` times first).

openevolve reports any exception from the proposer as ``LLM generation failed`` (an error in the
worker, a warning in the parent): ``RejectionLog`` rewrites the lines for these two rejections so
the log and the lineage say what happened (``proposal rejected: ...``, at INFO): the LLM did answer.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path
from typing import Any

from openevolve.llm.base import LLMInterface

from efe.llm.backends import ReplayBackend
from efe.llm.client import EfeLLM
from efe.llm.judge import LLMJudge, RulesJudge, Verdict
from efe.steering.rules import claim_memory_program
from efe.llm.novelty import NoveltyIndex
from efe.llm.plan import plan_conversation, with_plan_docstring
from efe.steering.roles import Steering
from efe.core.programs import code_hash, extract_code, prompt_parts
from efe.rundir.proposals import (
    append_proposal,
    duplicate_message,
    duplicate_sha,
    rejected_sha,
    rejection_message,
)
from efe.core.specs import RunSpec, load_spec, replace


class JudgeRejected(RuntimeError):
    """The judge turned the proposal down; openevolve logs it as an iteration without a program."""


class DuplicateRejected(RuntimeError):
    """The proposal repeats an evaluated program; openevolve logs it as an iteration without a program."""


GENERATION_FAILED = "LLM generation failed: "
PROCESS_LOGGER = "openevolve.process_parallel"  # where openevolve logs an iteration without a program


class RejectionLog(logging.Filter):
    """On openevolve's iteration logger: a judge or novelty rejection is logged as a rejection (INFO),
    not as ``LLM generation failed`` (ERROR in the worker, ``Iteration N error`` in the parent)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        head, found, reason = message.partition(GENERATION_FAILED)
        if not found or not (rejected_sha(reason) or duplicate_sha(reason)):
            return True
        head = head.replace(" error: ", " rejected: ") if head else "proposal rejected: "
        record.msg, record.args = head + reason, ()
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True

    @classmethod
    def install(cls) -> None:
        """Once per process (openevolve's workers call the proposer hook; the search calls this too)."""
        logger = logging.getLogger(PROCESS_LOGGER)
        if not any(isinstance(f, cls) for f in logger.filters):
            logger.addFilter(cls())


def init_proposer(model_cfg: Any) -> "ProposalLLM":
    RejectionLog.install()
    return ProposalLLM(model_cfg, load_spec())


def _judge_client(model_cfg: Any, spec: RunSpec, judge_cfg: dict) -> EfeLLM:
    """An EfeLLM for the judge: the run's LLM settings with ``judge.llm`` on top."""
    llm = {**spec.search.llm, **(judge_cfg.get("llm") or {})}
    cfg = copy.copy(model_cfg)
    models = llm.get("models") or []
    if judge_cfg.get("llm", {}).get("models") and models:
        cfg.name = str(models[0]["name"])
    judged = replace(spec, search=replace(spec.search, llm=llm))
    if llm.get("backend") == "replay" and llm.get("path") != spec.search.llm.get("path"):
        # a replay file of its own: separate claims, so judge and proposer answers do not interleave
        client = EfeLLM(cfg, judged)
        client.backend = ReplayBackend(llm["path"], Path(spec.run_dir) / "judge_replay_claims")
        return client
    return EfeLLM(cfg, judged)


class ProposalLLM(LLMInterface):
    def __init__(self, model_cfg: Any, spec: RunSpec) -> None:
        self.inner = EfeLLM(model_cfg, spec)
        self.model = self.inner.model
        self.system_message = self.inner.system_message
        self.run_dir = Path(spec.run_dir)
        search = spec.search
        settings = search.proposal
        self.plan_first = settings.plan_first and self.inner.backend_name != "offline"
        judge_cfg = dict(settings.judge)
        kind = judge_cfg["name"]
        self.judge = None
        if kind == "rules":
            self.judge = RulesJudge(json.loads(Path(search.context_path).read_text()), self.run_dir)
        elif kind == "llm":
            self.judge = LLMJudge(lambda: _judge_client(model_cfg, spec, judge_cfg), judge_cfg.get("threshold", 0.5))
        elif kind not in ("none", None):
            raise ValueError(f"judge={kind!r}: expected none, rules or llm")
        self.last_usage: dict | None = None
        self.steering = Steering(spec.run_dir, spec.seed, search.roles, search.memory,
                                 deterministic=bool(search.executor.get("deterministic")))
        novelty = settings.novelty
        self.novelty = NoveltyIndex(self.run_dir) if novelty.enabled else None
        self.novelty_retries = int((novelty.retries_offline if self.inner.backend_name == "offline"
                                    else novelty.retries_llm) or 0)
        self.memory_programs = list(search.memory["programs"] or [])

    async def generate(self, prompt: str, **kwargs: Any) -> str:
        return await self.generate_with_context(self.system_message, [{"role": "user", "content": prompt}])

    async def generate_with_context(self, system_message: str, messages: list[dict], **kwargs: Any) -> str:
        remembered = self._remembered(messages)
        if remembered is not None:
            return remembered
        exhausted: set[str] = set()  # roles whose proposal repeated a program: the retry asks another role
        for attempt in range(self.novelty_retries + 1):
            steered, role = messages, None
            if messages:
                content, role = self.steering.steer(messages[-1]["content"], frozenset(exhausted))
                steered = [*messages[:-1], {**messages[-1], "content": content}]
            normalised, code, sha, duplicate = await self._propose(system_message, steered, role)
            if duplicate is None:
                return normalised
            if role is not None:
                exhausted.add(role)
        raise DuplicateRejected(duplicate_message(sha, duplicate))

    def _remembered(self, messages: list[dict]) -> str | None:
        """An earlier run's stored program not yet proposed in this run (``memory.use``), as a response."""
        while self.memory_programs:
            program = claim_memory_program(self.run_dir, self.memory_programs)
            if program is None:
                return None
            code = str(program["code"])
            if self.novelty is not None and self.novelty.duplicate_of(code):
                continue
            sha = code_hash(code)
            parent = prompt_parts(messages[-1]["content"])[0] if messages else None
            append_proposal(self.run_dir, {
                "time": time.time(), "model": "memory", "backend": "memory", "role": "memory",
                "system": None, "messages": [], "response": None, "plan": None, "code_sha256": sha,
                "parent_sha256": code_hash(parent) if parent else None, "judge": None,
                "memory": {k: v for k, v in program.items() if k != "code"},
            })
            self.last_usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            return "```python\n" + code.rstrip() + "\n```\n"
        return None

    async def _propose(self, system_message: str, messages: list[dict], role: str | None
                       ) -> tuple[str, str | None, str | None, str | None]:
        """One request: (normalised response, code, its hash, the evaluated program it repeats or None)."""
        plan = None
        conversation = list(messages)
        if self.plan_first:
            await self.inner.generate_with_context(system_message, plan_conversation(messages))
            plan = (getattr(self.inner, "last_response", None) or "").strip() or None
            conversation = plan_conversation(messages, plan or "(no plan)")
        normalised = await self.inner.generate_with_context(system_message, conversation)
        self.last_usage = self.inner.last_usage
        response = getattr(self.inner, "last_response", None) or normalised
        code = extract_code(normalised)
        if code is not None and plan:
            code = with_plan_docstring(code.strip(), plan)
            normalised = "```python\n" + code.rstrip() + "\n```\n"
        sha = code_hash(code) if code is not None else None
        parent = prompt_parts(messages[-1]["content"])[0] if messages else None
        duplicate = self.novelty.duplicate_of(code) if self.novelty is not None and code is not None else None
        verdict: Verdict | None = None
        if self.judge is not None and code is not None and duplicate is None:
            try:
                verdict = await self.judge(code, sha, plan, system_message)
            except Exception as exc:  # noqa: BLE001 - a judge error never stops the run
                verdict = Verdict(self.judge.name, True, error=f"{type(exc).__name__}: {exc}"[:300])
        if self.novelty is not None and code is not None and sha is not None and duplicate is None \
                and (verdict is None or verdict.passed):
            duplicate = self.novelty.claim(code, sha)  # a sibling iteration proposed it and is evaluating it
        append_proposal(self.run_dir, {
            "time": time.time(), "model": self.model, "backend": self.inner.backend_name,
            "system": system_message, "messages": conversation, "response": response, "plan": plan,
            "code_sha256": sha, "parent_sha256": code_hash(parent) if parent else None,
            "code": code if verdict is not None and not verdict.passed else None,
            "judge": verdict.as_dict() if verdict is not None else None,
            "role": role, "duplicate_of": duplicate,
        })
        if verdict is not None and not verdict.passed:
            detail = f"score {verdict.score:.2f}" if verdict.score is not None else verdict.reason
            raise JudgeRejected(rejection_message(sha, verdict.judge, detail))
        return normalised, code, sha, duplicate
