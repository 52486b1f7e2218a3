"""A lean evaluation: few sandbox calls, data sent once, cheap feedback, subsampled scoring rows,
parallel re-scoring, and the cost profile of scripts/bench_eval.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from efe.core.specs import SandboxSpec, tab_spec
from efe.datasets.tabular import TabularDataset
from efe.tab.prepare import search_part
from efe.sandbox import Sandbox, SandboxResult
from evaluators.tabular.evaluator import TabEvaluator
from evaluators.tabular.sampling import scoring_rows
from tests.conftest import IDENTITY_TAB, make_spec, ratio_table, tab_program

RATIO = tab_program("out = X.copy()\nout['log_a_over_b'] = np.log(X['a'] / X['b'])\nreturn out")


class CountingSandbox(Sandbox):
    """A real sandbox that counts what crosses into its worker."""

    def __init__(self, limits: SandboxSpec) -> None:
        super().__init__(limits)
        self.runs: list[str | None] = []
        self.loads: list[str] = []

    def run(self, source, setting, plan, returns, **kw):
        self.runs.append(kw.get("data"))
        return super().run(source, setting, plan, returns, **kw)

    def load(self, key, values):
        self.loads.append(key)
        super().load(key, values)


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    spec = make_spec(tmp_path_factory.mktemp("cost"), ratio_table(), "label")
    sandbox = CountingSandbox(tab_spec(spec).sandbox)
    ev = TabEvaluator(spec, sandbox=sandbox)
    yield ev, sandbox
    ev.close()


def test_one_sandbox_call_per_cut_candidate_and_data_sent_once(counted):
    ev, sandbox = counted
    assert ev.evaluate(IDENTITY_TAB).metrics["full_scoring"] == 1.0  # the cascade's best: the identity
    loads_after_first = list(sandbox.loads)
    sandbox.runs.clear()
    hopeless = ev.evaluate(tab_program("return X.drop(columns=['a'])"))
    assert hopeless.valid and hopeless.metrics["full_scoring"] == 0.0
    assert len(sandbox.runs) == 1, "gates and the first folds share one sandbox call"
    sandbox.runs.clear()
    promising = ev.evaluate(RATIO)
    assert promising.metrics["full_scoring"] == 1.0 and len(sandbox.runs) == 2
    assert sandbox.loads == loads_after_first, "pools and the gate sample are sent to the worker once"
    assert all(key is not None for key in sandbox.runs), "every call references data already in the worker"


def test_gate_failures_still_stop_at_stage1(counted):
    ev, _ = counted
    outcome = ev.evaluate(tab_program("return X.assign(centred=X['a'] - X['a'].mean())"))
    assert outcome.verdict == "invalid:gate:batch_dependence" and outcome.stage == "stage1"


def test_a_failing_fold_step_is_a_stage2_failure_with_its_reason(counted):
    ev, _ = counted
    # a row of the first fold's pool B: absent from the pool A the gates run on, present in every other pool A
    row = int(ev.folds.X.index[ev.folds.indices(0)[1][0]])
    program = tab_program("return X.assign(b2=X['b'] * state['scale'])",
                          fit_body=f"if {row} in X.index:\n    raise ValueError('too many rows')\nreturn {{'scale': 2.0}}")
    outcome = ev.evaluate(program)  # the gates pass on the first fold; the second fold's fit fails
    assert outcome.verdict == "invalid:exception" and outcome.stage == "stage2"
    assert "too many rows" in outcome.reason and "ValueError" in outcome.reason


def test_a_failing_first_fold_is_a_stage1_failure_with_its_reason(counted):
    ev, _ = counted
    program = tab_program("return X.assign(b2=X['b'] * state['scale'])",
                          fit_body="if len(X) > 150:\n    raise ValueError('too many rows')\nreturn {'scale': 2.0}")
    outcome = ev.evaluate(program)  # the gates run on the first fold's own fit
    assert outcome.verdict == "invalid:exception" and outcome.stage == "stage1"
    assert "too many rows" in outcome.reason and "ValueError" in outcome.reason


def test_feedback_uses_the_scorers_own_importances(counted):
    ev, _ = counted
    ev.clock.take()
    outcome = ev.evaluate(RATIO)
    seconds, fits = ev.clock.take()
    lines = outcome.artifacts["importance_pool_a"].splitlines()
    assert lines[0].startswith("log_a_over_b: +")  # the informative column leads
    shares = [float(line.split(": ")[1].split(" ±")[0]) for line in lines]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    assert "permutation_importance_pool_a" not in outcome.artifacts
    assert fits == 3 and seconds["feedback"] < seconds["scorer"]


def test_gate_steps_in_the_sandbox_are_charged_to_the_gates_not_the_program(counted):
    ev, _ = counted
    # slow only on the gate's parts of its 120-row sample (folds have 200+ rows)
    slow_on_parts = tab_program("if len(X) < 100:\n    sum(range(5_000_000))\nreturn X.assign(b2=X['b'] * 2.0)")
    ev.clock.take()
    assert ev.evaluate(slow_on_parts).valid
    seconds, _ = ev.clock.take()
    assert seconds["gates"] > 2 * seconds["program"], seconds


def test_permutation_importance_stays_available(tmp_path):
    spec = make_spec(tmp_path, ratio_table(300), "label")
    spec["feedback"] = {**spec["feedback"], "importance": "permutation"}
    ev = TabEvaluator(spec)
    try:
        outcome = ev.evaluate(RATIO)
        assert "log_a_over_b" in outcome.artifacts["permutation_importance_pool_a"]
        assert "importance_pool_a" not in outcome.artifacts
    finally:
        ev.close()


def test_scoring_rows_are_a_stratified_sample_above_max_rows(tmp_path):
    frame = ratio_table(900)
    X, y = frame.drop(columns=["label"]), (frame["label"] == "yes").astype("int64")
    same = scoring_rows(X, y, 1000, seed=0)
    assert same[0] is X
    Xs, ys = scoring_rows(X, y, 300, seed=0)
    assert len(Xs) == len(ys) == 300 and Xs.index.is_monotonic_increasing
    assert abs(ys.mean() - y.mean()) < 0.01
    pd.testing.assert_frame_equal(Xs, scoring_rows(X, y, 300, seed=0)[0])  # the same rows in every process
    ev = TabEvaluator(make_spec(tmp_path, frame, "label", scoring={"max_rows": 300}))
    try:
        assert len(ev.X) == 300 and ev.folds.n_folds == 3
    finally:
        ev.close()


def test_a_failed_keep_going_step_skips_the_steps_that_need_its_result(sandbox):
    X = pd.DataFrame({"a": np.arange(10.0)})
    plan = [{"op": "fit", "args": ["X", "y"], "out": "state", "keep_going": True},
            {"op": "transform", "args": ["X", "state"], "out": "T", "keep_going": True},
            {"op": "transform", "args": ["X", "other"], "out": "T2", "keep_going": True}]
    source = tab_program("return X.copy()", fit_body="raise ValueError('no fit')")
    result = sandbox.run(source, "tab", plan, ["T", "T2"], values={"X": X, "y": pd.Series(np.arange(10) % 2),
                                                                    "other": {}})
    assert isinstance(result, SandboxResult)
    assert result.errors["state"]["exception"] == "ValueError"
    assert result.errors["T"]["exception"] == "skipped" and "state" in result.errors["T"]["message"]
    pd.testing.assert_frame_equal(result.outputs["T2"], X)


def test_parallel_rescoring_keeps_order_and_matches_serial():
    from efe.tab.parallel import map_parallel, prescored

    assert map_parallel(lambda x: x * x, range(7), workers=3) == [x * x for x in range(7)]

    class Fake:
        closed = 0

        def score_fresh(self, source, n_folds, n_repeats, seed):
            return (source, n_folds, n_repeats, seed)

        def close(self):
            Fake.closed += 1

    fresh = {"n_folds": 5, "n_repeats": 2, "seed": 1000}
    scored = prescored(Fake, ["a", "b", "a", "c"], fresh, workers=2)
    assert scored.score_fresh("b", 5, 2, 1000) == ("b", 5, 2, 1000)
    assert Fake.closed >= 1  # the evaluators the threads made are closed


def test_bench_profile_splits_the_evaluation_by_part(tmp_path):
    from efe.bench.eval import ROWS, candidate_set, generated_table, profile_table

    frame = generated_table(400, 8)
    assert frame.shape == (400, 9) and frame.isna().any().any()
    assert set(frame.dtypes.astype(str)) == {"float64", "object"}
    profile = profile_table("generated", tmp_path, 2, rows=400, cols=8, overrides=["pools.n_folds=3"])
    assert len(profile.walls) == 2 and sum(profile.fits) >= 4
    for i, wall in enumerate(profile.walls):
        assert sum(profile.parts[p][i] for p in ROWS) == pytest.approx(wall)
    assert profile.ratio > 1.0
    assert any(line.startswith("  ratio whole evaluation / scorer fits") for line in profile.lines())
    assert len(candidate_set({"columns": {}}, 3)) == 0  # nothing applies: no candidates, no crash


def test_a_fingerprint_changes_with_any_change_and_names_the_column():
    """The gates get fingerprints instead of copies for "was it changed?": every change must show."""
    from efe.core import plain
    from evaluators.tabular import gates

    X = pd.DataFrame({"a": np.linspace(0, 1, 50), "b": np.where(np.arange(50) % 3, "x", None),
                      "c": pd.Categorical(np.where(np.arange(50) % 2, "p", "q"))})
    seen = plain.roundtrip(X)
    assert plain.digest(seen) == plain.digest(X)
    changed = {
        "a value by 1e-15": seen.assign(a=seen["a"] + np.where(np.arange(50) == 7, 1e-15, 0.0)),
        "a text value": seen.assign(b=seen["b"].where(np.arange(50) != 4, "z")),
        "a missing value": seen.assign(b=seen["b"].where(np.arange(50) != 1, None)),
        "a dtype": seen.assign(b=seen["b"].astype("category")),
        "a category label": seen.assign(c=seen["c"].cat.rename_categories({"p": "r"})),
        "the index": seen.set_axis(seen.index + 1),
        "a column added": seen.assign(d=1.0),
    }
    for what, other in changed.items():
        assert plain.digest(other) != plain.digest(X), what
    assert plain.digest(pd.Series([1, 2])) != plain.digest(pd.Series(["1", "2"]))
    assert plain.digest(pd.DataFrame({"a": [[1], [2]]})).startswith("unhashable")
    with pytest.raises(gates.GateFailure, match=r"fit modified its input X in place \(columns 'b'\)"):
        gates.check_unmutated({"X": plain.digest(X)}, {"X": plain.digest(changed["a text value"])}, "fit")
    gates.check_unmutated({"X": X}, {"X": plain.digest(seen)}, "fit")  # values or fingerprints, alike


def test_coded_raw_columns_are_reused_only_when_exactly_unchanged():
    """Scorer input built with the per-fold cache of raw columns is the one built without it."""
    from evaluators.tabular.preprocess import RawColumns, ScorerInput

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"n": rng.normal(size=60), "t": rng.choice(["u", "v", "w", None], 60),
                          "d": pd.date_range("2020-01-01", periods=60, freq="D"), "f": rng.random(60) < 0.5})
    A, B = plain_copy(frame.iloc[:40]), plain_copy(frame.iloc[40:])
    raw = RawColumns(A, B)
    programs = {
        "kept": (A.assign(new=A["n"] * 2), B.assign(new=B["n"] * 2)),
        "changed in B only": (A, B.assign(t=B["t"].where(B["n"] > 0, "unseen"))),
        "changed in A and B": (A.assign(n=A["n"] + 1e-12), B.assign(n=B["n"] + 1e-12)),
        "retyped": (A.assign(t=A["t"].astype("category")), B.assign(t=B["t"].astype("category"))),
        "reordered": (A[["t", "n", "d", "f"]], B[["t", "n", "d", "f"]]),
    }
    for what, (TA, TB) in programs.items():
        cached, plain_prep = ScorerInput().fit(TA, raw), ScorerInput().fit(TA)
        assert cached.categorical_indices_ == plain_prep.categorical_indices_, what
        for T in (TA, TB):
            pd.testing.assert_frame_equal(cached.transform(T), plain_prep.transform(T), obj=what)
    assert ScorerInput().fit(programs["kept"][0], raw).reused_ == {"n", "t", "d", "f"}
    assert "n" not in ScorerInput().fit(programs["changed in A and B"][0], raw).reused_


def plain_copy(frame: pd.DataFrame) -> pd.DataFrame:
    from efe.core import plain

    return plain.roundtrip(frame)


def test_openevolves_separate_stage_calls_share_the_first_folds_run(counted):
    """openevolve calls stage 1 and stage 2 apart: stage 1's run on the first folds is handed on, not redone."""
    from evaluators.base import Pending

    ev, sandbox = counted
    assert ev.evaluate(IDENTITY_TAB).valid  # the cascade's best so far: at least the identity
    pending = Pending()
    hopeless = tab_program("return X.drop(columns=['b'])")
    sandbox.runs.clear()
    first = pending.run(ev, hopeless, "stage1")
    assert first.valid and first.handoff is None, "the hand-off never leaves the evaluating process"
    second = pending.run(ev, hopeless, "stage2")
    assert second.metrics["full_scoring"] == 0.0 and len(sandbox.runs) == 1
    sandbox.runs.clear()
    assert pending.run(ev, hopeless, "stage2").metrics == second.metrics  # nothing handed on: stage 2 runs them
    assert len(sandbox.runs) == 1
    sandbox.runs.clear()
    pending.run(ev, hopeless, "stage1")
    other = pending.run(ev, tab_program("return X.drop(columns=['a'])"), "stage2")  # another program: not its run
    assert other.metrics["full_scoring"] == 0.0 and len(sandbox.runs) == 2


