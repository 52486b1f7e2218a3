"""What the dataset context measures for the offline proposer: which text patterns' tokens and which
pairs of columns relate to the target, so a short search tries the promising moves first."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from efe.datasets.tabular import prepare
from efe.proposer.tab_moves import Move, candidate_moves, default_limits, parse_moves, propose
from efe.proposer.tab_roles import ROLE_KINDS
from efe.tab.context import build_context, render_context

TITLES = ["Mr", "Mrs", "Miss", "Master", "Dr"]


def names_table(n: int, planted: bool, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    title = rng.choice(TITLES, n, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    surname = [f"Name{k}" for k in rng.integers(0, 10 * n, n)]
    first = [f"Given{k}" for k in rng.integers(0, 10 * n, n)]
    age = rng.uniform(1, 80, n)
    eta = 0.02 * (age - 40) + (2.0 * np.isin(title, ["Miss", "Master"]) if planted else 0.0)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-eta)), "yes", "no")
    return pd.DataFrame({"name": [f"{s}, {t}. {f}" for s, t, f in zip(surname, title, first)], "age": age, "y": y})


def ratio_table(n: int, planted: bool, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({c: rng.lognormal(0.0, 0.4, n) for c in ("debt", "income", "assets", "age")})
    drive = 0.5 * np.log(X["assets"]) + (2.0 * (X["debt"] / X["income"]).rank(pct=True) if planted else 0.0)
    return X.assign(y=drive + rng.normal(0.0, 0.5, n))


def is_title(move: Move) -> bool:
    return move.kind == "token" or (move.kind == "extract" and move.params[0] == "title")


def share(ctx: dict, hit) -> float:
    moves = candidate_moves(ctx)
    return sum(w for m, w in moves if hit(m)) / sum(w for _, w in moves)


def test_the_title_s_tokens_are_measured_and_weigh_the_title_moves():
    planted = build_context(prepare(names_table(3000, True), "y", name="names"))
    null = build_context(prepare(names_table(3000, False), "y", name="names"))
    signal, nothing = planted["columns"]["name"]["token_signal"], null["columns"]["name"]["token_signal"]
    # the title pattern carries the planted effect; a surname (near-unique: every token pooled) says nothing
    assert signal["title"] > 0.25 and signal["title"] > 3 * signal["prefix"]
    assert nothing["title"] < 0.08 and signal["prefix"] < 0.05
    assert share(planted, is_title) > 1.5 * share(null, is_title)
    assert "tokens parsed from it relate to the target" in render_context(planted)


def test_a_pair_that_carries_signal_beyond_its_columns_is_ranked_first_and_weighted():
    planted = build_context(prepare(ratio_table(3000, True), "y", name="ratio"))
    null = build_context(prepare(ratio_table(3000, False), "y", name="ratio"))
    first = planted["pair_signals"][0]
    assert {first[0], first[2]} == {"debt", "income"} and first[3] > 0.2
    assert max(e[3] for e in null["pair_signals"]) < 0.1

    def debt_income(m: Move) -> bool:
        return m.kind == "ratio" and set(m.columns) == {"debt", "income"}

    assert share(planted, debt_income) > 2 * share(null, debt_income)
    assert "Pairs that relate to the target beyond" in render_context(planted)


def test_no_signals_for_a_multiclass_target_and_no_row_s_label_in_the_context():
    table = names_table(600, True).assign(y=lambda t: np.random.default_rng(1).choice(["a", "b", "c"], len(t)))
    ctx = build_context(prepare(table, "y", name="names"))
    assert "token_signal" not in ctx["columns"]["name"] and ctx["pair_signals"] == []


def test_an_add_takes_the_strongest_measured_move_first_then_the_next():
    """With best_first=1 every add from a parent takes the heaviest move not yet tried there: on a table whose
    names carry a title the patterns role's first step parses it, and once that program is evaluated the
    next heaviest comes; best_first=0 leaves the step to the weighted draw."""
    ctx = build_context(prepare(names_table(3000, True), "y", name="names"))
    kinds = ROLE_KINDS["patterns"]
    greedy = replace(default_limits(), best_first=1.0)
    ranked = sorted(((m, w) for m, w in candidate_moves(ctx) if m.kind in kinds), key=lambda mw: -mw[1])
    firsts = set()
    for seed in range(6):
        source, why = propose("", ctx, {}, np.random.default_rng(seed), kinds=kinds, limits=greedy)
        firsts.add(tuple(parse_moves(source)))
        assert "heaviest move" in why
    assert firsts == {(ranked[0][0],)} and is_title(ranked[0][0])
    tried = {(ranked[0][0],)}
    source, _ = propose("", ctx, {}, np.random.default_rng(0), kinds=kinds, limits=greedy,
                        tried=lambda moves: tuple(moves) in tried)
    assert parse_moves(source) == [ranked[1][0]]
    drawn = {tuple(parse_moves(propose("", ctx, {}, np.random.default_rng(s), kinds=kinds,
                                       limits=replace(greedy, best_first=0.0))[0])) for s in range(12)}
    assert len(drawn) > 1
