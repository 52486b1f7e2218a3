"""Both evaluators follow ``evaluators.base.Evaluator``: every outcome, a failure included, carries the
setting's whole metric set (openevolve 0.4.0 crashes a run on a result missing a MAP-Elites axis)."""

from __future__ import annotations

import inspect

import pytest
import yaml

from evaluators.base import Evaluator
from evaluators.tabular.evaluator import TabEvaluator
from evaluators.timeseries.evaluator import TimeEvaluator
from tests.conftest import IDENTITY_TAB, ROOT, make_spec, ratio_table, tab_program
from tests.test_time_evaluator import IDENTITY as IDENTITY_TIME
from tests.test_time_evaluator import spec_for, time_program

BUILT_IN_AXES = {"complexity", "diversity", "score"}  # openevolve computes these itself


def _custom_axes(setting: str) -> set[str]:
    cfg = yaml.safe_load((ROOT / "conf" / "evolution" / f"{setting}.yaml").read_text())
    return set(cfg["openevolve"]["database"]["feature_dimensions"]) - BUILT_IN_AXES


def test_both_evaluators_are_complete_evaluators():
    for cls in (TabEvaluator, TimeEvaluator):
        assert issubclass(cls, Evaluator) and not inspect.isabstract(cls)

    class Partial(Evaluator):
        def stage1(self, source):
            raise NotImplementedError

    with pytest.raises(TypeError):
        Partial()


@pytest.mark.parametrize("setting", ["tab", "time"])
def test_every_failure_carries_the_valid_metric_set(setting, tmp_path):
    if setting == "tab":
        ev, identity = TabEvaluator(make_spec(tmp_path, ratio_table(300), "label")), IDENTITY_TAB
        broken = tab_program("import os\nreturn X")
    else:
        ev, identity = TimeEvaluator(spec_for(tmp_path)), IDENTITY_TIME
        broken = time_program(fit="import os\nreturn {'hist_len': int(len(y_hist))}")
    try:
        valid = ev.evaluate(identity)
        assert valid.valid, valid.reason
        keys = set(valid.metrics)
        assert {"combined_score", *_custom_axes(setting)} <= keys
        failures = [ev.evaluate(broken), ev.evaluate("def broken(:\n"), ev.internal_error(identity, "boom " * 200)]
        for outcome in failures:
            assert not outcome.valid and outcome.verdict.startswith("invalid:")
            assert set(outcome.metrics) == keys
            assert outcome.metrics["combined_score"] == ev.fitness.invalid_score
            assert outcome.artifacts["verdict"].startswith("invalid (") and outcome.artifacts["reason"]
            assert outcome.artifacts["failure_stage"] == outcome.stage
        internal = failures[-1]
        assert internal.verdict == "invalid:internal" and len(internal.reason) == 500
    finally:
        ev.close()
