"""The tabular evaluator through its public entry points: gates, scoring, fitness, feedback."""

from __future__ import annotations

import importlib.util
import json

import pytest

from evaluators.tabular.evaluator import TabEvaluator
from tests.conftest import IDENTITY_TAB, ROOT, make_spec, ratio_table, sandbox_limits, tab_program

METRIC_KEYS = {"combined_score", "generated_feature_count", "dropped_feature_count", "auc_base",
               "auc_candidate", "delta_auc", "valid"}

RATIO_PROGRAM = tab_program(
    "out = X.copy()\n"
    "out['log_a_over_b'] = np.log(X['a'] / X['b'])\n"
    "return out"
)


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    spec = make_spec(tmp_path_factory.mktemp("spec"), ratio_table(), "label")
    ev = TabEvaluator(spec)
    yield ev
    ev.close()


def test_identity_scores_exactly_the_baseline(evaluator):
    outcome = evaluator.evaluate(IDENTITY_TAB)
    assert outcome.valid, outcome.reason
    assert outcome.metrics["combined_score"] == 0.5
    assert outcome.metrics["delta_auc"] == 0.0
    assert outcome.metrics["auc_candidate"] == outcome.metrics["auc_base"] > 0.5
    assert METRIC_KEYS <= set(outcome.metrics)


def test_identity_is_exact_with_lightgbm(tmp_path):
    ev = TabEvaluator(make_spec(tmp_path, ratio_table(400), "label", scorer={"name": "lightgbm", "params": {"n_estimators": 30}}))
    try:
        outcome = ev.evaluate(IDENTITY_TAB)
        assert outcome.metrics["combined_score"] == 0.5 and outcome.metrics["delta_auc"] == 0.0
    finally:
        ev.close()


def test_ratio_feature_beats_identity(evaluator):
    outcome = evaluator.evaluate(RATIO_PROGRAM)
    assert outcome.valid, outcome.reason
    assert outcome.metrics["delta_auc"] > 0.02
    assert outcome.metrics["combined_score"] > 0.5
    assert outcome.metrics["generated_feature_count"] == 1.0
    assert outcome.columns["new"] == ["log_a_over_b"]
    assert "log_a_over_b" in outcome.artifacts["importance_pool_a"]
    assert "|---" in outcome.artifacts["tree_pool_a"]


def test_reevaluation_gives_the_same_score(evaluator):
    first = evaluator.evaluate(RATIO_PROGRAM)
    second = evaluator.evaluate(RATIO_PROGRAM)
    assert first.runtime_s > 0 and second.runtime_s > 0
    assert first.metrics == second.metrics
    assert first.artifacts == second.artifacts  # prompts must not vary between identical runs


def test_dropping_a_column_is_counted_and_penalised(evaluator):
    outcome = evaluator.evaluate(tab_program("return X.drop(columns=['n1'])"))
    assert outcome.valid
    assert outcome.metrics["dropped_feature_count"] == 1.0
    assert outcome.columns["dropped"] == ["n1"]


BAD_PROGRAMS = {
    "input_mutated": tab_program("X['a'] = 0.0\nreturn X"),
    "input_mutated_in_fit": tab_program("return X.copy()", fit_body="X.drop(columns=['n1'], inplace=True)\nreturn {}"),
    "row_count": tab_program("return X.iloc[:-1]"),
    "infinite_value": tab_program("return X.assign(r=X['a'] / (X['b'] * 0.0))"),
    "batch_dependence": tab_program("return X.assign(centred=X['a'] - X['a'].mean())"),
    "index_dependence": tab_program("return X.assign(pos=X.index.to_numpy() * 1.0)"),
    "original_changed": tab_program("out = X.copy()\nout['a'] = out['a'] * 2\nreturn out"),
    "too_many_columns": tab_program("out = X.copy()\nfor i in range(30):\n    out[f'c{i}'] = X['a'] * i\nreturn out"),
    "state_mutated": tab_program("state['calls'] = state.get('calls', 0) + 1\nreturn X.copy()"),
    "all_nan_column": tab_program("return X.assign(empty=np.nan)"),
    "output_type": tab_program("return X.to_numpy()"),
    "value_too_large": tab_program("return X.assign(huge=X['a'] * 1e15)"),
}


