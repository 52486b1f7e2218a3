"""EFE-Tab final selection: re-score finalists on the selection pool, keep the identity unless a gain is confirmed.

The search's own rows picked the finalists, so their scores there are optimistic (the best of
many noisy estimates) - and new shuffles of the same rows keep that optimism, because the
finalists are the programs that happened to fit those rows. The run therefore keeps a
stratified selection pool (``selection.pool_fraction`` of the training rows) that the search
never scores; the seed and the best candidates are scored on repeated K-fold over that pool,
each fold fitting on the search rows plus the pool's other parts and validating on one part
(paired with the identity, Nadeau-Bengio SE). The best selection fitness wins, but with
``selection.require_gain`` a program other than the identity is frozen only when its lower bound
(mean − z·SE) there is above zero; otherwise "no program beat doing nothing" is the result, and
the report says so. The frozen program also goes in front of other downstream models (the report
scores it with each); ``selection.no_harm_scorers`` names those it must not hurt on the same
folds, or the next confirmed finalist (or the identity) is taken. Hurt means beyond noise: mean + z·SE < 0 with
``selection.no_harm_z``. A model the program means nothing to (a tree given a square it can already split on)
moves by noise either way, and a bare "mean ≥ 0" would block confirmed gains on a coin flip. (The table
keys keep the name ``fresh_*``: the estimate on rows the search never scored.)

How the multiple finalists are tested (``selection.multiplicity``):

- ``sequential`` (fixed-sequence testing): the finalists are tested in the search's order, which is
  fixed before the pool is looked at, each at the single-test z; the first that fails stops the
  selection (the identity). Only finalists whose search fitness beat the seed's are in the sequence
  (a program the search itself saw no gain in is not worth a test). The chance of freezing a program with no gain
  stays that of one test at z, however many finalists there are, and the search's own ranking,
  usually right about which program is best, is what gets the full power.
- ``fallback`` (Wiens' fallback procedure): the same order, but the one-test error rate is split: the
  search's first finalist is tested at most of it (``selection.fallback_share`` is kept back), each later
  one at an equal part of the rest, and the first confirmed is frozen. A first finalist that looks worse on
  the pool than in the search no longer hides the confirmed ones behind it; the chance of freezing a
  program with no gain is still at most that of one test at z (the parts add up to it).
  With ``selection.fallback_later=maxt`` (the default) the later finalists' part of the level goes to them
  as one max-T family (below) instead of equal Bonferroni parts: the union of the two parts still holds
  the one-test level, and near-copies of one program no longer split it four ways.
- ``maxt`` (single-step max-T, Dunnett-style): the same order, every finalist at one z, the level-α
  critical value of the largest of the finalists' pool z-scores, drawn from a multivariate normal whose
  correlations are those of the finalists' paired per-fold gains on the pool (shrunk towards 0 by
  ``selection.maxt_shrinkage``). Finalists that are variants of one program move together, so the
  largest of five is barely more optimistic than one: z stays near the one-test value where
  Bonferroni's would widen as if they were independent.
- ``bonferroni``: the pool ranks the finalists (best pool fitness first) and each must clear z
  widened for the k finalists tried (the best of k noisy estimates is optimistic).
- ``none``: the pool ranks them at z as given (no correction: more false freezes).

The summary states the design and the smallest gain it could have confirmed on this table:
``z·SE`` (a pool mean above it is confirmed) and ``(z + 0.84)·SE`` (confirmed 80% of the time), from
the median SE of the finalists on the pool.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from scipy.stats import norm

from efe.rundir.records import SEED, LineageEntry, best_valid
from efe.search.finalists import changed, finalists
from efe.tab.parallel import prescored, worker_count

NO_GAIN = "no program beat doing nothing"
GAIN = "gain confirmed on the selection pool"
GAIN_NO_POOL = "gain confirmed on fresh folds of the search's rows (no selection pool)"
UNCHECKED = "frozen without a confirmed gain (selection.require_gain=false)"


FALLBACK_LATER = ("maxt", "bonferroni")


def fallback_later(value: Any) -> str:
    """``selection.fallback_later``, checked (before any finalist is scored, and again on a replayed report)."""
    if value not in FALLBACK_LATER:
        raise ValueError(f"selection.fallback_later must be maxt or bonferroni, got {value!r}")
    return str(value)


def fresh_settings(sel: Mapping[str, Any], seed: int) -> dict:
    """The re-scoring's settings from the ``selection`` section of conf/tab.yaml (every key required)."""
    return {"n_folds": int(sel["n_folds"]), "n_repeats": int(sel["n_repeats"]),
            "seed": int(seed) + int(sel["seed_offset"]),
            "confidence_z": float(sel["confidence_z"]),
            "multiplicity": str(sel["multiplicity"]),
            "fallback_share": float(sel["fallback_share"]),
            "fallback_later": fallback_later(sel["fallback_later"]),
            "maxt_shrinkage": float(sel["maxt_shrinkage"]),
            "require_gain": bool(sel["require_gain"]),
            "no_harm_z": float(sel["no_harm_z"]),
            "extras_z": float(sel["extras_z"])}


