"""Final selection's design: a clearly planted gain is confirmed, a null keeps the identity, and the
fixed-sequence design tests the finalists in the search's order at one test's z."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from efe.core.config import conf_section
from efe.rundir.records import SEED, LineageEntry
from efe.search.finalists import finalists
from efe.tab.report import _design_lines
import efe.tab.selection as selection
from efe.tab.selection import (GAIN, NO_GAIN, choose, design_z, family_z, max_t_z, select_tab, table_z,
                                with_lower_bounds)
from evaluators.outcome import Outcome
from evaluators.tabular.evaluator import TabEvaluator

from tests.conftest import IDENTITY_TAB, make_spec, scale_ratio_table

RATIO = IDENTITY_TAB.replace("        return X.copy()",
                             "        T = X.copy()\n        T['a_over_b'] = X['a'] / X['b']\n        return T")
NOISE = IDENTITY_TAB.replace("        return X.copy()",
                             "        T = X.copy()\n        T['wiggle'] = (X['n1'] * 1000.0) % 7.0\n        return T")


def _lineage(run_dir: Path, programs: list[tuple[str, str, float]]) -> list[LineageEntry]:
    """Seed then candidates (kind, source, search fitness), their sources under run_dir/programs."""
    (run_dir / "programs").mkdir(parents=True, exist_ok=True)
    out = []
    for i, (kind, source, score) in enumerate(programs):
        sha = hashlib.sha256(source.encode()).hexdigest()
        (run_dir / "programs" / f"{sha}.py").write_text(source)
        out.append(LineageEntry(kind, id=f"p{i}", iteration=i, code_sha256=sha, verdict="valid",
                                metrics={"valid": 1.0, "combined_score": score, "delta_auc": score - 0.5,
                                         "delta_auc_se": 0.01, "n_folds": 5.0}))
    return out


def _sel(**over) -> dict:
    sel = dict(conf_section("tab", "selection"))
    sel.update({"workers": 1, "no_harm_scorers": [], **over})
    return sel


@pytest.mark.parametrize("multiplicity", ["sequential", "bonferroni"])
def test_planted_gain_confirmed_and_null_keeps_identity(tmp_path, multiplicity):
    planted = scale_ratio_table(400, seed=3)
    rng = np.random.default_rng(11)
    null = planted.assign(label=np.where(rng.random(len(planted)) < 0.5, "yes", "no"))  # labels ignore the rows
    sel = _sel(multiplicity=multiplicity, n_folds=4, n_repeats=1)
    for name, frame in (("planted", planted), ("null", null)):
        run_dir = tmp_path / name
        run_dir.mkdir()
        spec = make_spec(run_dir, frame, "label", selection_pool={"fraction": 0.4, "seed": 1000})
        lineage = _lineage(run_dir, [(SEED, IDENTITY_TAB, 0.5), ("candidate", RATIO, 0.7),
                                     ("candidate", NOISE, 0.6)])
        chosen, table, summary = select_tab(lineage, run_dir, lambda scorer=None: TabEvaluator(spec),
                                            2, sel, 0, [])
        z = summary["confidence_z"]
        assert z == pytest.approx(family_z(2.0, 2, multiplicity))
        assert ("fixed-sequence" if multiplicity == "sequential" else "Bonferroni") in summary["design"]
        # the smallest confirmable gain is z times the finalists' median SE on the pool
        ses = sorted(r["fresh_delta_auc_se"] for r in table if r["kind"] != SEED)
        assert summary["min_detectable_delta"] == pytest.approx(z * float(np.median(ses)))
        assert summary["mde_80"] > summary["min_detectable_delta"] > 0
        for row in table:  # every lower bound is the pool mean - z * SE
            assert row["fresh_lower_bound"] == pytest.approx(row["fresh_delta_auc"] - z * row["fresh_delta_auc_se"])
        if chosen.kind != SEED:  # whatever is frozen has a confirmed gain on the pool
            row = next(r for r in table if r["id"] == chosen.id)
            assert row["fresh_lower_bound"] > 0 and summary["verdict"] == GAIN
        if name == "planted":
            assert chosen.id == "p1" and summary["verdict"] == GAIN
        else:
            assert chosen.kind == SEED and summary["verdict"] == NO_GAIN


class _Fake:
    """Answers score_fresh with a fixed pool mean and SE per program source."""

    selection_rows = range(100)

    def __init__(self, by_source: dict[str, tuple[float, float]]) -> None:
        self.by_source = by_source

    def score_fresh(self, source, n_folds, n_repeats, seed):
        mean, se, *folds = self.by_source[source]
        return Outcome({"delta_auc": mean, "delta_auc_se": se, "n_folds": 5.0,
                        "combined_score": 0.5 + 5 * (mean - se)}, fold_deltas=tuple(folds[0]) if folds else ())

    def close(self):
        pass


def test_sequential_stops_at_the_first_failure_bonferroni_picks_the_pool_best(tmp_path):
    """The search's best fails on the pool, the second passes clearly: fixed-sequence testing keeps the
    identity (the first failure ends it), the pool-ranked design freezes the second."""
    weak, strong = NOISE, RATIO
    lineage = _lineage(tmp_path, [(SEED, IDENTITY_TAB, 0.5), ("candidate", weak, 0.7), ("candidate", strong, 0.6)])
    fake = _Fake({IDENTITY_TAB: (0.0, 0.0), weak: (0.001, 0.01), strong: (0.08, 0.01)})
    seq, _, s1 = select_tab(lineage, tmp_path, lambda scorer=None: fake, 2, _sel(multiplicity="sequential"), 0)
    bon, _, s2 = select_tab(lineage, tmp_path, lambda scorer=None: fake, 2, _sel(multiplicity="bonferroni"), 0)
    assert seq.kind == SEED and s1["verdict"] == NO_GAIN and s1["confidence_z"] == 2.0
    assert bon.id == "p2" and s2["verdict"] == GAIN and s2["confidence_z"] > 2.0
    # the search's best passing: sequential freezes it at z = 2 where Bonferroni's wider z refuses it
    fake.by_source[weak] = (0.0225, 0.01)
    fake.by_source[strong] = (-0.01, 0.01)
    seq, _, _ = select_tab(lineage, tmp_path, lambda scorer=None: fake, 2, _sel(multiplicity="sequential"), 0)
    bon, _, _ = select_tab(lineage, tmp_path, lambda scorer=None: fake, 2, _sel(multiplicity="bonferroni"), 0)
    assert seq.id == "p1" and bon.kind == SEED


def test_fallback_freezes_a_confirmed_later_finalist_when_the_search_s_first_fails_on_the_pool(tmp_path):
    """Where fixed-sequence testing stops at the search's first finalist, the fallback design tests the next one
    at its part of the level; the search's first, when it passes at its slightly wider z, is still frozen first."""
    weak, strong = NOISE, RATIO
    lineage = _lineage(tmp_path, [(SEED, IDENTITY_TAB, 0.5), ("candidate", weak, 0.7), ("candidate", strong, 0.6)])
    fake = _Fake({IDENTITY_TAB: (0.0, 0.0), weak: (0.001, 0.01), strong: (0.08, 0.01)})
    chosen, table, summary = select_tab(lineage, tmp_path, lambda scorer=None: fake, 2, _sel(multiplicity="fallback"), 0)
    z_first, z_later = design_z(2.0, 2, "fallback", 0.2)
    assert 2.0 < z_first < 2.1 and z_later > 2.6  # 80% and 20% of one test's level
    assert chosen.id == "p2" and summary["verdict"] == GAIN and "fallback test" in summary["design"]
    assert {r["id"]: r["z"] for r in table} == {"p0": pytest.approx(z_later), "p1": pytest.approx(z_first),
                                                "p2": pytest.approx(z_later)}
    assert f"each later one at z = {z_later:.2f}" in "\n".join(_design_lines(summary))
    fake.by_source[weak] = (0.0205, 0.01)  # the first passes at z = 2 but not at 2.09: the second is frozen
    chosen, _, _ = select_tab(lineage, tmp_path, lambda scorer=None: fake, 2, _sel(multiplicity="fallback"), 0)
    assert chosen.id == "p2"
    fake.by_source[weak] = (0.03, 0.01)
    chosen, _, _ = select_tab(lineage, tmp_path, lambda scorer=None: fake, 2, _sel(multiplicity="fallback"), 0)
    assert chosen.id == "p1"
    with pytest.raises(ValueError, match="fallback_share"):
        design_z(2.0, 3, "fallback", 1.0)


