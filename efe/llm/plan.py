"""Plan, then code: the two requests of a plan-first proposal, and the plan kept in the program.

The model first answers the usual prompt with a short plan (which features, why, from which
columns), then writes the program that implements it in the same conversation. The plan is
written into the program's class docstring, so the frozen program carries its own rationale.
"""

from __future__ import annotations

import ast
from pathlib import Path

from efe.core.pysource import parse_python

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


def plan_request(user_prompt: str) -> str:
    """The first turn: the usual prompt, ending with the request for a plan instead of code."""
    return user_prompt.rstrip() + "\n\n" + (PROMPTS / "plan_request.txt").read_text()


def code_request() -> str:
    """The second turn, after the model's plan."""
    return (PROMPTS / "plan_code_request.txt").read_text()


def plan_conversation(messages: list[dict], plan: str | None = None) -> list[dict]:
    """The messages of the plan request, or (given the plan) of the code request that follows it."""
    first = [*messages[:-1], {"role": "user", "content": plan_request(messages[-1]["content"])}]
    if plan is None:
        return first
    return [*first, {"role": "assistant", "content": plan}, {"role": "user", "content": code_request()}]


def _docstring_literal(text: str, indent: str) -> str:
    body = text.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = ["Plan:", *body.splitlines()]
    inner = "\n".join((indent + line) if line.strip() else "" for line in lines)
    return f'{indent}"""{inner.lstrip()}\n{indent}"""'


def with_plan_docstring(code: str, plan: str) -> str:
    """``code`` with ``plan`` as the docstring of its first class (replacing one it had).

    Code that does not parse, or has no class, is returned unchanged: the plan is still kept
    in the run's proposals log and the lineage.
    """
    try:
        tree = parse_python(code)
    except SyntaxError:
        return code
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
    if cls is None or not cls.body:
        return code
    lines = code.splitlines()
    first = cls.body[0]
    indent = " " * first.col_offset
    literal = _docstring_literal(plan, indent).splitlines()
    has_doc = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
               and isinstance(first.value.value, str))
    if has_doc:
        lines[first.lineno - 1: first.end_lineno] = literal
    elif first.lineno > cls.lineno:
        lines[first.lineno - 1: first.lineno - 1] = literal
    else:
        return code  # a one-line class body (``class A: pass``): leave it alone
    return "\n".join(lines) + ("\n" if code.endswith("\n") else "")
