"""Do-no-harm final selection for EFE-Time: score the finalists on windows the search never saw.

The search picks its best programs on the search windows, so their gain there is optimistic
(the winner's curse). The selection windows lie just before the held-out part and are never
scored during the search: the seed (identity) and the best candidates are scored there on the
same paired windows, the candidate with the highest lower confidence bound on its gain is the
best finalist, and it is frozen only when that bound is above zero (``require_gain``); otherwise
the identity is frozen and the report says that no gain was found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efe.search.finalists import finalists
from evaluators.timeseries.evaluator import TimeEvaluator


@dataclass
class TimeSelection:
    chosen: dict | None                 # the lineage entry to freeze (None: keep the search's winner)
    decision: str                       # "gain" | "no gain found" | "gain not required" | "skipped"
    table: list[dict] = field(default_factory=list)
    best: dict | None = None            # the best finalist's row (by lower bound), frozen or not


def selection_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The evaluator spec for the selection windows: the last ones of the training part, all scored at once."""
    sel = spec["selection"]
    windows = {**spec["windows"], "n_windows": int(sel["windows"]), "end_offset": 0, "n_rotations": 1}
    return {**spec, "windows": windows}


def select_time(lineage: list[dict], run_dir: Path, spec: dict[str, Any]) -> TimeSelection:
    sel = spec.get("selection") or {}
    top_k, n_windows = int(sel.get("top_k", 0) or 0), int(sel.get("windows", 0) or 0)
    entries = finalists(lineage, top_k) if top_k > 0 and n_windows > 0 else []
    if not entries:
        return TimeSelection(None, "skipped")
    evaluator = TimeEvaluator(selection_spec(spec))
    table = []
    try:
        for entry in entries:
            code = (run_dir / "programs" / f"{entry['code_sha256']}.py").read_text()
            outcome = evaluator.stage2(code, full=True)
            m = outcome.metrics
            table.append({"id": entry["id"], "kind": entry["kind"], "search_fitness": entry["metrics"]["combined_score"],
                          "search_gain": entry["metrics"].get("gain", 0.0),
                          "search_mase_ratio": entry["metrics"].get("mase_ratio", 1.0),
                          "valid": outcome.valid, "gain": m["gain"], "gain_se": m["gain_se"],
                          "gain_lcb": m["gain_lcb"], "mase_ratio": m["mase_ratio"],
                          "fallback_rate": m["fallback_rate"], "n_windows": int(m["n_windows"])})
    finally:
        evaluator.close()
    seed = next((e for e, row in zip(entries, table) if row["kind"] == "seed"), None)
    ranked = [(e, row) for e, row in zip(entries, table)
              if row["kind"] != "seed" and row["valid"] and row["fallback_rate"] == 0.0]
    if not ranked:
        return TimeSelection(seed, "no gain found", table)
    entry, best = max(ranked, key=lambda pair: (pair[1]["gain_lcb"], pair[1]["gain"]))
    if best["gain_lcb"] > 0:
        return TimeSelection(entry, "gain", table, best)
    if not bool(sel.get("require_gain", True)):
        return TimeSelection(entry, "gain not required", table, best)
    return TimeSelection(seed, "no gain found", table, best)
