"""The offline proposer's move library: every move renders to a program that passes the gates."""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest

from efe.core import plain
from efe.core.contracts import TAB
from efe.datasets.tabular import load_tabular, prepare
from efe.core.programs import contract_problems
from efe.sandbox.policy import find_violations
from efe.tab.context import build_context
from efe.proposer.tab_moves import (
    KINDS,
    Move,
    NoMoveAvailable,
    candidate_moves,
    parse_moves,
    propose,
    render_program,
)
from efe.proposer.tab import feedback_view
from efe.core.specs import TabGateSpec, conf_part
from evaluators.tabular import gates
from evaluators.tabular.evaluator import TabEvaluator
from tests.conftest import IDENTITY_TAB, make_spec

LIMITS = conf_part(TabGateSpec, "tab", "gate")


def mixed_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Skewed, signed, missing, categorical, boolean, near-unique text and a redundant column."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(3.0, 1.0, n)
    debt = rng.lognormal(2.0, 0.7, n)
    score = rng.normal(0.0, 1.0, n)
    age = rng.uniform(18, 80, n)
    age[rng.random(n) < 0.2] = np.nan
    city = rng.choice(["north", "south", "east", "west", "centre"], n).astype(object)
    city[rng.random(n) < 0.05] = None
    owner = rng.random(n) < 0.4
    titles = rng.choice(["Mr", "Mrs", "Miss", "Dr"], n, p=[0.5, 0.25, 0.2, 0.05])
    logit = 1.5 * np.log(income / debt) + score + (city == "north") - 0.5 * owner + rng.normal(0, 0.5, n)
    return pd.DataFrame({
        "income": income, "debt": debt, "score": score, "age": age, "city": city, "owner": owner,
        "name": [f"Surname{i % 50}, {t}. Given{i % 7}" + (" Middle" if i % 3 == 0 else "") for i, t in enumerate(titles)],
        "income_reported": income * 1.01 + rng.normal(0, 0.01, n),
        "opened": pd.Series(pd.date_range("2015-01-01", periods=n, freq="3D")).sample(frac=1.0, random_state=seed)
        .dt.strftime("%Y-%m-%d").to_numpy(),  # ISO date text: the date-part moves
        "label": np.where(logit > 0, "yes", "no"),
    })


@pytest.fixture(scope="module")
def mixed():
    ds = prepare(mixed_frame(), "label", name="t")
    return ds, build_context(ds)


def one_of_each(context: dict) -> dict[str, Move]:
    first: dict[str, Move] = {}
    for move, _ in candidate_moves(context):
        first.setdefault(move.kind, move)
    return first


