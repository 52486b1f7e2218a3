"""Proposer roles, the router, the novelty check and the rules memory, as units (no search)."""

from __future__ import annotations

import json
import random

import pytest

from efe.steering.rules import RuleBook, bounded, parse_rules, render_rules
from efe.llm.novelty import NoveltyIndex, normalised_source, novelty_keys
from efe.steering.roles import ROLE_PROMPTS, Steering, render_role, role_of
from efe.steering.router import RoleStats, choose_role, role_stats
from efe.core.programs import code_hash
from efe.rundir.records import LineageEntry
from efe.proposer.tab_moves import Move, parse_moves, render_program
from efe.proposer.tab import propose_from_prompt
from efe.proposer.tab_roles import ROLE_KINDS as TAB_ROLES
from efe.proposer.tab_roles import applicable_roles
from efe.proposer.time_roles import ROLE_KINDS as TIME_ROLES
from tests.conftest import ROOT
from tests.test_moves import mixed_frame


def entry(id_, parent, score, role, valid=True, kind="candidate", sha=None, **extra):
    return LineageEntry.from_dict({"kind": kind, "id": id_, "parent": parent, "role": role, "code_sha256": sha or id_,
                                   "metrics": {"combined_score": score, "valid": 1.0 if valid else 0.0},
                                   "runtime_s": 1.0, **extra})


LINEAGE = [entry("s", None, 0.5, "seed", kind="seed"),
           entry("a", "s", 0.6, "interactions"), entry("b", "a", 0.7, "interactions"),
           entry("c", "s", 0.4, "unary"), entry("d", "s", 0.0, "unary", valid=False),
           LineageEntry("no_program", verdict="duplicate_rejected", role="pruning", metrics={"combined_score": 0.0})]


def test_every_role_has_a_prompt_shipped_as_package_data():
    for setting, roles in (("tab", TAB_ROLES), ("time", TIME_ROLES)):
        for role in roles:
            assert (ROLE_PROMPTS / setting / f"{role}.txt").read_text().strip(), role
        assert f'"efe.prompts.roles.{setting}" = ["*.txt"]' in (ROOT / "pyproject.toml").read_text()
    assert set(TAB_ROLES) == {"unary", "interactions", "aggregations", "encodings", "dates", "patterns", "pruning"}
    assert set(TIME_ROLES) == {"variance", "scaling", "detrending", "seasonal", "robust"}
    assert role_of("prompt" + render_role("tab", "pruning")) == "pruning"


def test_role_stats_count_tries_validity_improvements_and_rejections():
    stats = role_stats(LINEAGE, ["interactions", "unary", "pruning", "dates"])
    i, u, p, d = (stats[r] for r in ("interactions", "unary", "pruning", "dates"))
    assert (i.tries, i.valid, i.improvements) == (2, 2, 2) and i.best_gain == pytest.approx(0.1)
    assert (u.tries, u.valid, u.improvements, u.valid_rate) == (2, 1, 0, 0.5) and u.best_gain == pytest.approx(-0.1)
    assert (p.tries, p.rejected, p.evaluated) == (1, 1, 0) and d.tries == 0


def test_bandits_try_every_role_then_prefer_the_one_that_improves():
    roles = ["interactions", "unary", "pruning", "dates"]
    stats = role_stats(LINEAGE, roles)
    for router in ("ucb", "thompson"):
        assert choose_role(router, roles, stats, random.Random(0)) == "dates"   # untried first
    stats["dates"] = RoleStats("dates", tries=2, evaluated=2, valid=2)
    assert choose_role("ucb", roles, stats, random.Random(0)) == "interactions"
    picks = [choose_role("thompson", roles, stats, random.Random(k)) for k in range(200)]
    assert picks.count("interactions") > 100
    assert set(choose_role("uniform", roles, stats, random.Random(k)) for k in range(100)) == set(roles)
    slow = {**stats, "interactions": RoleStats("interactions", 2, 2, 2, 2, 0.1, eval_s=200.0)}
    assert choose_role("ucb", roles, slow, random.Random(0), cost_weight=3.0) != "interactions"
    with pytest.raises(ValueError, match="proposer.router"):
        choose_role("greedy", roles, stats, random.Random(0))