@pytest.mark.parametrize("gate", sorted(BAD_PROGRAMS))
def test_each_gate_rejects_its_bad_program(evaluator, gate):
    outcome = evaluator.evaluate(BAD_PROGRAMS[gate])
    assert not outcome.valid
    expected = "input_mutated" if gate.startswith("input_mutated") else gate
    assert outcome.verdict == f"invalid:gate:{expected}", outcome.reason
    assert outcome.metrics["combined_score"] == 0.0
    assert METRIC_KEYS <= set(outcome.metrics)
    assert outcome.reason and outcome.artifacts["reason"] == outcome.reason
    if gate == "input_mutated_in_fit":
        assert outcome.reason.startswith("fit modified")


def test_program_failures_are_scored_zero_with_reason(evaluator):
    outcome = evaluator.evaluate(tab_program("import os\nreturn X"))
    assert outcome.verdict == "invalid:forbidden" and "os" in outcome.reason
    outcome = evaluator.evaluate("def build_feature_program(seed):\n  return 1 +\n")
    assert outcome.verdict == "invalid:syntax"
    assert outcome.metrics["combined_score"] == 0.0


def test_scoring_pool_exception_is_redacted(evaluator):
    # fails only on pool B rows: categories unseen in fit raise with the value in the message
    program = tab_program(
        "return X.assign(code=[state['rank'][round(v, 12)] for v in X['a']])",
        fit_body="return {'rank': {round(v, 12): i for i, v in enumerate(X['a'])}}",
    )
    outcome = evaluator.evaluate(program)
    assert outcome.verdict == "invalid:exception"
    assert "message withheld" in outcome.reason and "KeyError" in outcome.reason


def test_pool_b_labels_never_reach_the_program(evaluator):
    """A program hunts its whole process for label vectors; pool A's are there, B's are not."""
    n_a = len(evaluator.folds.pool_a(0)[1])
    n_b = len(evaluator.folds.pool_b(0)[1])
    hunt = f'''
seen, found = set(), {{}}
def visit(obj, depth):
    if id(obj) in seen or depth > 4:
        return
    seen.add(id(obj))
    if isinstance(obj, (pd.Series, np.ndarray)) and obj.ndim == 1 and len(obj) in ({n_a}, {n_b}):
        values = set(np.unique(np.asarray(obj, dtype=object)).tolist())
        if values <= {{0, 1}} and len(values) == 2:
            found[len(obj)] = found.get(len(obj), 0) + 1
    elif isinstance(obj, pd.DataFrame) and len(obj) in ({n_a}, {n_b}):
        for col in obj.columns:
            visit(obj[col], depth + 1)
    elif type(obj) is dict:
        for value in list(obj.values()):
            visit(value, depth + 1)
    elif type(obj) in (list, tuple):
        for value in obj:
            visit(value, depth + 1)
frame = pd.io.common.os.sys._getframe()
while frame is not None:
    visit(frame.f_locals, 0)
    visit(frame.f_globals, 0)
    frame = frame.f_back
for module in list(pd.io.common.os.sys.modules.values()):
    visit(module.__dict__, 0)
raise RuntimeError(f"found A={{found.get({n_a}, 0)}} B={{found.get({n_b}, 0)}}")
'''
    program = tab_program("return X", fit_body=hunt)
    evaluator.sandbox.static_check = False
    try:
        outcome = evaluator.stage2(program)
    finally:
        evaluator.sandbox.static_check = True
    assert outcome.verdict == "invalid:exception", outcome.reason
    assert "found A=" in outcome.reason
    found_a = int(outcome.reason.split("found A=")[1].split()[0])
    found_b = int(outcome.reason.split(" B=")[1].split()[0].rstrip(")"))
    assert found_a >= 1, "the hunt must be able to find labels that are present"
    assert found_b == 0, "pool B labels are present in the sandbox"