@pytest.mark.parametrize("multiplicity", ["sequential", "fallback", "bonferroni"])
def test_no_design_freezes_a_null_finalist_more_often_than_one_test_at_z(multiplicity):
    """Five null finalists with independent pool estimates, 20,000 draws: the share of draws that freeze one
    stays at or below one test's level at z = 2 (2.3%); without a correction it would be about 5 times that."""
    rng = np.random.default_rng(0)
    k, draws, z = 5, 20000, 2.0
    z_first, z_later = design_z(z, k, multiplicity, 0.2)
    fresh = {"multiplicity": multiplicity, "require_gain": True, "confidence_z": z_first, "confidence_z_later": z_later}
    frozen = 0
    for means in rng.normal(0.0, 0.01, (draws, k)):
        table = [{"id": "s", "kind": SEED, "valid": True, "search_fitness": 0.5, "fresh_fitness": 0.5,
                  "fresh_delta_auc": 0.0, "fresh_delta_auc_se": 0.0}]
        table += [{"id": f"c{j}", "kind": "candidate", "valid": True, "search_fitness": 0.9 - 0.1 * j,
                   "fresh_fitness": 0.5 + m, "fresh_delta_auc": float(m), "fresh_delta_auc_se": 0.01}
                  for j, m in enumerate(means)]
        frozen += choose(with_lower_bounds(table, fresh), fresh)[0] is not None
    level = float(norm.sf(z))
    assert frozen / draws <= level + 3 * math.sqrt(level / draws)
    if multiplicity == "fallback":
        assert frozen / draws > 0.8 * level  # and it spends the whole level (sequential spends most of it)