MULTIPLICITY = ("sequential", "fallback", "maxt", "bonferroni", "none")
IN_SEARCH_ORDER = ("sequential", "fallback", "maxt")  # designs that test the finalists in the search's order
MAXT_DRAWS = 200_000  # multivariate normal draws behind the max-T critical value (its Monte Carlo error ~0.01 in z)
POWER_Z = float(norm.isf(0.2))  # a gain of (z + this)·SE is confirmed 80% of the time


def family_z(z: float, n_tried: int, multiplicity: str) -> float:
    """The z each finalist must clear so that the chance of confirming any of ``n_tried`` null finalists
    stays that of one test at ``z``: Bonferroni-widened when the pool picks the best of several noisy
    estimates; unchanged for fixed-sequence testing in the search's order (and for none)."""
    if multiplicity not in MULTIPLICITY:
        raise ValueError(f"selection.multiplicity must be one of {', '.join(MULTIPLICITY)}, got {multiplicity!r}")
    if multiplicity != "bonferroni" or n_tried <= 1:
        return float(z)
    return float(norm.isf(norm.sf(z) / n_tried))


def design_z(z: float, n_tried: int, multiplicity: str, share: float) -> tuple[float, float]:
    """(z of the first finalist tested, z of each later one). Only ``fallback`` tells them apart: the first
    gets the one-test level times (1 - share), each of the other n_tried - 1 an equal part of the share."""
    if multiplicity != "fallback" or n_tried <= 1:
        zz = family_z(z, n_tried, multiplicity)
        return zz, zz
    if not 0.0 < share < 1.0:
        raise ValueError(f"selection.fallback_share must lie strictly between 0 and 1, got {share!r}")
    alpha = norm.sf(z)
    return float(norm.isf(alpha * (1.0 - share))), float(norm.isf(alpha * share / (n_tried - 1)))


