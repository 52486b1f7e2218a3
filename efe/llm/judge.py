"""A judge before the evaluator: reject a proposal without spending an evaluation on it.

``rules`` reads the program (never runs it): ``transform`` must not name the target column, the
program must not read input columns that do not exist, and it must not repeat a program the run
has already evaluated. ``llm`` asks a model to score the soundness of the plan (or, without a
plan, of the program) from 0 to 1 and rejects below ``threshold``. A judge that fails (no answer,
an unreadable answer, an exception) lets the proposal through and records the error: a judge
never stops a run.
"""

from __future__ import annotations

import ast
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from efe.core.pysource import parse_python
from efe.rundir.proposals import read_proposals

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


@dataclass
class Verdict:
    judge: str                       # rules | llm
    passed: bool
    reason: str = ""
    score: float | None = None       # llm: the model's soundness score
    error: str | None = None         # the judge failed; the proposal passed
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- rules
def _method(tree: ast.Module, name: str) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]


def _frame_param(fn: ast.FunctionDef) -> str | None:
    """The name of the table argument: the first parameter after ``self``."""
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    if params and params[0] in ("self", "cls"):
        params = params[1:]
    return params[0] if params else None


def _reassigned(fn: ast.FunctionDef, name: str) -> bool:
    for node in ast.walk(fn):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.With)):
            targets = [getattr(node, "target", None)]
        for t in targets:
            if isinstance(t, ast.Name) and t.id == name:
                return True
    return False