def _finalists_with_folds(rng, rho: float, k: int, n: int, mean: float = 0.0) -> list[dict]:
    shared = rng.normal(size=n)
    rows = [{"id": "s", "kind": SEED, "valid": True, "search_fitness": 0.5, "fresh_fitness": 0.5,
             "fresh_delta_auc": 0.0, "fresh_delta_auc_se": 0.0, "fresh_fold_deltas": [0.0] * n}]
    for j in range(k):
        d = mean + math.sqrt(rho) * shared + math.sqrt(1 - rho) * rng.normal(size=n)
        rows.append({"id": f"c{j}", "kind": "candidate", "valid": True, "search_fitness": 0.95 - 0.1 * j,
                     "fresh_fitness": 0.5 + float(d.mean()), "fresh_delta_auc": float(d.mean()),
                     "fresh_delta_auc_se": 1 / math.sqrt(n), "fresh_fold_deltas": list(d)})
    return rows


def test_max_t_through_final_selection_freezes_the_first_confirmed_finalist_at_a_correlated_z(tmp_path):
    weak, strong = NOISE, RATIO
    lineage = _lineage(tmp_path, [(SEED, IDENTITY_TAB, 0.5), ("candidate", weak, 0.7), ("candidate", strong, 0.6)])
    pattern = np.random.default_rng(3).normal(size=10)
    fake = _Fake({IDENTITY_TAB: (0.0, 0.0, [0.0] * 10), weak: (0.001, 0.01, list(0.001 + 0.01 * pattern)),
                  strong: (0.08, 0.01, list(0.08 + 0.011 * pattern + 0.001 * np.arange(10)))})
    chosen, table, summary = select_tab(lineage, tmp_path, lambda scorer=None: fake, 2, _sel(multiplicity="maxt"), 0)
    assert chosen.id == "p2" and summary["verdict"] == GAIN and "max-T" in summary["design"]
    assert 2.0 < summary["confidence_z"] < family_z(2.0, 2, "bonferroni")  # the two move together
    assert all(r["z"] == summary["confidence_z"] for r in table) and len(table[1]["fresh_fold_deltas"]) == 10


def test_max_t_z_lies_between_one_test_and_bonferroni_by_how_much_the_finalists_move_together():
    rng = np.random.default_rng(0)
    independent = max_t_z(_finalists_with_folds(rng, 0.0, 5, 400), 2.0, 0.0)
    together = max_t_z(_finalists_with_folds(rng, 0.98, 5, 400), 2.0, 0.0)
    shrunk = max_t_z(_finalists_with_folds(rng, 0.98, 5, 400), 2.0, 0.2)
    sidak = float(norm.isf(1 - (1 - norm.sf(2.0)) ** (1 / 5)))
    assert independent == pytest.approx(sidak, abs=0.04) and independent <= family_z(2.0, 5, "bonferroni")
    assert 2.0 < together < 2.25 and together < shrunk < independent
    assert max_t_z(_finalists_with_folds(rng, 0.5, 1, 10), 2.0, 0.2) == 2.0  # one finalist: one test
    without_folds = [dict(row, fresh_fold_deltas=[]) for row in _finalists_with_folds(rng, 0.5, 3, 10)]
    assert max_t_z(without_folds, 2.0, 0.2) == pytest.approx(family_z(2.0, 3, "bonferroni"))  # never one test's
    with pytest.raises(ValueError, match="maxt_shrinkage"):
        max_t_z(_finalists_with_folds(rng, 0.5, 2, 10), 2.0, 1.5)