def max_t_z(table: list[dict], z: float, shrinkage: float, seed: int = 0) -> float:
    """The z that the largest pool z-score of the tested finalists exceeds with the one-test probability at
    ``z`` when none of them gains: the (1 - level) quantile of the maximum of a multivariate normal with
    the correlations of their per-fold gains (``fresh_fold_deltas``), shrunk towards 0 by ``shrinkage``.
    Finalists with no spread on the pool (the identity's predictions) cannot be confirmed and are left out,
    finalists with the same per-fold gains count once; with fewer than two left it is ``z`` itself; it is never above Bonferroni's z for those tested, and is
    Bonferroni's when their per-fold gains are missing."""
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"selection.maxt_shrinkage must lie between 0 and 1, got {shrinkage!r}")
    tested = [table[i] for i in search_order(table)
              if table[i]["valid"] and 0.0 < table[i]["fresh_delta_auc_se"] < math.inf]
    if len(tested) < 2:
        return float(z)
    folds = [row.get("fresh_fold_deltas") or [] for row in tested]
    if len(folds[0]) < 3 or any(len(f) != len(folds[0]) or float(np.std(f)) == 0.0 for f in folds):
        # how they co-vary is unknown (a report from before the per-fold gains were kept): Bonferroni's z,
        # which holds whatever the correlations, not one test's
        return family_z(z, len(tested), "bonferroni")
    # finalists with the same gain on every fold (the model's predictions do not tell them apart: a ratio and
    # its inverse for a tree) are one test, counted once, not shrunk apart
    folds = [list(f) for f in dict.fromkeys(tuple(round(float(x), 9) for x in f) for f in folds)]
    if len(folds) < 2:
        return float(z)
    corr = (1.0 - shrinkage) * np.corrcoef(np.asarray(folds, dtype=float)) + shrinkage * np.eye(len(folds))
    values, vectors = np.linalg.eigh(corr)  # a sample correlation of few folds can be just short of PSD
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    draws = np.random.default_rng(seed).standard_normal((MAXT_DRAWS, len(folds))) @ root.T
    # never wider than Bonferroni's, which holds whatever the correlations (Monte Carlo error aside, it is not)
    return min(float(np.quantile(draws.max(axis=1), 1.0 - norm.sf(z))), family_z(z, len(folds), "bonferroni"))


def table_z(table: list[dict], fresh: Mapping[str, Any]) -> tuple[float, float]:
    """(z of the first finalist tested, z of each later one) of ``fresh``'s design on a scored finalist table:
    ``design_z`` for the finalists tried, or for ``maxt`` the max-T z from their per-fold pool gains."""
    z = float(fresh["confidence_z_single"])
    shrinkage, seed = float(fresh["maxt_shrinkage"]), int(fresh["seed"])
    if fresh["multiplicity"] == "maxt":
        z_max = max_t_z(table, z, shrinkage, seed)
        return z_max, z_max
    n_tried = sum(1 for row in table if row["kind"] != SEED)
    share = float(fresh["fallback_share"])
    z_first, z_later = design_z(z, n_tried, fresh["multiplicity"], share)
    first = search_order(table)[:1]
    if fresh["multiplicity"] != "fallback" or fallback_later(fresh.get("fallback_later", "bonferroni")) != "maxt" \
            or not first:
        return z_first, z_later
    # the later finalists share their part of the level as one max-T family: variants of one program (a ratio
    # with and without a column the model ignores) count as one test, not four
    later = [row for i, row in enumerate(table) if i != first[0]]
    return z_first, min(z_later, max_t_z(later, float(norm.isf(norm.sf(z) * share)), shrinkage, seed))


def search_order(table: list[dict]) -> list[int]:
    """The finalists in the search's order (``finalists()`` ranks by search fitness), only those whose search
    fitness beat the seed's: fixed by the search alone, before the pool is seen."""
    seed_i = next((i for i, row in enumerate(table) if row["kind"] == SEED), None)
    seed_search = table[seed_i]["search_fitness"] if seed_i is not None else float("-inf")
    return [i for i, row in enumerate(table) if row["kind"] != SEED and row["search_fitness"] > seed_search]


def with_lower_bounds(table: list[dict], fresh: Mapping[str, Any]) -> list[dict]:
    """The table with each row's z and ``fresh_lower_bound`` (mean − z·SE) under the design of ``fresh``
    (``confidence_z``: the first finalist's z; ``confidence_z_later``: the others')."""
    first = search_order(table)[:1] if fresh["multiplicity"] == "fallback" else range(len(table))
    z_first, z_later = float(fresh["confidence_z"]), float(fresh.get("confidence_z_later", fresh["confidence_z"]))
    zs = [z_first if i in first else z_later for i in range(len(table))]
    return [dict(row, z=z, fresh_lower_bound=row["fresh_delta_auc"] - z * row["fresh_delta_auc_se"])
            for row, z in zip(table, zs)]


