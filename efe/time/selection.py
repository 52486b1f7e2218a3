"""Do-no-harm final selection for EFE-Time: choose on windows the search never saw, claim on others.

The search picks its best programs on the search windows, so their gain there is optimistic
(the winner's curse). Two stretches just before the held-out part are never scored during the
search. On the selection windows (``selection.windows``) the seed (identity) and the best
candidates are scored on the same paired windows; a candidate is eligible only if it falls back
nowhere and hurts no single series by more than ``selection.max_series_loss`` (mean log MASE over
that series' windows: averages over series must not hide one series made worse). The eligible
candidate with the highest lower confidence bound is frozen when that bound is above zero
(``selection.require_gain``), otherwise the identity. Choosing the best of several finalists on
the same windows that measure it would again overstate the gain, so the claimed gain comes from
the claim windows (``selection.claim_windows``, the latest before the held-out part): the frozen
program is scored there once, after the choice, and that estimate is reported whatever it is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from efe.rundir.records import SEED, LineageEntry
from efe.search.finalists import finalists
from efe.core.specs import TimeSpec, replace, time_spec
from evaluators.timeseries.evaluator import TimeEvaluator
from evaluators.timeseries.windows import span


@dataclass
class TimeSelection:
    chosen: LineageEntry | None         # the lineage entry to freeze (None: keep the search's winner)
    decision: str                       # "gain" | "no gain found" | "not confirmed" | "gain not required" | "skipped"
    table: list[dict] = field(default_factory=list)
    best: dict | None = None            # the best eligible finalist's row (by lower bound), frozen or not
    claimed: dict | None = None         # the frozen program's gain as reported (see ``claim``)
    rejected_for_series: int = 0        # finalists with a positive lower bound that hurt one series too much
    unconfirmed: dict | None = None     # "not confirmed": the chosen finalist's claim-window result


def selection_spec(spec: TimeSpec, part: str = "choose") -> TimeSpec:
    """The evaluator spec for the selection ("choose") or claim windows, all windows scored at once.

    Layout before the held-out part: [search windows][selection windows][claim windows]; the
    futures of the three stretches do not overlap.
    """
    claim = spec.selection.claim_windows
    if part == "claim":
        n, end_offset = claim, 0
    else:
        n, end_offset = spec.selection.windows, span(spec.prediction_length, claim, spec.windows.stride)
    return replace(spec, windows=replace(spec.windows, n_windows=n, end_offset=end_offset, n_rotations=1))


def _worst(per_series: dict[str, float]) -> tuple[str | None, float]:
    if not per_series:
        return None, 0.0
    key = min(per_series, key=per_series.get)
    return key, per_series[key]


def _row(entry: LineageEntry, outcome: Any, per_series: dict[str, float], max_loss: float | None) -> dict:
    m = outcome.metrics
    worst_id, worst = _worst(per_series)
    return {"id": entry.id, "kind": entry.kind, "search_fitness": entry.score,
            "search_gain": entry.metrics.get("gain", 0.0),
            "search_mase_ratio": entry.metrics.get("mase_ratio", 1.0),
            "valid": outcome.valid, "gain": m["gain"], "gain_se": m["gain_se"],
            "gain_lcb": m["gain_lcb"], "mase_ratio": m["mase_ratio"],
            "fallback_rate": m["fallback_rate"], "n_windows": int(m["n_windows"]),
            "worst_series": worst_id, "worst_series_gain": worst,
            "series_ok": max_loss is None or worst >= -max_loss}


def claim(entry: LineageEntry, code: str, spec: TimeSpec, chosen_row: dict) -> dict:
    """The frozen program's gain as the report states it, and which windows it comes from.

    With claim windows: the program's gain there (never used to choose it), ± ``interval_z`` SE.
    Without (``claim_windows: 0``): the selection-window estimate, which is optimistic because the
    same windows chose the program. The identity claims no change.
    """
    z = spec.selection.interval_z
    if entry.kind == SEED:
        return {"gain": 0.0, "gain_se": 0.0, "gain_lcb": 0.0, "interval": [0.0, 0.0], "n_windows": 0,
                "worst_series": None, "worst_series_gain": 0.0, "source": "identity (no change)"}
    if spec.selection.claim_windows > 0:
        evaluator = TimeEvaluator(selection_spec(spec, "claim"))
        try:
            outcome, per_series = evaluator.score_by_series(code)
        finally:
            evaluator.close()
        m = outcome.metrics
        gain, se, lcb, n = m["gain"], m["gain_se"], m["gain_lcb"], int(m["n_windows"])
        worst_id, worst = _worst(per_series)
        source = "claim windows (scored once, after the choice)"
    else:
        gain, se, lcb, n = (chosen_row[k] for k in ("gain", "gain_se", "gain_lcb", "n_windows"))
        worst_id, worst = chosen_row["worst_series"], chosen_row["worst_series_gain"]
        source = "selection windows (optimistic: the same windows chose the program)"
    return {"gain": gain, "gain_se": se, "gain_lcb": lcb, "interval": [gain - z * se, gain + z * se],
            "n_windows": n, "worst_series": worst_id, "worst_series_gain": worst, "source": source}


def select_time(lineage: list[LineageEntry], run_dir: Path, spec: TimeSpec | Mapping[str, Any],
                make_evaluator: Callable[[TimeSpec], Any] = TimeEvaluator) -> TimeSelection:
    """``make_evaluator(spec)`` builds the scoring evaluator (the run's executor's, see ``scoring_evaluator``)."""
    spec = time_spec(spec)
    sel = spec.selection
    top_k, n_windows = sel.top_k, sel.windows
    entries = finalists(lineage, top_k) if top_k > 0 and n_windows > 0 else []
    if not entries:
        return TimeSelection(None, "skipped")
    max_loss = sel.max_series_loss
    evaluator = make_evaluator(selection_spec(spec))
    codes = [entry.source(run_dir) for entry in entries]
    try:
        table = [_row(entry, *evaluator.score_by_series(code), max_loss) for entry, code in zip(entries, codes)]
    finally:
        evaluator.close()
    seed = next((e for e, row in zip(entries, table) if row["kind"] == "seed"), None)
    usable = [(e, row, code) for e, row, code in zip(entries, table, codes)
              if row["kind"] != "seed" and row["valid"] and row["fallback_rate"] == 0.0]
    rejected = sum(1 for _, row, _ in usable if row["gain_lcb"] > 0 and not row["series_ok"])
    ranked = [item for item in usable if item[1]["series_ok"]]
    if not ranked:
        return _decide(seed, "no gain found", table, None, rejected, spec)
    entry, best, code = max(ranked, key=lambda item: (item[1]["gain_lcb"], item[1]["gain"]))
    if best["gain_lcb"] > sel.min_gain:  # above rounding noise, not just above 0
        chosen = _decide(entry, "gain", table, best, rejected, spec, code)
        if sel.confirm and not _confirmed(chosen.claimed, sel.min_gain, max_loss):
            return dataclasses.replace(_decide(seed, "not confirmed", table, best, rejected, spec), unconfirmed=chosen.claimed)
        return chosen
    if not sel.require_gain:
        return _decide(entry, "gain not required", table, best, rejected, spec, code)
    return _decide(seed, "no gain found", table, best, rejected, spec)


def _confirmed(claimed: dict | None, min_gain: float, max_loss: float | None) -> bool:
    """The claim windows agree with the choice: a gain above rounding level and, with the per-series
    rule, no series worse than it allows there (claim windows only: nothing else is chosen on them)."""
    if not claimed or not claimed["n_windows"]:
        return True  # no claim windows (claim_windows: 0): nothing to confirm on
    if claimed["gain"] <= min_gain:
        return False
    return max_loss is None or claimed["worst_series_gain"] >= -max_loss


def _decide(entry: LineageEntry | None, decision: str, table: list[dict], best: dict | None, rejected: int,
            spec: TimeSpec, code: str = "") -> TimeSelection:
    row = next((r for r in table if entry is not None and r["id"] == entry.id), None)
    claimed = claim(entry, code, spec, row) if entry is not None and row is not None else None
    return TimeSelection(entry, decision, table, best, claimed, rejected)