def test_max_t_keeps_the_false_freeze_rate_of_one_test_with_ten_correlated_folds(monkeypatch):
    """Five null finalists moving together (correlation 0.9), their correlation estimated from 10 folds as on
    the pool: 1,500 draws freeze at most one test's level (2.3%, plus three standard errors of the draw)."""
    monkeypatch.setattr(selection, "MAXT_DRAWS", 20_000)
    rng = np.random.default_rng(1)
    draws, frozen = 1500, 0
    for t in range(draws):
        rows = _finalists_with_folds(rng, 0.9, 5, 10)
        z = max_t_z(rows, 2.0, 0.2, seed=t)
        fresh = {"multiplicity": "maxt", "require_gain": True, "confidence_z": z, "confidence_z_later": z}
        frozen += choose(with_lower_bounds(rows, fresh), fresh)[0] is not None
    level = float(norm.sf(2.0))
    assert frozen / draws <= level + 3 * math.sqrt(level / draws)


def test_report_names_the_design_and_the_smallest_confirmable_gain(tmp_path):
    lineage = _lineage(tmp_path, [(SEED, IDENTITY_TAB, 0.5), ("candidate", RATIO, 0.7)])
    fake = _Fake({IDENTITY_TAB: (0.0, 0.0), RATIO: (0.004, 0.006)})
    _, _, summary = select_tab(lineage, tmp_path, lambda scorer=None: fake, 1, _sel(multiplicity="sequential"), 0)
    text = "\n".join(_design_lines(summary))
    assert "fixed-sequence" in text and "selection.multiplicity=sequential" in text
    assert f"ΔAUC above {2.0 * 0.006:.4f}" in text and math.isclose(summary["min_detectable_delta"], 0.012)


def test_sequential_tests_only_finalists_the_search_saw_beat_the_seed(tmp_path):
    """A finalist whose search fitness did not beat the seed's is not in the sequence, however it scores on the pool."""
    lineage = _lineage(tmp_path, [(SEED, IDENTITY_TAB, 0.5), ("candidate", RATIO, 0.45)])
    fake = _Fake({IDENTITY_TAB: (0.0, 0.0), RATIO: (0.08, 0.01)})
    seq, _, s1 = select_tab(lineage, tmp_path, lambda scorer=None: fake, 1, _sel(multiplicity="sequential"), 0)
    bon, _, _ = select_tab(lineage, tmp_path, lambda scorer=None: fake, 1, _sel(multiplicity="bonferroni"), 0)
    assert seq.kind == SEED and s1["verdict"] == NO_GAIN and bon.id == "p1"


def test_a_no_harm_model_blocks_a_confirmed_gain_only_when_it_is_hurt_beyond_noise(tmp_path):
    """The deployed model's gain is confirmed; the tree (selection.no_harm_scorers) moves by noise or is hurt."""
    lineage = _lineage(tmp_path, [(SEED, IDENTITY_TAB, 0.5), ("candidate", RATIO, 0.7)])
    fake = _Fake({IDENTITY_TAB: (0.0, 0.0), RATIO: (0.03, 0.006)})
    for tree, frozen in (((-0.0009, 0.0011), True), ((-0.0, 0.0), True), ((-0.02, 0.005), False)):
        tree_fake = _Fake({RATIO: tree})
        chosen, table, summary = select_tab(lineage, tmp_path, lambda scorer=None: tree_fake if scorer else fake, 1,
                                            _sel(no_harm_z=1.0), 0, [{"name": "tree"}])
        row = next(r for r in table if r["id"] == "p1")
        assert row["no_harm"]["tree"]["harmed"] is not frozen, tree
        assert (chosen.id == "p1") is frozen and summary["verdict"] == (GAIN if frozen else NO_GAIN), tree


