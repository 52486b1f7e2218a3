"""The judge's rules and score parsing, plan docstrings, and a judge that fails (no run needed)."""

from __future__ import annotations

import ast
import asyncio

import pytest

from efe.llm.judge import LLMJudge, parse_score, rule_problems
from efe.llm.plan import with_plan_docstring
from efe.core.programs import code_hash
from tests.conftest import tab_program

COLUMNS = ["a", "b", "n1", "n2"]


def problems(code: str, evaluated: set[str] = frozenset()) -> list[str]:
    return rule_problems(code, COLUMNS, "label", set(evaluated), code_hash(code))


def test_rules_pass_a_sound_program():
    code = tab_program("out = X.copy()\nout['r'] = X['a'] / X['b']\nout['r2'] = out['r'] ** 2\nreturn out",
                       fit_body="return {'m': float(X[['a', 'b']].mean().mean())}")
    assert problems(code) == []


def test_rules_reject_the_target_in_transform_and_missing_columns():
    target = tab_program("out = X.copy()\nout['leak'] = X['label']\nreturn out")
    assert any("target column 'label'" in p for p in problems(target))
    missing = tab_program("out = X.copy()\nout['r'] = X.loc[:, 'income'] / X['b']\nreturn out",
                          fit_body="return {'m': X['age'].mean()}")
    found = problems(missing)
    assert any(p.startswith("transform reads") and "income" in p for p in found)
    assert any(p.startswith("fit reads") and "age" in p for p in found)


def test_rules_reject_a_repeat_and_leave_syntax_errors_to_the_evaluator():
    code = tab_program("return X.copy()")
    assert problems(code, {code_hash(code)}) == ["repeats a program this run has already evaluated"]
    assert problems("def broken(:\n    pass") == []


@pytest.mark.parametrize("answer,score", [('{"score": 0.8, "reason": "ok"}', 0.8),
                                          ('Sure.\n{"score": 0, "reason": "no"}', 0.0),
                                          ("score: 0.35", 0.35)])
def test_parse_score(answer, score):
    assert parse_score(answer)[0] == pytest.approx(score)


@pytest.mark.parametrize("answer", ["I cannot judge this", '{"score": 7}', ""])
def test_parse_score_refuses_answers_without_a_valid_score(answer):
    with pytest.raises(ValueError):
        parse_score(answer)


def test_a_failing_llm_judge_lets_the_proposal_through_and_records_the_error():
    class Broken:
        async def generate_with_context(self, system, messages):
            raise ConnectionError("judge endpoint down")

    verdict = asyncio.run(LLMJudge(Broken, 0.5)("code", "sha", "plan", "system"))
    assert verdict.passed and "judge endpoint down" in verdict.error and verdict.score is None

    def unbuildable():
        raise FileNotFoundError("llm.path: replay file 'judge.json' does not exist")

    verdict = asyncio.run(LLMJudge(unbuildable, 0.5)("code", "sha", None, "system"))
    assert verdict.passed and "judge.json" in verdict.error


def test_plan_becomes_the_program_class_docstring():
    plan = 'Add log(a/b) from a and b: the label depends on the ratio.\nDrop n1 ("noise"); keep \\ as is.'
    code = with_plan_docstring(tab_program("return X.copy()"), plan)
    tree = ast.parse(code)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    doc = ast.get_docstring(cls)
    assert doc.startswith("Plan:") and plan.splitlines()[0] in doc and '("noise")' in doc and "\\" in doc
    assert with_plan_docstring("not python (", plan) == "not python ("