def design_name(fresh: Mapping[str, Any], pool_rows: int) -> str:
    """The selection design in words (for the summary and the report)."""
    test = {"sequential": f"fixed-sequence test of the finalists in the search's order at z = {fresh['confidence_z']:.2f} "
                          "each, stopping at the first that fails",
            "maxt": f"max-T test of the finalists at z = {fresh['confidence_z']:.2f} each (the one-test level for the "
                    "largest of their correlated pool z-scores), the first confirmed in the search's order is frozen",
            "fallback": f"fallback test of the finalists in the search's order: the first at z = "
                        f"{fresh['confidence_z']:.2f}, each later one at z = "
                        f"{float(fresh.get('confidence_z_later', fresh['confidence_z'])):.2f}, the first confirmed is frozen",
            "bonferroni": f"best of {fresh.get('n_tried', 0)} finalists on the pool at a Bonferroni-widened z = "
                          f"{fresh['confidence_z']:.2f}",
            "none": f"best finalist on the pool at z = {fresh['confidence_z']:.2f} (no multiplicity correction)"}
    where = (f"a selection pool of {pool_rows} training rows the search never scored" if pool_rows else
             "fresh folds of the search's own rows (no selection pool)")
    return f"{test[fresh['multiplicity']]}; {fresh['n_folds']}-fold x {fresh['n_repeats']} on {where}"


def detectable(table: list[dict], z: float) -> dict:
    """The smallest gains this selection could have confirmed: z·SE and (z + 0.84)·SE, SE the finalists' median
    (over those whose predictions differ from the identity's on the pool)."""
    ses = [row["fresh_delta_auc_se"] for row in table if row["valid"] and row["kind"] != SEED  # SE 0: the
           and row["fresh_delta_auc_se"] is not None and 0 < row["fresh_delta_auc_se"] < math.inf]  # same predictions
    if not ses:
        return {"pool_se": None, "min_detectable_delta": None, "mde_80": None}
    se = float(statistics.median(ses))
    return {"pool_se": se, "min_detectable_delta": z * se, "mde_80": (z + POWER_Z) * se}