def test_the_best_program_s_leanest_sub_program_within_one_se_is_tested_first(tmp_path):
    """The one-SE rule on the search's finalists: the best program carries the ratio and a column the search could
    not tell from noise; its sub-program with the ratio alone measured within one SE of it, so it goes first
    and is frozen where the best's extra column leaves the first test short. A sub-program below the floor, a
    leaner program that is no sub-program of the best, or one scored on fewer folds does not go first."""
    both = RATIO.replace("        return T", "        T['wiggle'] = (X['n1'] * 1000.0) % 7.0\n        return T")
    lineage = _lineage(tmp_path, [(SEED, IDENTITY_TAB, 0.5), ("candidate", both, 0.70), ("candidate", RATIO, 0.66),
                                  ("candidate", NOISE, 0.60)])
    cols = {"p1": ("a_over_b", "wiggle"), "p2": ("a_over_b",), "p3": ("wiggle",)}
    deltas = {"p1": 0.040, "p2": 0.032, "p3": 0.010}
    lineage = [e if e.kind == SEED else LineageEntry(**{**e.__dict__, "new_columns": cols[e.id],
                                                         "metrics": {**e.metrics, "delta_auc": deltas[e.id]}})
               for e in lineage]
    assert [e.id for e in finalists(lineage, 3, 1.0)] == ["p0", "p2", "p1", "p3"]
    assert [e.id for e in finalists(lineage, 3, 0.0)] == ["p0", "p1", "p2", "p3"]
    assert [e.id for e in finalists(lineage, 3, 0.5)] == ["p0", "p1", "p2", "p3"]  # 0.032 < 0.040 - 0.5 * 0.01
    tight = [LineageEntry(**{**e.__dict__, "metrics": {**e.metrics, "delta_auc_se": 0.002}}) if e.id == "p1" else e
             for e in lineage]  # the best's SE small by chance: the lean program's own SE (0.01) sets the floor
    assert [e.id for e in finalists(tight, 3, 1.0)][1] == "p2"
    fewer = [LineageEntry(**{**e.__dict__, "metrics": {**e.metrics, "n_folds": 2.0}}) if e.id == "p2" else e
             for e in lineage]
    assert [e.id for e in finalists(fewer, 3, 1.0)][1] == "p1"
    elsewhere = [LineageEntry(**{**e.__dict__, "new_columns": ("log_a",)}) if e.id == "p2" else e for e in lineage]
    assert [e.id for e in finalists(elsewhere, 3, 1.0)][1] == "p1"
    # final selection: the lean program first (at the first finalist's z), confirmed, frozen, and said
    fake = _Fake({IDENTITY_TAB: (0.0, 0.0), both: (0.016, 0.009), RATIO: (0.024, 0.009), NOISE: (0.0, 0.01)})
    chosen, table, summary = select_tab(lineage, tmp_path, lambda scorer=None: fake, 3, _sel(multiplicity="fallback"), 0)
    z_first, _ = design_z(2.0, 3, "fallback", 0.2)
    assert chosen.id == "p2" and summary["verdict"] == GAIN
    assert table[1]["id"] == "p2" and table[1]["z"] == pytest.approx(z_first)
    assert summary["lean_first"] == {"id": "p2", "changes": 1, "instead_of": "p1", "its_changes": 2}
    assert "a sub-program of the search's best `p1`" in "\n".join(_design_lines(summary))
    chosen, _, summary = select_tab(lineage, tmp_path, lambda scorer=None: fake, 3,
                                    _sel(multiplicity="fallback", lean_first_se=0.0), 0)
    assert chosen.kind == SEED and summary["lean_first"] is None  # 0.016 - 2.09 * 0.009 < 0; the others at 2.8


