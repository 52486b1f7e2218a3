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
folds (mean ΔAUC ≥ 0), or the next confirmed finalist (or the identity) is taken. (The table
keys keep the name ``fresh_*``: the estimate on rows the search never scored.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from scipy.stats import norm

from efe.rundir.records import SEED, LineageEntry
from efe.search.finalists import finalists
from efe.tab.parallel import prescored, worker_count

NO_GAIN = "no program beat doing nothing"
GAIN = "gain confirmed on the selection pool"
GAIN_NO_POOL = "gain confirmed on fresh folds of the search's rows (no selection pool)"
UNCHECKED = "frozen without a confirmed gain (selection.require_gain=false)"


def fresh_settings(sel: Mapping[str, Any], seed: int) -> dict:
    """The re-scoring's settings from the ``selection`` section of conf/tab.yaml (every key required)."""
    return {"n_folds": int(sel["n_folds"]), "n_repeats": int(sel["n_repeats"]),
            "seed": int(seed) + int(sel["seed_offset"]),
            "confidence_z": float(sel["confidence_z"]),
            "multiplicity": str(sel["multiplicity"]),
            "require_gain": bool(sel["require_gain"])}


def family_z(z: float, n_tried: int, multiplicity: str) -> float:
    """The z each finalist must clear so that the chance of confirming any of ``n_tried`` null finalists
    stays that of one test at ``z`` (Bonferroni): the best of several noisy estimates is optimistic."""
    if multiplicity == "none" or n_tried <= 1:
        return float(z)
    if multiplicity != "bonferroni":
        raise ValueError(f"selection.multiplicity must be bonferroni or none, got {multiplicity!r}")
    return float(norm.isf(norm.sf(z) / n_tried))


def select_tab(lineage: list[LineageEntry], run_dir: Path, make_evaluator: Callable[..., Any], top_k: int,
               sel: Mapping[str, Any], seed: int, no_harm: list[dict] | None = None
               ) -> tuple[LineageEntry | None, list[dict], dict]:
    """(chosen lineage entry, finalist table, selection summary).

    ``make_evaluator(scorer_cfg=None)`` builds an evaluator (with another scorer for the no-harm
    check); ``no_harm`` holds those scorers' configs.
    """
    entries = finalists(lineage, top_k)
    fresh = fresh_settings(sel, seed)
    n_tried = sum(1 for e in entries if e.kind != SEED)
    fresh["confidence_z_single"] = fresh["confidence_z"]
    fresh["confidence_z"] = family_z(fresh["confidence_z"], n_tried, fresh["multiplicity"])
    summary = {**fresh, "n_tried": n_tried, "verdict": NO_GAIN, "best_candidate": None}
    if not entries:
        return None, [], summary
    codes = [entry.source(run_dir) for entry in entries]
    evaluator = prescored(make_evaluator, codes, fresh, worker_count(sel["workers"]))  # on every core
    pool_rows = len(getattr(evaluator, "selection_rows", ()))
    summary["pool_rows"] = pool_rows
    summary["evidence"] = (f"the selection pool ({pool_rows} training rows the search never scored), "
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
                "fresh_lower_bound": mean - fresh["confidence_z"] * se,
                "reason": outcome.reason,
            })
    finally:
        evaluator.close()
    seed_i = next((i for i, e in enumerate(entries) if e.kind == SEED), None)
    seed_fitness = table[seed_i]["fresh_fitness"] if seed_i is not None else float("-inf")
    ranked = sorted((i for i, row in enumerate(table) if row["valid"] and row["kind"] != "seed"),
                    key=lambda i: (-round(table[i]["fresh_fitness"], 12), -table[i]["fresh_delta_auc"]))
    identity = entries[seed_i] if seed_i is not None else None
    if not ranked:
        return identity, table, summary
    summary["best_candidate"] = table[ranked[0]]["id"]
    if not fresh["require_gain"]:
        if table[ranked[0]]["fresh_fitness"] >= seed_fitness:
            summary["verdict"] = UNCHECKED
            return entries[ranked[0]], table, summary
        return identity, table, summary
    for i in ranked:
        row = table[i]
        if not (row["fresh_lower_bound"] > 0.0 and row["fresh_fitness"] > seed_fitness):
            continue
        if _harms_another_model(codes[i], row, make_evaluator, no_harm or [], fresh):
            continue
        summary["verdict"] = gain
        return entries[i], table, summary
    return identity, table, summary


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
        row["no_harm"][cfg.get("name", "?")] = {"delta_auc": mean, "se": outcome.metrics["delta_auc_se"]}
        if mean < 0.0:
            return True
    return False