def load(source: str):
    assert find_violations(ast.parse(source)) == []
    assert contract_problems(source, TAB) == []
    namespace: dict = {}
    exec(compile(source, "<program>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["build_feature_program"](0)


def run_gates(source: str, X: pd.DataFrame, y: pd.Series, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """The evaluator's stage-1 checks, in process, with the real gate functions."""
    program = load(source)
    X_before, y_before = X.copy(), y.copy()
    state = program.fit(X, y)
    assert isinstance(state, dict)
    gates.check_unmutated({"X": X_before, "y": y_before}, {"X": X, "y": y}, "fit")
    frozen = plain.roundtrip(state)  # plain data only: what freezing and the sandbox see
    T = gates.check_output("X", X, program.transform(X, state), LIMITS)
    gates.check_unmutated({"X": X_before}, {"X": X}, "transform")
    labels = np.random.default_rng(seed).integers(0, 3, len(X))
    parts = [X[labels == k] for k in range(3)]
    outs = [gates.check_output(f"part{k}", p, program.transform(p, state), LIMITS) for k, p in enumerate(parts)]
    gates.check_batch_independence(T, outs, LIMITS)
    reindexed = X.copy()
    reindexed.index = pd.Index(np.random.default_rng(seed).permutation(len(X)) * 7 + 1_000_003)
    T_re = gates.check_output("reindexed", reindexed, program.transform(reindexed, state), LIMITS)
    gates.check_index_invariance(T, T_re, LIMITS)
    gates.check_state_unchanged(frozen, state)
    T_frozen = program.transform(X, frozen)
    for col in T.columns:
        assert gates.same_values(T[col], T_frozen[col], LIMITS), col
    return T, state


def test_context_offers_every_kind(mixed):
    _, ctx = mixed
    cands = candidate_moves(ctx)
    assert {m.kind for m, _ in cands} == set(KINDS)
    assert all(w > 0 for _, w in cands)
    assert len({m for m, _ in cands}) == len(cands)
    names = [m.feature_name() for m, _ in cands if m.feature_name()]
    assert len(names) == len(set(names)) and not set(names) & set(ctx["columns"])
    assert Move("drop", ("income_reported",)) in dict(cands)
    assert not any(m.kind in ("freq", "target_enc", "group_mean") and "name" in m.columns for m, _ in cands)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_passes_the_gates(mixed, kind):
    ds, ctx = mixed
    move = one_of_each(ctx)[kind]
    source = render_program([move], f"test {kind}")
    T, _ = run_gates(source, ds.X, ds.y)
    if kind == "drop":
        assert move.columns[0] not in T.columns and T.shape[1] == ds.X.shape[1] - 1
    else:
        assert list(T.columns) == list(ds.X.columns) + move.outputs()
        for name in move.outputs():
            new = T[name]
            assert new.notna().any() and new.nunique() > 1, name


def test_all_kinds_together_and_unseen_values(mixed):
    ds, ctx = mixed
    moves = list(one_of_each(ctx).values())
    source = render_program(moves)
    T, state = run_gates(source, ds.X, ds.y, seed=3)
    assert T.shape[1] == ds.X.shape[1] + sum(len(m.outputs()) for m in moves) - 1  # one drop
    odd = ds.X.head(3).copy()
    odd.loc[0, "city"] = "atlantis"
    odd.loc[1, ["city", "age", "income", "name"]] = [None, np.nan, np.nan, None]
    odd.loc[2, "name"] = "Nobody, Capt. Unknown"
    out = load(source).transform(odd, state)
    assert np.isfinite(out.select_dtypes("number").to_numpy(dtype="float64", na_value=0.0)).all()
    te = next(m for m in moves if m.kind == "target_enc").feature_name()
    freq = next(m for m in moves if m.kind == "freq").feature_name()
    assert out.loc[0, te] == pytest.approx(state[te]["prior"]) and out.loc[0, freq] == 0.0
    token = next(m for m in moves if m.kind == "token").feature_name()
    assert out.loc[2, token] == "other" and out.loc[1, token] == "none"
    assert set(T[token]) <= {"Mr", "Mrs", "Miss", "Dr", "other", "none"} and "Mr" in set(T[token])


def test_guards_against_zero_and_overflow():
    X = pd.DataFrame({"a": [1.0, 2.0, 1e300, np.nan, 5.0], "b": [0.0, 1e-30, 1e300, 2.0, -1.0]})
    y = pd.Series([0, 1, 0, 1, 1])
    program = load(render_program([Move("ratio", ("a", "b")), Move("product", ("a", "b")),
                                   Move("log", ("b",))]))
    new = program.transform(X, program.fit(X, y)).drop(columns=["a", "b"])
    values = new.to_numpy(dtype="float64")
    assert not np.isinf(values).any() and not (np.abs(values) > LIMITS.max_abs_value).any()
    assert new["a_over_b"].isna().tolist() == [True, True, False, True, False]
    assert np.isnan(new.loc[2, "a_times_b"]) and new["log_b"].notna().all()


def test_manifest_round_trip(mixed):
    _, ctx = mixed
    moves = [m for m, _ in candidate_moves(ctx)]
    assert parse_moves(render_program(moves[:9])) == moves[:9]
    assert parse_moves(render_program([])) == []
    assert parse_moves(IDENTITY_TAB) is None
    assert parse_moves("# efe-moves: [[\"log\"]]\n") is None
    assert parse_moves(render_program([Move("bin", ("x",), (7,))])) == [Move("bin", ("x",), (7,))]
    odd = Move("diff", ('we"ird\\ col', "naïve\nname"))
    source = render_program([odd])
    assert parse_moves(source) == [odd]
    run_source = load(source)  # the quoted names are valid literals
    X = pd.DataFrame({'we"ird\\ col': [1.0, 2.0], "naïve\nname": [0.5, 0.5]})
    assert run_source.transform(X, run_source.fit(X, pd.Series([0, 1])))[odd.feature_name()].tolist() == [0.5, 1.5]
    with pytest.raises(ValueError):
        render_program([Move("ratio", ("a",))])


def test_importance_raises_weights(mixed):
    _, ctx = mixed
    plain_w = dict(candidate_moves(ctx))
    boosted = dict(candidate_moves(ctx, {"age": 0.08, "log_income": 0.05, "city": -0.01}))
    assert boosted[Move("missing", ("age",))] > plain_w[Move("missing", ("age",))]
    assert boosted[Move("bin", ("income",), (5,))] > plain_w[Move("bin", ("income",), (5,))]
    assert boosted[Move("freq", ("city",))] < plain_w[Move("freq", ("city",))]


def test_a_u_shaped_effect_makes_its_square_likelier_than_a_linear_ones():
    """A U shape has no linear correlation with the target; the square move is weighted by its own."""
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=2000), rng.normal(size=2000)
    label = (u ** 2 + v + rng.normal(size=2000) > 1.0).astype(int)
    ds = prepare(pd.DataFrame({"u": u, "v": v, "label": label}), "label", name="u_shape")
    ctx = build_context(ds)
    assert abs(ctx["columns"]["u"]["target_corr"]) < 0.1 < ctx["columns"]["u"]["target_corr_sq"]
    weights = dict(candidate_moves(ctx))
    assert weights[Move("square", ("u",))] > weights[Move("square", ("v",))]


def test_propose_is_deterministic_and_always_changes(mixed):
    _, ctx = mixed
    a = propose(IDENTITY_TAB, ctx, {}, np.random.default_rng(7))
    b = propose(IDENTITY_TAB, ctx, {}, np.random.default_rng(7))
    assert a == b and a[0] != IDENTITY_TAB and len(parse_moves(a[0])) == 1
    assert "\n" not in a[1] and a[1].startswith("add ")
    rng = np.random.default_rng(0)
    source, actions = IDENTITY_TAB, set()
    for _ in range(40):
        new, description = propose(source, ctx, {"valid": True}, rng, max_moves=4)
        assert new != source and len(parse_moves(new)) <= 4
        actions.add(description.split()[0])
        source = new
    assert actions == {"add", "remove", "swap"}
    before = parse_moves(source)
    after, description = propose(source, ctx, {"valid": False}, np.random.default_rng(1))
    assert parse_moves(after) == before[:-1] and "invalid" in description


def test_propose_removes_unimportant_features(mixed):
    _, ctx = mixed
    moves = [m for m, _ in candidate_moves(ctx) if m.kind != "drop"][:6]
    parent = render_program(moves)
    useless = moves[2].feature_name()
    importance = {m.feature_name(): 0.05 for m in moves} | {useless: -0.01}
    removed = []
    for seed in range(30):
        child, description = propose(parent, ctx, {"importance": importance}, np.random.default_rng(seed))
        if description.startswith(("remove", "swap")):
            removed.append(moves[2] not in parse_moves(child))
    assert sum(removed) > 0.6 * len(removed)


def test_no_move_available():
    ds = prepare(pd.DataFrame({"f": [True, False] * 20, "y": [0, 1, 1, 0] * 10}), "y", name="b")
    with pytest.raises(NoMoveAvailable):
        propose(IDENTITY_TAB, build_context(ds), {}, np.random.default_rng(0))


def test_all_kinds_are_valid_under_the_evaluator(mixed, tmp_path):
    ds, ctx = mixed
    moves = list(one_of_each(ctx).values())
    ev = TabEvaluator(make_spec(tmp_path, ds.frame, "label"))
    try:
        outcome = ev.evaluate(render_program(moves))
        assert outcome.valid, outcome.reason
        assert outcome.columns["new"] == [name for m in moves for name in m.outputs()]
        assert outcome.columns["dropped"] == ["income_reported"]
        ratio = ev.evaluate(render_program([Move("ratio", ("income", "debt"))]))
        assert ratio.valid and ratio.metrics["delta_auc"] > 0
    finally:
        ev.close()


@pytest.mark.parametrize("name", ["titanic", "hmda"])
def test_proposal_chain_on_bundled_data_is_valid(name, tmp_path):
    ds = load_tabular({"name": name})
    ctx = build_context(ds)
    ev = TabEvaluator(make_spec(tmp_path, ds.frame, ds.target))
    rng = np.random.default_rng(0)
    source, feedback = IDENTITY_TAB, {}
    try:
        for _ in range(6):
            source, description = propose(source, ctx, feedback, rng)
            outcome = ev.evaluate(source)
            assert outcome.valid, f"{description}: {outcome.reason}"
            feedback = feedback_view(outcome.feedback)  # what the offline proposer reads from the sidecar
    finally:
        ev.close()