def test_tabpfn_scores_through_tiny_checkpoint(tmp_path, tiny_tabpfn):
    scorer = {"name": "tabpfn", "model_path": str(tiny_tabpfn), "params": {"n_estimators": 1}}
    ev = TabEvaluator(make_spec(tmp_path, ratio_table(300), "label", scorer=scorer))
    try:
        outcome = ev.evaluate(IDENTITY_TAB)
        assert outcome.valid, outcome.reason
        assert outcome.metrics["combined_score"] == 0.5
        assert 0.0 <= outcome.metrics["auc_base"] <= 1.0
        other = ev.evaluate(RATIO_PROGRAM)
        assert other.valid and other.metrics["auc_candidate"] != other.metrics["auc_base"]
    finally:
        ev.close()


def test_tabpfn_without_weights_says_what_to_set(tmp_path):
    from evaluators.tabular.scorers import ScorerConfigError

    with pytest.raises(ScorerConfigError, match="model_path"):
        TabEvaluator(make_spec(tmp_path, ratio_table(100), "label", scorer={"name": "tabpfn"}))


def test_openevolve_evaluator_file(tmp_path, monkeypatch):
    spec_path = tmp_path / "spec.json"
    from efe.core.runspec import SPEC_ENV

    spec_path.write_text(json.dumps(make_spec(tmp_path, ratio_table(300), "label")))
    monkeypatch.setenv(SPEC_ENV, str(spec_path))
    module_spec = importlib.util.spec_from_file_location("efe_eval_file", ROOT / "evaluators" / "tab.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    program = tmp_path / "candidate.py"
    program.write_text(IDENTITY_TAB)
    stage1 = module.evaluate_stage1(str(program))
    assert stage1.metrics["valid"] == 1.0 and "combined_score" in stage1.metrics
    result = module.evaluate(str(program))
    assert result.metrics["combined_score"] == 0.5
    bad = tmp_path / "bad.py"
    bad.write_text("this is not python")
    failed = module.evaluate(str(bad))
    assert failed.metrics["combined_score"] == 0.0
    assert {"generated_feature_count", "dropped_feature_count"} <= set(failed.metrics)
    from evaluators.tabular import service

    service.get_evaluator(str(spec_path)).close()


def test_paired_scoring_reports_mean_se_and_folds(evaluator):
    outcome = evaluator.evaluate(RATIO_PROGRAM)
    m = outcome.metrics
    assert m["n_folds"] == evaluator.folds.n_folds == 3 and m["full_scoring"] == 1.0
    assert m["delta_auc_se"] > 0 and m["delta_auc"] - m["delta_auc_se"] == pytest.approx(m["delta_auc_lcb"])
    assert "standard error" in outcome.artifacts["scores"] and "3 paired folds" in outcome.artifacts["scores"]


def test_confidence_z_zero_is_the_paper_formula(tmp_path):
    import math

    ev = TabEvaluator(make_spec(tmp_path, ratio_table(), "label", fitness={"confidence_z": 0.0}))
    try:
        m = ev.evaluate(RATIO_PROGRAM).metrics
        n_b = int(sum(len(ev.folds.pool_b(i)[1]) for i in range(3)) / 3)
        assert m["combined_score"] == pytest.approx(0.5 + 5 * m["delta_auc"] - 0.10 * math.sqrt(1 / n_b))
    finally:
        ev.close()


def test_cascade_stops_a_hopeless_candidate_after_the_first_folds(tmp_path):
    ev = TabEvaluator(make_spec(tmp_path, ratio_table(), "label", run_dir=str(tmp_path)))
    try:
        assert ev.evaluate(IDENTITY_TAB).metrics["full_scoring"] == 1.0  # sets the run's best: 0.5
        hopeless = ev.evaluate(tab_program("return X.drop(columns=['a'])"))
        m = hopeless.metrics
        assert hopeless.valid and m["n_folds"] == 2 and m["full_scoring"] == 0.0
        assert METRIC_KEYS <= set(m) and m["combined_score"] < 0.5
        assert "stopped after 2 of 3 folds" in hopeless.artifacts["scores"]
        assert ev.evaluate(RATIO_PROGRAM).metrics["full_scoring"] == 1.0  # a promising one gets every fold
    finally:
        ev.close()


class _RowSpy:
    """Wraps the real sandbox and records the index labels of every table the evaluator hands it."""

    def __init__(self, sandbox):
        self.inner, self.rows = sandbox, {}

    def _record(self, values):
        for name, value in (values or {}).items():
            if hasattr(value, "index"):
                self.rows.setdefault(name.rstrip("0123456789"), set()).update(value.index.tolist())

    def load(self, key, values):
        self._record(values)
        return self.inner.load(key, values)

    def run(self, *args, values=None, **kwargs):
        self._record(values)
        return self.inner.run(*args, values=values, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_search_never_scores_selection_pool_rows(tmp_path):
    """Stage 1 and every search fold see only the search rows; the final selection validates only on the pool."""
    from efe.sandbox import Sandbox

    spec = make_spec(tmp_path, ratio_table(300), "label", selection_pool={"fraction": 0.25, "seed": 1000})
    spy = _RowSpy(Sandbox(sandbox_limits(timeout_s=20, memory_mb=1024, cpu_s=30)))
    ev = TabEvaluator(spec, sandbox=spy)
    try:
        pool = set(ev.X.index[ev.selection_rows].tolist())
        search = set(ev.X.index[ev.search_rows].tolist())
        assert len(pool) == 75 and not pool & search and len(pool | search) == 300
        assert abs(ev.y.iloc[ev.selection_rows].mean() - ev.y.mean()) < 0.03  # stratified
        assert ev.evaluate(RATIO_PROGRAM).metrics["full_scoring"] == 1.0  # every search fold was scored
        seen_by_search = set().union(*spy.rows.values())
        assert seen_by_search and not seen_by_search & pool
        spy.rows.clear()
        outcome = ev.score_fresh(RATIO_PROGRAM, 3, 2, 1000)
        assert outcome.valid and outcome.metrics["n_folds"] == 6 and outcome.metrics["delta_auc"] > 0
        assert spy.rows["XB"] == pool  # every pool row is validated, and nothing else
        assert search <= spy.rows["XA"]  # each fit also sees the search rows
    finally:
        ev.close()


def test_selection_pool_carve_is_deterministic_and_falls_back_on_a_tiny_class():
    import numpy as np
    import pandas as pd

    from evaluators.tabular.pools import carve_selection_pool, usable_pool_fraction

    y = pd.Series(np.r_[np.zeros(180, int), np.ones(20, int)])
    a, b = carve_selection_pool(y, 0.25, 7), carve_selection_pool(y, 0.25, 7)
    assert all((x == z).all() for x, z in zip(a, b)) and len(a[1]) == 50 and y.iloc[a[1]].sum() == 5
    assert len(carve_selection_pool(y, 0.0, 7)[1]) == 0
    assert usable_pool_fraction(y, 0.25, 5) == (0.25, None)
    fraction, warning = usable_pool_fraction(y, 0.25, 10)
    assert fraction == 0.0 and "only 5 rows of the smaller class" in warning


def test_a_hung_candidate_is_killed_within_timeout_s_of_its_last_step(tmp_path):
    """Stage 1 merges the fit and transforms of four folds (and the gate's steps) into one sandbox call;
    the wall-clock limit still holds per step, so a program that hangs is killed ``timeout_s`` after
    its last completed step, not (steps x timeout_s) later."""
    import time

    spec = make_spec(tmp_path, ratio_table(300), "label",
                     pools={"n_folds": 4, "n_repeats": 1, "cascade_folds": 4},
                     sandbox={"timeout_s": 2, "memory_mb": 1024, "cpu_s": 60})
    ev = TabEvaluator(spec)
    try:
        assert ev.evaluate(IDENTITY_TAB).valid  # the worker is up and the folds are loaded
        hung = tab_program("while X.shape[0] > 0:\n    pass\nreturn X")  # fit returns; the first transform hangs
        started = time.perf_counter()
        outcome = ev.evaluate(hung)
        took = time.perf_counter() - started
        assert not outcome.valid and outcome.reason.startswith("timeout: no result within 2s wall clock"), outcome.reason
        assert "killed in step 3 of" in outcome.reason and "(transform -> TA" in outcome.reason, outcome.reason
        assert took < 7, f"a hung candidate was killed only after {took:.1f}s with timeout_s=2"
    finally:
        ev.close()