def select_tab(lineage: list[LineageEntry], run_dir: Path, make_evaluator: Callable[..., Any], top_k: int,
               sel: Mapping[str, Any], seed: int, no_harm: list[dict] | None = None
               ) -> tuple[LineageEntry | None, list[dict], dict]:
    """(chosen lineage entry, finalist table, selection summary).

    ``make_evaluator(scorer_cfg=None)`` builds an evaluator (with another scorer for the no-harm
    check); ``no_harm`` holds those scorers' configs.
    """
    entries = finalists(lineage, top_k, float(sel["lean_first_se"]))
    fresh = fresh_settings(sel, seed)
    n_tried = sum(1 for e in entries if e.kind != SEED)
    fresh["confidence_z_single"] = fresh["confidence_z"]
    fresh["confidence_z"], fresh["confidence_z_later"] = design_z(fresh["confidence_z"], n_tried,
                                                                   fresh["multiplicity"], fresh["fallback_share"])
    summary = {**fresh, "n_tried": n_tried, "verdict": NO_GAIN, "best_candidate": None,
               "lean_first_se": float(sel["lean_first_se"]), "lean_first": _lean_first(lineage, entries)}
    if not entries:
        return None, [], summary
    codes = [entry.source(run_dir) for entry in entries]
    evaluator = prescored(make_evaluator, codes, fresh, worker_count(sel["workers"]))  # on every core
    pool_rows = len(getattr(evaluator, "selection_rows", ()))
    summary["pool_rows"] = pool_rows
    search_rows = len(getattr(evaluator, "search_rows", ()))
    scored = f"; the search scored {search_rows}" if search_rows else ""
    summary["evidence"] = (f"the selection pool ({pool_rows} training rows the search never scored{scored}), "
                           f"{fresh['n_folds']}-fold x {fresh['n_repeats']} validating on them" if pool_rows else
                           f"fresh folds ({fresh['n_folds']}-fold x {fresh['n_repeats']}) of the rows the search "
                           "scored (no selection pool): can keep part of the search's optimism")
    gain = GAIN if pool_rows else GAIN_NO_POOL
    table = []
    try:
        for entry, code in zip(entries, codes):
            outcome = evaluator.score_fresh(code, fresh["n_folds"], fresh["n_repeats"], fresh["seed"])
            m, search = outcome.metrics, entry.metrics
            mean, se = m["delta_auc"], m["delta_auc_se"]
            table.append({
                "id": entry.id, "kind": entry.kind, "valid": outcome.valid,
                "search_fitness": entry.score,
                "search_delta_auc": search.get("delta_auc", 0.0), "search_delta_auc_se": search.get("delta_auc_se", 0.0),
                "search_n_folds": search.get("n_folds", 0.0),
                "fresh_fitness": m["combined_score"] if outcome.valid else 0.0,
                "fresh_delta_auc": mean, "fresh_delta_auc_se": se, "fresh_n_folds": m["n_folds"],
                "reason": outcome.reason,
                "fresh_fold_deltas": [round(d, 6) for d in outcome.fold_deltas],
            })
    finally:
        evaluator.close()
    fresh["confidence_z"], fresh["confidence_z_later"] = table_z(table, fresh)  # maxt: known only now
    summary.update(confidence_z=fresh["confidence_z"], confidence_z_later=fresh["confidence_z_later"])
    table = with_lower_bounds(table, fresh)
    summary["design"] = design_name(summary, pool_rows)
    summary.update(detectable(table, fresh["confidence_z"]))
    seed_i = next((i for i, e in enumerate(entries) if e.kind == SEED), None)
    identity = entries[seed_i] if seed_i is not None else None
    fresh["lean_first"] = summary["lean_first"]  # grown(): the lean program may give way to the best
    i, verdict, best = choose(table, fresh, lambda i: _harms_another_model(codes[i], table[i], make_evaluator,
                                                                          no_harm or [], fresh))
    summary["best_candidate"] = table[best]["id"] if best is not None else None
    extras = next((row for row in table if "extras_over_lean" in row), None)
    if extras is not None and summary["lean_first"]:
        summary["lean_first"]["extras"] = {**extras["extras_over_lean"],
                                           "kept": i is not None and table[i]["id"] == extras["id"]}
    if i is None:
        return identity, table, summary
    summary["verdict"] = gain if verdict == GAIN else verdict
    return entries[i], table, summary


def _lean_first(lineage: list[LineageEntry], entries: list[LineageEntry]) -> dict | None:
    """The first finalist and the search's best it stands in for, when the one-SE rule put a leaner program first."""
    tried = [e for e in entries if e.kind != SEED]
    best = best_valid(e for e in lineage if e.kind != SEED)
    if not tried or best is None or tried[0] is best:
        return None
    return {"id": tried[0].id, "changes": len(changed(tried[0])), "instead_of": best.id, "its_changes": len(changed(best))}


def choose(table: list[dict], fresh: Mapping[str, Any], harms: Callable[[int], bool] = lambda i: False
           ) -> tuple[int | None, str | None, int | None]:
    """(the row to freeze or None for the identity, GAIN or UNCHECKED, the first row tested) from the
    finalists' pool estimates (``fresh_lower_bound`` already at the design's z).

    ``harms(i)`` is asked only of a row about to be frozen (the no-harm check: another model hurt).
    """
    seed_i = next((i for i, row in enumerate(table) if row["kind"] == SEED), None)
    seed_fitness = table[seed_i]["fresh_fitness"] if seed_i is not None else float("-inf")
    candidates = [i for i, row in enumerate(table) if row["kind"] != SEED]
    if fresh["multiplicity"] in IN_SEARCH_ORDER:
        ranked = search_order(table)
    else:  # the pool's order
        ranked = sorted((i for i in candidates if table[i]["valid"]),
                        key=lambda i: (-round(table[i]["fresh_fitness"], 12), -table[i]["fresh_delta_auc"]))
    if not ranked:
        return None, None, None
    if not fresh["require_gain"]:
        best = max(ranked, key=lambda i: (table[i]["valid"], table[i]["fresh_fitness"]))
        if table[best]["valid"] and table[best]["fresh_fitness"] >= seed_fitness:
            return best, UNCHECKED, ranked[0]
        return None, None, ranked[0]
    for i in ranked:
        row = table[i]
        if not (row["valid"] and row["fresh_lower_bound"] > 0.0 and row["fresh_fitness"] > seed_fitness):
            if fresh["multiplicity"] == "sequential":
                break  # fixed-sequence testing: the first finalist not confirmed ends the selection
            continue
        if harms(i):
            continue
        return grown(table, i, fresh, harms), GAIN, ranked[0]
    return None, None, ranked[0]


