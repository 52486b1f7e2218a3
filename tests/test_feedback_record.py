"""The evaluator's feedback as data: rendered into the prompt's text, carried to the offline proposer
through the outcome sidecars, and read there as a record (never parsed back from the prose)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from efe.core.feedback_record import (
    FeedbackRecord,
    Importance,
    TabFeedback,
    TabScores,
    TimeFeedback,
    failure_record,
    render_artifacts,
)
from efe.rundir.outcomes import read_feedback, write_feedback
from efe.proposer.tab_moves import Move, parse_moves, render_program
from efe.proposer.tab import feedback_view as tab_view
from efe.proposer.tab import propose_from_prompt as propose_tab
from evaluators.tabular.evaluator import TabEvaluator
from tests.conftest import make_spec, ratio_table, tab_program

SCORES = TabScores(auc_base=0.71234, auc_candidate=0.75678, delta=0.04444, delta_se=0.01, n_folds=2, n_planned=5,
                   fitness=0.6722, fitness_offset=0.5, auc_weight=5.0, confidence_z=1.0, delta_lcb=0.03444,
                   complexity_penalty=0.0056, runtime_penalty=0.0, runtime_per_fold=0.2, pool_a_rows=480,
                   pool_b_rows=120)
TAB = FeedbackRecord("tab", tab=TabFeedback(
    SCORES, ("a_over_b",), ("c",), 3, importance_method="scorer",
    importance=(Importance("a_over_b", 0.61, 0.02), Importance("a", 0.3, 0.01), Importance("b", -0.0001, 0.0)),
    importance_more=2, tree="|--- a_over_b <= 1.0\n|   |--- class: 0\n"), program_output="hello\n")
TIME = FeedbackRecord("time", time=TimeFeedback(
    mase_ratio=0.9, n_windows=12, total_windows=30, screened=True, gain=0.105, gain_se=0.02, gain_lcb=0.085,
    confidence_z=1.0, mase_base=1.2, mase_candidate=1.08, wql_ratio=0.95, mae_ratio=0.97, fitness=0.9,
    fitness_offset=0.5, mase_weight=5.0, harm_penalty=0.01, complexity_penalty=0.002, helped=9, harmed=2,
    fallback=1, errors={"ValueError": 1}, runtime_s=3.21))


def test_a_tab_record_renders_to_the_prompt_sections():
    art = render_artifacts(TAB)
    assert list(art) == ["verdict", "scores", "new_columns", "dropped_columns", "output_column_count",
                         "importance_pool_a", "tree_pool_a", "program_output"]
    assert art["scores"] == (
        "AUC baseline 0.7123, candidate 0.7568, delta +0.0444 (standard error 0.0100, 2 paired folds); "
        "fitness 0.6722 = 0.5 + 5.0*(delta - 1.0*SE = +0.0344) - complexity 0.0056 - runtime 0.00; "
        "per fold: pool A 480 rows, pool B 120 rows; stopped after 2 of 5 folds: even an optimistic reading "
        "of these folds could not beat the best program so far")
    assert art["importance_pool_a"] == "a_over_b: +0.6100 ± 0.0200\na: +0.3000 ± 0.0100\nb: -0.0001 ± 0.0000\n" \
                                       "... 2 more columns"
    assert (art["new_columns"], art["dropped_columns"], art["output_column_count"]) == ("a_over_b", "c", "3")
    assert art["tree_pool_a"] == TAB.tab.tree and art["program_output"] == "hello\n"
    unknown = FeedbackRecord("tab", tab=TabFeedback(
        TabScores(**{**SCORES.__dict__, "delta_se": math.nan, "n_folds": 5, "runtime_penalty": 0.05}),
        importance_method="permutation", importance_note="(pool A too small for importances)"))
    text = render_artifacts(unknown)
    assert "standard error unknown" in text["scores"] and "stopped" not in text["scores"]
    assert "program runtime 0s per fold is penalised 0.05" in text["scores"]
    assert text["permutation_importance_pool_a"] == "(pool A too small for importances)"
    assert text["new_columns"] == "(none)" and "tree_pool_a" not in text


def test_time_failure_and_stage1_records_render_to_the_prompt_sections():
    art = render_artifacts(TIME)
    assert art["scores"] == (
        "MASE ratio 0.9000 (geometric mean over screened on 12 of 30 windows (no gain there, so not scored "
        "further)); gain +0.1050 ± 0.0200 SE in log MASE, lower bound +0.0850 at z=1; mean MASE identity 1.2000, "
        "candidate 1.0800; WQL ratio 0.9500; MAE ratio 0.9700; fitness 0.9000 = 0.5 + 5.0*(1 - exp(-lower bound)) "
        "- harm 0.0100 - complexity 0.0020")
    assert art["series"] == ("12 forecast windows: helped 9, harmed 2, fell back to identity 1 "
                             "(program errors: ValueError: 1)")
    assert art["timing"] == "program + forecaster 3.2s"
    failed = failure_record("time", "gate:round_trip", "inverse_transform(transform(y)) does not give y back",
                            "stage1")
    assert render_artifacts(failed) == {"verdict": "invalid (gate:round_trip)", "failure_stage": "stage1",
                                        "reason": "inverse_transform(transform(y)) does not give y back"}
    assert not failed.valid and TIME.valid
    assert render_artifacts(FeedbackRecord("tab", stage="stage1")) == {"stage1": "passed all gates"}


@pytest.mark.parametrize("record", [TAB, TIME, failure_record("tab", "exception", "boom", "stage2", "out")])
def test_a_record_survives_the_sidecar_round_trip(tmp_path, record):
    source = render_program([Move("ratio", ("a", "b"))])
    assert read_feedback(tmp_path, source) is None and read_feedback(None, source) is None
    write_feedback(tmp_path, source, record)
    back = read_feedback(tmp_path, source)
    assert back == record and render_artifacts(back) == render_artifacts(record)
    assert read_feedback(tmp_path, source + "\n# another program") is None


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    ev = TabEvaluator(make_spec(tmp_path_factory.mktemp("spec"), ratio_table(400), "label"))
    program = tab_program("out = X.copy()\nout['a_over_b'] = X['a'] / X['b']\nreturn out")
    try:
        yield ev.evaluate(program), ev.evaluate(tab_program("return X.iloc[:3]"))
    finally:
        ev.close()


def test_the_evaluator_returns_the_record_its_artifacts_are_rendered_from(evaluated):
    good, bad = evaluated
    assert good.valid and good.feedback.valid and render_artifacts(good.feedback) == good.artifacts
    tab = good.feedback.tab
    assert list(tab.new_columns) == good.columns["new"] == ["a_over_b"]
    assert tab.scores.delta == pytest.approx(good.metrics["delta_auc"])
    assert tab.scores.auc_candidate == pytest.approx(good.metrics["auc_candidate"])
    assert max(tab.importance_by_column, key=tab.importance_by_column.get) == "a_over_b"
    assert tab.tree and "|---" in tab.tree
    assert not bad.valid and bad.feedback.reason == bad.reason and bad.feedback.verdict == "invalid (gate:row_count)"
    assert tab_view(bad.feedback) == {"valid": False, "reason": bad.reason}
    view = tab_view(good.feedback)
    assert view["valid"] and view["delta_auc"] == tab.scores.delta and view["importance"]["a_over_b"] > 0.1


def _prompt(parent: str, prose: str = "") -> str:
    return f"{prose}# Current Program\n```python\n{parent}\n```\n"


@pytest.fixture(scope="module")
def tab_context():
    from efe.datasets.tabular import prepare
    from efe.tab.context import build_context
    from tests.test_moves import mixed_frame

    return build_context(prepare(mixed_frame(), "label", name="t"))


def test_the_tab_proposer_decides_from_the_record_not_from_the_prose(tmp_path, tab_context):
    parent = render_program([Move("log", ("income",)), Move("ratio", ("income", "debt"))])
    invalid_prose = "### verdict\n```\ninvalid (gate:row_count)\n```\n### reason\n```\nrows changed\n```\n"
    # prose alone (no record written): the proposer does not read it
    source, note = propose_tab(_prompt(parent, invalid_prose), tab_context, 0, feedback_dir=str(tmp_path))
    assert "the parent was invalid" not in note
    write_feedback(tmp_path, parent, failure_record("tab", "gate:row_count", "rows changed", "stage1"))
    for seed in range(5):  # an invalid parent: its newest move goes, whatever the seed
        source, note = propose_tab(_prompt(parent), tab_context, seed, feedback_dir=str(tmp_path))
        assert parse_moves(source) == [Move("log", ("income",))] and "the parent was invalid" in note


def test_a_worse_tab_parent_loses_the_move_its_record_shows_useless(tmp_path, tab_context):
    """Removal is weighted by the record's importances and delta: a new column the scorer ignores goes first."""
    log, ratio = Move("log", ("income",)), Move("ratio", ("income", "debt"))
    parent = render_program([log, ratio])
    useless_log = TabFeedback(TabScores(**{**SCORES.__dict__, "delta": -0.01}), ("log_income", "income_over_debt"),
                              (), 8, importance_method="scorer",
                              importance=(Importance("income_over_debt", 0.4, 0.01), Importance("log_income", 0.0, 0.0)))
    write_feedback(tmp_path / "run", parent, FeedbackRecord("tab", tab=useless_log))

    def removed(feedback_dir):
        gone = []
        for seed in range(60):
            source, _ = propose_tab(_prompt(parent), tab_context, seed, feedback_dir=feedback_dir)
            gone += [m for m in (log, ratio) if m not in parse_moves(source)]
        return gone

    informed, blind = removed(str(tmp_path / "run")), removed(str(tmp_path / "none"))
    assert len(informed) >= 10 and informed.count(log) >= 0.9 * len(informed)
    assert blind.count(log) <= 0.8 * len(blind)


