"""A frozen program's gain, three times: as the search saw it, on the selection pool, and held out.

The search's estimate is optimistic (its folds chose the program); the selection pool's is fresh
(training rows the search never scored); the held-out one is the verdict. Each comes with an
interval at ``report.interval_z``, and the held-out one with where it should land if the claim is right.
"""

from __future__ import annotations

import numpy as np

from efe.rundir.records import SEED, LineageEntry


def _interval(mean: float, se: float, z: float) -> dict:
    se = float(se) if se is not None and np.isfinite(se) else float("nan")
    return {"delta_auc": float(mean), "se": se, "low": float(mean - z * se), "high": float(mean + z * se)}


def estimates(winner: LineageEntry, fresh_row: dict | None, heldout_rows: list[dict], z: float,
              search_model: str | None = None) -> dict:
    """The frozen program's gain as the search saw it, on the selection pool ("fresh"), and held out."""
    m = winner.metrics
    identity = winner.kind == SEED
    search = {**_interval(m.get("delta_auc", 0.0), m.get("delta_auc_se", 0.0), z), "n_folds": m.get("n_folds", 0)}
    fresh = None
    if fresh_row is not None:
        fresh = {**_interval(fresh_row["fresh_delta_auc"], fresh_row["fresh_delta_auc_se"], z),
                 "n_folds": fresh_row["fresh_n_folds"]}
    claimed = (fresh or search)["delta_auc"]
    claimed_se = (fresh or search)["se"]
    held = []
    for row in heldout_rows:
        entry = {"model": row["model"], **_interval(row["delta"], row.get("delta_se", float("nan")), z)}
        entry["inside_fresh_interval"] = bool(fresh is not None and fresh["low"] <= row["delta"] <= fresh["high"])
        if search_model is None or row["model"] == search_model:  # the claim was measured with this model
            # where the held-out Δ should land if the claim is right: both estimates are noisy, so the
            # prediction interval adds the held-out SE to the claim's
            spread = z * float(np.hypot(claimed_se, entry["se"]))
            entry["expected"] = {"low": claimed - spread, "high": claimed + spread}
            entry["inside_expected"] = bool(entry["expected"]["low"] <= row["delta"] <= entry["expected"]["high"])
        entry["note"] = _heldout_note(identity, claimed, entry, z)
        held.append(entry)
    return {"interval_z": z, "frozen_is_identity": identity, "claimed_delta_auc": claimed,
            "search": search, "fresh": fresh, "heldout": held}


def _heldout_note(identity: bool, claimed: float, held: dict, z: float) -> str:
    if identity:
        return "identity frozen: no change by construction"
    se = held["se"]
    if not np.isfinite(se):
        return "held-out part too small to estimate the uncertainty"
    if abs(claimed) < z * se:
        return (f"too small to confirm a gain of {claimed:+.4f}: the held-out difference has SE {se:.4f}, "
                f"so only gains beyond ±{z * se:.4f} stand out from noise")
    if held["low"] > 0:
        return "gain confirmed on the held-out part"
    return "the held-out part does not confirm the claimed gain"