def grown(table: list[dict], i: int, fresh: Mapping[str, Any], harms: Callable[[int], bool] = lambda i: False) -> int:
    """The search's best in place of its confirmed lean sub-program (``lean_first``) when the pool says the best's
    extra columns add: their paired per-fold gain over the lean program above ``extras_z``·SE (the SE with the
    same Nadeau-Bengio correction as the pool's). Real extras (a second wage curve beside the first) are kept;
    noise (an outlier flag beside a ratio) mostly is not. The gain itself is already confirmed, so this step
    cannot freeze a program without one: it only chooses between two programs that both have it."""
    lean = fresh.get("lean_first") or {}
    j = next((k for k, row in enumerate(table) if row["id"] == lean.get("instead_of")), None)
    if table[i]["id"] != lean.get("id") or j is None or not table[j]["valid"]:
        return i
    a = np.asarray(table[i].get("fresh_fold_deltas") or [], dtype=float)
    b = np.asarray(table[j].get("fresh_fold_deltas") or [], dtype=float)
    if len(a) < 3 or len(a) != len(b) or float(np.std(a)) == 0.0:
        return i
    inflation = float(table[i]["fresh_delta_auc_se"]) / (float(np.std(a, ddof=1)) / math.sqrt(len(a)))
    gain = float(np.mean(b - a))
    se = inflation * float(np.std(b - a, ddof=1)) / math.sqrt(len(a))
    z = float(fresh["extras_z"])
    table[j]["extras_over_lean"] = {"delta": gain, "se": se, "z": z}
    return j if se > 0 and gain - z * se > 0 and not harms(j) else i


def _harms_another_model(code: str, row: dict, make_evaluator: Callable[..., Any], scorers: list[dict],
                         fresh: dict) -> bool:
    """Score the program on the same selection folds with each no-harm scorer; record and judge the means."""
    row["no_harm"] = {}
    for cfg in scorers:
        evaluator = make_evaluator(cfg)
        try:
            outcome = evaluator.score_fresh(code, fresh["n_folds"], fresh["n_repeats"], fresh["seed"])
        finally:
            evaluator.close()
        mean = outcome.metrics["delta_auc"] if outcome.valid else float("-inf")
        se = outcome.metrics["delta_auc_se"]
        hurt = harmed(mean, se, fresh["no_harm_z"])
        row["no_harm"][cfg.get("name", "?")] = {"delta_auc": mean, "se": se, "z": fresh["no_harm_z"], "harmed": hurt}
        if hurt:
            return True
    return False


def no_harm_failed(record: dict) -> bool:
    """A recorded no-harm check's verdict (records written before ``harmed`` was kept: the old rule, mean < 0)."""
    return bool(record.get("harmed", record["delta_auc"] < 0))


def harmed(mean: float, se: float, z: float) -> bool:
    """A no-harm scorer's verdict: its mean change is below zero by more than ``z`` standard errors (a float
    round-off below zero, with no spread, is no harm)."""
    return mean + z * (se if math.isfinite(se) else 0.0) < -1e-12