def test_time_proposer_reads_mase_harm_and_the_gate_reason_from_the_record(tmp_path):
    from efe.proposer.time_moves import Move as TimeMove
    from efe.proposer.time_moves import candidate_moves
    from efe.proposer.time_moves import parse_moves as parse_time
    from efe.proposer.time_moves import render_program as render_time
    from efe.proposer.time import feedback_view as time_view
    from efe.proposer.time import propose_from_prompt as propose_time
    from tests.test_time_moves import context

    ctx = context()
    finite = failure_record("time", "gate:inverse_not_finite", "inverse_transform is not finite on a 1-step "
                            "forecast 10% beyond the history's range", "stage1")
    plain, warned = dict(candidate_moves(ctx)), dict(candidate_moves(ctx, time_view(finite)))
    assert warned[TimeMove("log")] < 0.5 * plain[TimeMove("log")]
    assert warned[TimeMove("robust_scale")] == plain[TimeMove("robust_scale")]
    identity = render_time([])
    write_feedback(tmp_path, identity, finite)
    logs = {d: sum(TimeMove("log") in parse_time(propose_time(_prompt(identity), ctx, s, feedback_dir=d)[0])
                   for s in range(60)) for d in (None, str(tmp_path))}
    assert logs[str(tmp_path)] < logs[None]

    parent = render_time([TimeMove("log"), TimeMove("detrend", (1.0,))])
    worse = FeedbackRecord("time", time=TimeFeedback(**{**TIME.time.__dict__, "mase_ratio": 1.3, "helped": 1,
                                                        "harmed": 9, "screened": False}))
    better = FeedbackRecord("time", time=TimeFeedback(**{**TIME.time.__dict__, "mase_ratio": 0.8}))
    view = time_view(worse)
    assert view["mase_ratio"] == 1.3 and view["harm_rate"] == pytest.approx(0.75) and view["valid"]
    counts = {}
    for name, record in (("worse", worse), ("better", better)):
        write_feedback(tmp_path, parent, record)
        notes = [propose_time(_prompt(parent), ctx, s, feedback_dir=str(tmp_path))[1] for s in range(60)]
        counts[name] = sum(": remove" in n for n in notes)
    assert counts["worse"] > counts["better"]
    assert np.isfinite(view["help_rate"])