def test_fallback_s_later_finalists_share_their_part_as_one_max_t_family(monkeypatch):
    """The search's first finalist fails on the pool; the four behind it are near-copies of one program (a ratio
    with and without columns the model ignores) at 2.8 SEs. Split four ways their part of the level needs
    z = 3.05 each; as one max-T family with the same gain on every fold they count once and the copy is
    confirmed. With independent later
    finalists the max-T z is close to the Bonferroni split; 1,500 null draws with the finalists moving together
    (correlation 0.9 estimated from 10 folds) still freeze at most one test's level."""
    monkeypatch.setattr(selection, "MAXT_DRAWS", 20_000)
    rng = np.random.default_rng(5)
    pattern = rng.normal(size=10)
    rows = _finalists_with_folds(rng, 0.0, 1, 10)
    first = dict(rows[1], fresh_delta_auc=0.3 / math.sqrt(10), fresh_fitness=0.51)
    copies = [dict(rows[1], id=f"c{j}", search_fitness=0.9 - 0.1 * j, fresh_delta_auc=2.8 / math.sqrt(10),
                   fresh_fitness=0.6,
                   fresh_fold_deltas=list(2.8 / math.sqrt(10) + pattern)) for j in range(1, 5)]
    table = [rows[0], first] + copies
    base = {"confidence_z_single": 2.0, "multiplicity": "fallback", "fallback_share": 0.2, "maxt_shrinkage": 0.2,
            "seed": 0, "require_gain": True}
    z_first, z_split = table_z(table, {**base, "fallback_later": "bonferroni"})
    z_first_maxt, z_family = table_z(table, {**base, "fallback_later": "maxt"})
    assert z_first == z_first_maxt == pytest.approx(design_z(2.0, 5, "fallback", 0.2)[0])
    assert z_split == pytest.approx(design_z(2.0, 5, "fallback", 0.2)[1])
    assert z_family == pytest.approx(float(norm.isf(norm.sf(2.0) * 0.2))) and z_family < 2.8 < z_split
    near = [dict(row, fresh_fold_deltas=list(np.asarray(row["fresh_fold_deltas"]) + 0.05 * rng.normal(size=10)))
            for row in copies]  # copies that differ a little: one correlated family, between one test and the split
    assert z_family < table_z([rows[0], first] + near, {**base, "fallback_later": "maxt"})[1] < z_split
    for later, frozen_id in (("bonferroni", None), ("maxt", "c1")):
        fresh = {**base, "fallback_later": later}
        fresh["confidence_z"], fresh["confidence_z_later"] = table_z(table, fresh)
        i = choose(with_lower_bounds(table, fresh), fresh)[0]
        assert (table[i]["id"] if i is not None else None) == frozen_id
    independent = _finalists_with_folds(rng, 0.0, 5, 400)
    assert table_z(independent, {**base, "fallback_later": "maxt"})[1] == pytest.approx(
        design_z(2.0, 5, "fallback", 0.2)[1], abs=0.05)
    with pytest.raises(ValueError, match="fallback_later"):
        table_z(table, {**base, "fallback_later": "holm"})
    draws, frozen = 1500, 0
    for t in range(draws):
        rows = _finalists_with_folds(rng, 0.9, 5, 10)
        fresh = {**base, "fallback_later": "maxt", "seed": t}
        fresh["confidence_z"], fresh["confidence_z_later"] = table_z(rows, fresh)
        frozen += choose(with_lower_bounds(rows, fresh), fresh)[0] is not None
    level = float(norm.sf(2.0))
    assert frozen / draws <= level + 3 * math.sqrt(level / draws)


def test_a_confirmed_lean_program_gives_way_to_the_best_when_the_pool_confirms_its_extra_columns(tmp_path):
    """The lean program (the ratio) is confirmed first. The best adds a column: when it adds +0.008 on every pool
    fold (a second real feature) the best is frozen; when it adds noise (around -0.002) the lean one stays, and the
    report says which and by how much."""
    both = RATIO.replace("        return T", "        T['wiggle'] = (X['n1'] * 1000.0) % 7.0\n        return T")
    lineage = _lineage(tmp_path, [(SEED, IDENTITY_TAB, 0.5), ("candidate", both, 0.70), ("candidate", RATIO, 0.66)])
    cols, deltas = {"p1": ("a_over_b", "wiggle"), "p2": ("a_over_b",)}, {"p1": 0.040, "p2": 0.034}
    lineage = [e if e.kind == SEED else LineageEntry(**{**e.__dict__, "new_columns": cols[e.id],
                                                         "metrics": {**e.metrics, "delta_auc": deltas[e.id]}})
               for e in lineage]
    rng = np.random.default_rng(2)
    lean_folds = 0.03 + 0.02 * rng.normal(size=10)
    for extra, frozen in ((0.008 + 0.002 * rng.normal(size=10), "p1"), (-0.002 + 0.006 * rng.normal(size=10), "p2")):
        best_folds = lean_folds + extra
        fake = _Fake({IDENTITY_TAB: (0.0, 0.0, [0.0] * 10),
                      RATIO: (float(lean_folds.mean()), 0.009, list(lean_folds)),
                      both: (float(best_folds.mean()), 0.009, list(best_folds))})
        chosen, table, summary = select_tab(lineage, tmp_path, lambda scorer=None: fake, 2, _sel(), 0)
        extras = summary["lean_first"]["extras"]
        assert chosen.id == frozen and extras["kept"] == (frozen == "p1") and extras["z"] == 1.0
        assert extras["delta"] == pytest.approx(float(np.mean(np.round(best_folds, 6) - np.round(lean_folds, 6))))
        assert ("so the search's best is frozen" if frozen == "p1" else "so the lean program is frozen") in \
            "\n".join(_design_lines(summary))