def _read_columns(fn: ast.FunctionDef, frame: str) -> set[str]:
    """String keys read directly from the input table: ``X['a']``, ``X[['a', 'b']]``, ``X.loc[:, 'a']``."""
    found: set[str] = set()
    for node in ast.walk(fn):
        if not isinstance(node, ast.Subscript) or not isinstance(node.ctx, ast.Load):
            continue
        value, key = node.value, node.slice
        if isinstance(value, ast.Attribute) and value.attr == "loc" and isinstance(key, ast.Tuple) and len(key.elts) == 2:
            value, key = value.value, key.elts[1]
        if not (isinstance(value, ast.Name) and value.id == frame):
            continue
        keys = key.elts if isinstance(key, (ast.List, ast.Tuple)) else [key]
        found.update(k.value for k in keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
    return found


def rule_problems(code: str, columns: Iterable[str], target: str | None, evaluated: set[str],
                  code_sha: str) -> list[str]:
    """Why the rules reject this program (empty: it passes)."""
    if code_sha in evaluated:
        return ["repeats a program this run has already evaluated"]
    try:
        tree = parse_python(code)
    except SyntaxError:
        return []  # the evaluator reports syntax errors with their line; nothing to judge here
    problems: list[str] = []
    known = {str(c) for c in columns}
    for fn in _method(tree, "transform"):
        uses_target = target and any(isinstance(n, ast.Constant) and n.value == target for n in ast.walk(fn))
        if uses_target:
            problems.append(f"transform uses the target column '{target}'")
    if known:
        for name in ("fit", "transform"):
            for fn in _method(tree, name):
                frame = _frame_param(fn)
                if frame is None or _reassigned(fn, frame):
                    continue
                missing = sorted(_read_columns(fn, frame) - known)
                if missing:
                    problems.append(f"{name} reads column(s) that do not exist: {', '.join(missing)}")
    return problems


class RulesJudge:
    name = "rules"

    def __init__(self, context: Mapping[str, Any], run_dir: Path) -> None:
        self.columns = list((context.get("columns") or {}).keys())
        self.target = context.get("target")
        self.programs = run_dir / "programs"
        self.passed: set[str] = set()   # proposed by this worker, maybe still being evaluated

    async def __call__(self, code: str, code_sha: str, plan: str | None, system: str) -> Verdict:
        start = time.perf_counter()
        evaluated = self.passed | {p.stem for p in self.programs.glob("*.py")} if self.programs.exists() else self.passed
        problems = rule_problems(code, self.columns, self.target, evaluated, code_sha)
        if not problems:
            self.passed.add(code_sha)
        return Verdict("rules", not problems, "; ".join(problems), details=problems,
                       latency_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- llm
_SCORE = re.compile(r'\b"?score"?\s*[:=]\s*(-?\d+(?:\.\d+)?)', re.I)


def parse_score(text: str) -> tuple[float, str]:
    """(score, reason) from the judge's answer; ValueError when there is no score in [0, 1]."""
    text = (text or "").strip()
    match = re.search(r"\{.*\}", text, re.S)
    score, reason = None, ""
    if match:
        try:
            data = json.loads(match.group(0))
            score, reason = float(data["score"]), str(data.get("reason", ""))
        except (ValueError, KeyError, TypeError):
            score = None
    if score is None:
        found = _SCORE.search(text)
        if found:
            score = float(found.group(1))
    if score is None or not 0.0 <= score <= 1.0:
        raise ValueError(f"no score between 0 and 1 in the judge's answer: {text[:120]!r}")
    return score, reason[:500]


def judge_messages(system: str, code: str, plan: str | None) -> tuple[str, list[dict]]:
    """(system message, messages) of one judge request: the proposer's task, then the proposal."""
    proposal = f"## Plan\n{plan.strip()}" if plan else f"## Program\n```python\n{code.strip()}\n```"
    user = f"## The task the proposer was given\n{system.strip()}\n\n{proposal}\n"
    return (PROMPTS / "judge_system.txt").read_text(), [{"role": "user", "content": user}]


class LLMJudge:
    name = "llm"

    def __init__(self, make_client: Callable[[], Any], threshold: float) -> None:
        self.make_client = make_client  # an EfeLLM: cache, ledger and budgets apply to the judge too
        self.client: Any = None         # built on first use, so that a bad judge setting is a judge error
        self.threshold = float(threshold)

    async def __call__(self, code: str, code_sha: str, plan: str | None, system: str) -> Verdict:
        start = time.perf_counter()
        judge_system, messages = judge_messages(system, code, plan)
        tokens: dict = {}
        try:
            if self.client is None:
                self.client = self.make_client()
            await self.client.generate_with_context(judge_system, messages)
            tokens = self._tokens()
            score, reason = parse_score(getattr(self.client, "last_response", None) or "")
        except Exception as exc:  # noqa: BLE001 - a judge error never stops the run
            return Verdict("llm", True, error=f"{type(exc).__name__}: {exc}"[:300],
                           latency_s=time.perf_counter() - start, **tokens)
        passed = score >= self.threshold
        why = reason or ("" if passed else "plan judged unsound")
        return Verdict("llm", passed, why, score=score, latency_s=time.perf_counter() - start, **tokens)

    def _tokens(self) -> dict:
        """Tokens and cost of the judge's last call (a cached answer costs nothing)."""
        usage = dict(self.client.last_usage or {})
        pt, ct = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        cached = bool(getattr(self.client, "last_cache_hit", False))
        cost = 0.0 if cached else self.client.ledger.cost(self.client.model, pt, ct)
        return {"prompt_tokens": pt, "completion_tokens": ct, "cost_usd": cost}


def summarize(run_dir: str | Path) -> dict | None:
    """Counts and cost of a run's judge verdicts, for the report (None: no judge ran)."""
    verdicts = [p["judge"] for p in read_proposals(run_dir) if p.get("judge")]
    if not verdicts:
        return None
    return {"judge": verdicts[0]["judge"], "judged": len(verdicts),
            "rejected": sum(1 for v in verdicts if not v["passed"]),
            "errors": sum(1 for v in verdicts if v.get("error")),
            "prompt_tokens": sum(v.get("prompt_tokens", 0) for v in verdicts),
            "completion_tokens": sum(v.get("completion_tokens", 0) for v in verdicts),
            "cost_usd": round(sum(v.get("cost_usd", 0.0) for v in verdicts), 6),
            "latency_s": round(sum(v.get("latency_s", 0.0) for v in verdicts), 3)}


def summary_line(summary: Mapping[str, Any] | None) -> list[str]:
    """The report's line about the judge (none without a judge)."""
    if not summary:
        return []
    return [f"- Judge ({summary['judge']}): {summary['judged']} proposals judged, {summary['rejected']} rejected "
            f"before evaluation, {summary['errors']} judge errors (let through); judge cost "
            f"${summary['cost_usd']:.4f} ({summary['prompt_tokens']}+{summary['completion_tokens']} tokens)."]