def test_a_large_table_keeps_a_selection_pool_beyond_the_search_sample(tmp_path):
    """Above scoring.max_rows the search scores a sample, but the selection pool is carved from every training
    row (up to selection.max_pool_rows): many more rows confirm a gain than the search ever scored, and none of
    them is a search row; the LLM's context (search_part) sees exactly the search rows."""
    frame = ratio_table(2000)
    spec = make_spec(tmp_path, frame, "label", scoring={"max_rows": 400},
                     selection_pool={"fraction": 0.25, "seed": 7, "max_rows": 300})
    ev = TabEvaluator(spec)
    try:
        search_idx = ev.X.index[ev.search_rows]
        pool_idx = ev.X.index[ev.selection_rows]
        assert len(search_idx) == 300  # (1 - 0.25) x 400: the search's cost as with max_rows alone
        assert len(pool_idx) == 300  # capped by max_pool_rows; 0.25 x 400 = 100 before
        assert not set(search_idx) & set(pool_idx)
        assert abs(ev.y.iloc[ev.selection_rows].mean() - ev.y.mean()) < 0.03  # stratified
    finally:
        ev.close()
    (tmp_path / "u").mkdir()
    uncapped = TabEvaluator(make_spec(tmp_path / "u", frame, "label", scoring={"max_rows": 400},
                                      selection_pool={"fraction": 0.25, "seed": 7, "max_rows": None}))
    try:
        assert len(uncapped.selection_rows) == 500 and len(uncapped.search_rows) == 300
    finally:
        uncapped.close()
    X, y = frame.drop(columns=["label"]), (frame["label"] == "yes").astype("int64")
    train = TabularDataset(name="t", X=X, y=y, target="label", description="", positive_label="yes")
    seen = search_part(train, tab_spec(spec))
    assert set(seen.X.index) == set(search_idx)
