"""The offline proposer's reach: moves that compose, steps that do not repeat evaluated programs, and
a title parsed from titanic's names among what a short offline run evaluates."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from efe.datasets.tabular import load_tabular
from efe.proposer.tab import TriedPrograms
from efe.proposer.tab_moves import (
    Move,
    candidate_moves,
    default_limits,
    parse_moves,
    propose,
    render_program,
)
from efe.proposer.tab_roles import ROLE_KINDS
from efe.rundir.records import read_lineage
from efe.tab.context import build_context
from tests.conftest import IDENTITY_TAB, NO_PLOTS, ROOT
from tests.test_moves import mixed, run_gates  # noqa: F401 - ``mixed`` is a fixture

def is_title(move: Move) -> bool:
    return move.columns == ("name",) and (move.kind == "token" or (move.kind == "extract" and move.params[0] == "title"))


def order_free(moves: list[Move]) -> frozenset:
    return frozenset(moves)


@pytest.fixture(scope="module")
def titanic():
    ds = load_tabular({"name": "titanic"})
    return ds, build_context(ds)


def test_a_repeated_step_tries_another_move_first(mixed):  # noqa: F811 - the fixture
    _, ctx = mixed
    first, _ = propose(IDENTITY_TAB, ctx, {}, np.random.default_rng(7))
    evaluated = {order_free(parse_moves(first))}
    second, why = propose(IDENTITY_TAB, ctx, {}, np.random.default_rng(7),
                          tried=lambda moves: order_free(moves) in evaluated)
    assert parse_moves(second) != parse_moves(first) and len(parse_moves(second)) == 1
    assert "evaluated already" in why
    # every step from the identity evaluated: a step from a neighbour (two moves) instead
    singles = {order_free([m]) for m, _ in candidate_moves(ctx)}
    third, why = propose(IDENTITY_TAB, ctx, {}, np.random.default_rng(7), tried=lambda moves: order_free(moves) in singles)
    assert len(parse_moves(third)) == 2 and ", then " in why


def test_a_long_walk_on_titanic_never_repeats_a_program(titanic):
    """300 steps from random parents, each role in turn: every program is new (the old library ran dry
    after about 30 iterations on this table)."""
    _, ctx = titanic
    rng = np.random.default_rng(0)
    roles = [r for r, kinds in ROLE_KINDS.items() if any(m.kind in kinds for m, _ in candidate_moves(ctx))]
    seen: set[frozenset] = set()
    population = [IDENTITY_TAB]
    for i in range(300):
        parent = population[int(rng.integers(len(population)))]
        child, _ = propose(parent, ctx, {"valid": True}, rng, kinds=ROLE_KINDS[roles[i % len(roles)]],
                           tried=lambda moves: order_free(moves) in seen)
        key = order_free(parse_moves(child))
        assert key not in seen
        seen.add(key)
        population.append(child)
    used = {m.kind for key in seen for m in key}
    assert {"extract", "te_oof", "group_rank", "combo", "has_word"} <= used


def test_moves_compose_and_pass_the_gates(titanic):
    ds, ctx = titanic
    title = Move("extract", ("name",), ("title", 10))
    built_on = [m for m, _ in candidate_moves(ctx, None, default_limits(), [title]) if title.feature_name() in m.columns]
    assert {m.kind for m in built_on} >= {"freq", "count", "target_enc", "te_oof", "rare", "group_mean", "group_rank"}
    moves = [title, Move("te_oof", (title.feature_name(),), (5, 1, 10, 50)),
             Move("group_rank", ("age", title.feature_name(), "sex"), (10,)), Move("combo", ("sex", "passenger_class")),
             Move("count", ("name_title_min10",))]
    sample = ds.X.sample(300, random_state=0)
    T, state = run_gates(render_program(moves), sample, ds.y.loc[sample.index])
    assert {"Mr", "Mrs", "Miss", "Master"} <= set(T["name_title_min10"])
    assert state["te_oof5_name_title_min10"]["weight"] in (1.0, 10.0, 50.0)
    master = T["name_title_min10"] == "Master"
    assert T.loc[master, "te_oof5_name_title_min10"].nunique() == 1
    # a step that removes the title removes what is built on it; a move placed before the move that
    # writes its input is left out of the program
    parent = render_program(moves[:2])
    children = [parse_moves(propose(parent, ctx, {"valid": True}, np.random.default_rng(seed), max_moves=2)[0])
                for seed in range(40)]
    assert any(title not in child for child in children)
    assert all(title in child for child in children if moves[1] in child)
    assert parse_moves(render_program([moves[1], title])) == [title]


def test_tried_programs_reads_the_run_directory(tmp_path):
    moves = [Move("missing", ("age",)), Move("extract", ("name",), ("title", 3))]
    tried = TriedPrograms(tmp_path)
    assert not tried.refresh()(moves)
    (tmp_path / "programs").mkdir()
    (tmp_path / "programs" / "a.py").write_text(render_program(moves))
    assert tried.refresh()(moves[::-1]) and not tried(moves[:1])


def test_a_short_offline_run_on_titanic_evaluates_a_title_from_the_names(tmp_path):
    """What was proposed, not what won: the patterns role's programs include a title parsed from ``name``."""
    proc = subprocess.run(
        [sys.executable, "-m", "efe.tab", "llm=offline", "evolution.iterations=8", "proposer.roles=[patterns]",
         f"runs_root={tmp_path / 'runs'}", "scorer=tree", "selection.top_k=0", "report.models=[tree]",
         "evolution.deterministic=true", f"llm.cache_dir={tmp_path / 'cache'}", NO_PLOTS],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = next((tmp_path / "runs" / "tab").glob("*/*"))
    candidates = [e for e in read_lineage(run / "lineage.jsonl") if e.kind == "candidate"]
    programs = {e.code_sha256: parse_moves((run / "programs" / f"{e.code_sha256}.py").read_text())
                for e in candidates}
    assert candidates and all(moves is not None for moves in programs.values())
    with_title = [e for e in candidates if any(is_title(m) for m in programs[e.code_sha256])]
    assert with_title, [json.dumps([m.describe() for m in p]) for p in programs.values()]
    assert all(e.valid for e in with_title)
    assert any(c in ("name_title", "name_title_min10", "name_title_min3") for e in with_title for c in e.new_columns)
    assert not [line for line in proc.stderr.splitlines() if line.startswith(("ERROR", "WARNING openevolve"))]