def test_novelty_ignores_comments_docstrings_and_layout_but_not_code(tmp_path):
    a = 'def f(x):\n    """Doc."""\n    # a comment\n    return x + 1\n'
    b = "def f(x):\n\n    return x+1   # other words\n"
    c = "def f(x):\n    return x + 2\n"
    assert normalised_source(a) == normalised_source(b) != normalised_source(c)
    moved = render_program([Move("ratio", ("a", "b"))], "one reason")
    assert novelty_keys(moved) & novelty_keys(render_program([Move("ratio", ("a", "b"))], "another reason"))
    programs = tmp_path / "programs"
    programs.mkdir()
    (programs / f"{code_hash(a)}.py").write_text(a)
    index = NoveltyIndex(tmp_path)
    assert index.duplicate_of(b) == code_hash(a) and index.duplicate_of(c) is None


def test_rules_are_distilled_bounded_rendered_and_read_back(tmp_path):
    programs = tmp_path / "programs"
    programs.mkdir()
    sources = {"s": render_program([]), "a": render_program([Move("ratio", ("a", "b"))]),
               "b": render_program([Move("ratio", ("a", "b")), Move("log", ("a",))]),
               "c": render_program([Move("bin", ("a",), (5,))])}
    for sha, src in sources.items():
        (programs / f"{sha}.py").write_text(src)
    lineage = [entry("s", None, 0.5, "seed", kind="seed"), entry("a", "s", 0.6, "interactions"),
               entry("b", "a", 0.6, "unary"), entry("c", "s", 0.0, "unary", valid=False, reason="gate: inf values")]
    rules = RuleBook(tmp_path, max_rules=12).distill(lineage)
    by_change = {r["change"]: r for r in rules}
    assert by_change["ratio(a, b)"]["verdict"] == "helped" and by_change["ratio(a, b)"]["gain"] == pytest.approx(0.1)
    assert by_change["log(a)"]["verdict"] == "no effect"
    assert by_change["bin(a)"]["verdict"] == "failed" and "inf" in by_change["bin(a)"]["reason"]
    text = render_rules(rules)
    assert "### memory_rules" in text
    assert parse_rules(text) == {"ratio(a, b)": "helped", "log(a)": "no effect", "bin(a)": "failed"}
    many = [{"verdict": "helped", "change": f"x{i}()", "gain": i / 100, "count": 1} for i in range(20)]
    kept = bounded(many + [{"verdict": "failed", "change": "y()", "count": 3}], 6)
    assert len(kept) == 6 and kept[0]["change"] == "x19()" and any(r["verdict"] == "failed" for r in kept)


@pytest.fixture(scope="module")
def mixed_context():
    from efe.datasets.tabular import prepare
    from efe.tab.context import build_context

    return build_context(prepare(mixed_frame(), "label", name="t"))


def test_offline_proposer_adds_only_its_roles_moves_and_reads_the_rules(mixed_context):
    assert set(applicable_roles(mixed_context)) == set(TAB_ROLES)
    identity = render_program([])
    for role, kinds in TAB_ROLES.items():
        prompt = f"# Current Program\n```python\n{identity}\n```\n" + render_role("tab", role)
        for seed in range(3):
            source, note = propose_from_prompt(prompt, mixed_context, seed)
            assert {m.kind for m in parse_moves(source)} <= set(kinds), (role, note)
            assert f"({role})" in note
    # a rule that the only interaction left failed: it is chosen far less often
    base = f"# Current Program\n```python\n{identity}\n```\n" + render_role("tab", "interactions")
    first = [parse_moves(propose_from_prompt(base, mixed_context, s)[0])[0] for s in range(40)]
    target = max(set(first), key=first.count)
    key = f"{target.kind}({', '.join(target.columns)})"
    failed = base + render_rules([{"verdict": "failed", "change": key, "count": 1, "reason": "gate"}])
    again = [parse_moves(propose_from_prompt(failed, mixed_context, s)[0])[0] for s in range(40)]
    assert again.count(target) < first.count(target)