def test_the_offline_back_end_hands_the_proposer_the_runs_feedback_and_move_limits(tmp_path, tab_context):
    """The run spec names the outcomes directory (the record's transport) and ``proposer.moves``."""
    import asyncio
    import json

    from efe.llm.backends import OfflineBackend

    (tmp_path / "context.json").write_text(json.dumps(tab_context))
    parent = render_program([Move("log", ("income",)), Move("ratio", ("income", "debt"))])
    write_feedback(tmp_path / "outcomes", parent, failure_record("tab", "gate:row_count", "rows changed", "stage1"))
    from types import SimpleNamespace

    # the two parts of the typed run spec the back end reads (efe.core.specs.RunSpec: seed, search)
    search = SimpleNamespace(offline_proposer="efe.proposer.tab:propose_from_prompt",
                             context_path=str(tmp_path / "context.json"), outcomes_dir=str(tmp_path / "outcomes"),
                             offline_moves={"max_moves": 2}, executor={"kind": "local"})
    spec = SimpleNamespace(seed=0, search=search)
    backend = OfflineBackend(spec)
    text, _ = asyncio.run(backend.complete("system", [{"role": "user", "content": _prompt(parent)}], 0))
    assert "the parent was invalid" in text
    write_feedback(tmp_path / "outcomes", parent, FeedbackRecord("tab", tab=TabFeedback(SCORES)))
    for sample in range(8):  # a valid parent at max_moves=2 is never grown
        text, _ = asyncio.run(backend.complete("system", [{"role": "user", "content": _prompt(parent)}], sample))
        assert ": add " not in text and ("remove" in text or "swap" in text)