def test_steering_puts_role_and_rules_in_the_prompt_and_learns_from_the_lineage(tmp_path):
    (tmp_path / "lineage.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in LINEAGE))
    spec = {"run_dir": str(tmp_path), "seed": 0,
            "roles": {"setting": "tab", "names": ["interactions", "unary"], "router": "ucb", "exploration": 1.0,
                      "cost_weight": 0.0},
            "memory": {"max_rules": 12, "rules_in_prompt": True,
                       "rules": [{"verdict": "helped", "change": "freq(city)", "gain": 0.02, "count": 1}]}}
    prompt, role = Steering(**spec).steer("base prompt")
    assert role == "interactions" and role_of(prompt) == "interactions"
    assert "# Your role this iteration: interactions" in prompt
    assert "[helped] add freq(city)" in prompt and "[earlier run]" in prompt
    assert Steering(**{**spec, "roles": {**spec["roles"], "names": []}}).steer("base")[1] is None


def test_memory_store_lives_under_the_user_cache_dir_unless_memory_path_says(tmp_path, monkeypatch):
    from efe.steering.memory import memory_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert memory_path({"path": None}) == tmp_path / "xdg" / "efe" / "memory.jsonl"
    assert memory_path({"path": str(tmp_path / "m.jsonl")}) == tmp_path / "m.jsonl"


def test_memory_recalls_the_most_similar_table_and_leaves_out_programs_naming_missing_columns(tmp_path):
    from efe.steering.memory import recall, remember, tab_fingerprint, tab_schema

    store = {"path": str(tmp_path / "memory.jsonl"), "min_similarity": 0.75, "max_programs": 5}
    old = {"columns": {c: {"kind": "numeric"} for c in ("a", "b", "c", "d", "gone")}}
    new = {"columns": {c: {"kind": "numeric"} for c in ("a", "b", "c", "d", "e")}}  # Jaccard 4/6
    new_close = {"columns": {c: {"kind": "numeric"} for c in ("a", "b", "c", "d", "gone", "e")}}  # 5/6
    run = tmp_path / "run"
    (run / "programs").mkdir(parents=True)
    entries = []
    for k, cols in enumerate((["a", "b"], ["a", "gone"])):
        code = render_program([Move("ratio", tuple(cols))])
        (run / "programs" / f"{code_hash(code)}.py").write_text(code)
        entries.append(LineageEntry("candidate", code_sha256=code_hash(code), metrics={"combined_score": 0.6 - k / 10}))
    remember(store, tab_fingerprint(old, "y"), run, "tab", "old", [], entries[0], entries[1], tab_schema(old, "y"))

    assert recall(store, tab_fingerprint(new, "y"), tab_schema(new, "y"), "tab")["runs"] == 0  # 0.67 < 0.75
    close = recall(store, tab_fingerprint(new_close, "y"), tab_schema(new_close, "y"), "tab")
    assert close["runs"] == 1 and close["similarity"] == pytest.approx(5 / 6) and len(close["programs"]) == 2
    fewer = {"columns": {c: {"kind": "numeric"} for c in ("a", "b", "c", "d", "e", "f", "g", "h")}}
    loose = recall({**store, "min_similarity": 0.4}, tab_fingerprint(fewer, "y"), tab_schema(fewer, "y"), "tab")
    assert loose["runs"] == 1 and loose["skipped_programs"] == 1
    assert [p["sha"] for p in loose["programs"]] == [entries[0].code_sha256]  # ratio(a, gone) left out
    assert recall(store, tab_fingerprint(new_close, "z"), tab_schema(new_close, "z"), "tab")["runs"] == 0  # target
    exact_only = recall({**store, "min_similarity": 1.01}, tab_fingerprint(new_close, "y"),
                        tab_schema(new_close, "y"), "tab")
    assert exact_only["runs"] == 0
    same = recall(store, tab_fingerprint(old, "y"), tab_schema(old, "y"), "tab")
    assert same["runs"] == 1 and same["similarity"] == 1.0 and len(same["programs"]) == 2


def test_offline_time_proposer_adds_only_its_roles_moves():
    from efe.proposer.time_moves import parse_moves as parse_time_moves
    from efe.proposer.time_moves import render_program as render_time_program
    from efe.proposer.time import propose_from_prompt as propose_time
    from efe.proposer.time_roles import applicable_roles as time_roles
    from tests.test_time_moves import context

    ctx = context()
    assert set(time_roles(ctx)) == set(TIME_ROLES)
    identity = render_time_program([])
    for role, kinds in TIME_ROLES.items():
        prompt = f"# Current Program\n```python\n{identity}\n```\n" + render_role("time", role)
        for seed in range(3):
            source, note = propose_time(prompt, ctx, seed)
            assert {m.kind for m in parse_time_moves(source)} <= set(kinds) and f"({role})" in note


def test_proposals_asked_at_the_same_moment_do_not_all_get_the_same_role(tmp_path):
    spec = {"run_dir": str(tmp_path), "seed": 0, "memory": {"max_rules": 12, "rules_in_prompt": False, "rules": []},
            "roles": {"setting": "tab", "names": list(TAB_ROLES), "router": "ucb", "exploration": 1.0,
                      "cost_weight": 0.0}}
    steering = Steering(**spec)
    roles = [steering.steer("the same prompt, the same empty lineage")[1] for _ in range(4)]
    assert len(set(roles)) > 1
