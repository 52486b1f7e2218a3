"""Do-no-harm final selection for EFE-Time: choose on windows the search never saw, claim on others.

The search picks its best programs on the search windows, so their gain there is optimistic
(the winner's curse). Two stretches just before the held-out part are never scored during the
search. On the selection windows (``selection.windows``) the seed (identity) and the best
candidates are scored on the same paired windows; a candidate is eligible only if it falls back
nowhere and makes no single series significantly worse than ``selection.max_series_loss`` (its MASE
change over that series' windows + ``series_loss.z`` SE below −5%, the SE from origins spread over
the series' history: averages over series must not hide one series made worse, and one noisy
series must not veto everything; the raw count of series below −5% is kept beside it). The eligible
candidate with the highest lower confidence bound is frozen when that bound is above zero
(``selection.require_gain``), otherwise the identity. Choosing the best of several finalists on
the same windows that measure it would again overstate the gain, so the claimed gain comes from
the claim windows (``selection.claim_windows``, the latest before the held-out part): the frozen
program is scored there once, after the choice, and that estimate is reported whatever it is.

Before any of this, a minimum of evidence (``selection.min_windows_per_series`` and
``min_windows_total``, effective selection + claim windows): with fewer, no SE confirming a program
is reliable, so the identity is frozen ("not enough evidence") and the report says why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from efe.datasets.ts_store import read_series
from efe.rundir.records import SEED, LineageEntry
from efe.search.finalists import finalists
from efe.core.specs import TimeSpec, replace, time_spec
from efe.time.heldout import per_series_gains, raw_losses, significant_losses, spread_gains
from evaluators.timeseries.evaluator import TimeEvaluator
from evaluators.timeseries.pipeline import effective_windows
from evaluators.timeseries.windows import cut_windows, span, windows_per_series


@dataclass
class TimeSelection:
    chosen: LineageEntry | None         # the lineage entry to freeze (None: keep the search's winner)
    decision: str                       # "gain" | "no gain found" | "not confirmed" | "gain not required" | "skipped"
                                        #   | "not enough evidence"
    table: list[dict] = field(default_factory=list)
    best: dict | None = None            # the best eligible finalist's row (by lower bound), frozen or not
    claimed: dict | None = None         # the frozen program's gain as reported (see ``claim``)
    rejected_for_series: int = 0        # finalists with a positive lower bound that hurt one series too much
    unconfirmed: dict | None = None     # "not confirmed": the chosen finalist's claim-window result
    evidence: dict | None = None        # effective selection + claim windows (``evidence``)


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


def evidence(spec: TimeSpec) -> dict:
    """Effective selection + claim windows per series and in total, against the configured minimum.

    Counted from the windows the selection and the claim would cut (the evaluator's own rules, before
    scoring anything): overlapping windows count as n / (horizon / stride), as for every paired gain.
    """
    sel, w, h = spec.selection, spec.windows, spec.prediction_length
    series = read_series(spec.train_path)
    counts = {str(k): 0 for k in series}
    for part, n in (("choose", sel.windows), ("claim", sel.claim_windows)):
        if n <= 0:
            continue
        pw = selection_spec(spec, part).windows
        for inst in cut_windows(series, h, windows_per_series(pw.n_windows, pw.max_total, len(series)),
                                pw.min_history, pw.stride, pw.end_offset):
            counts[inst.item_id] += 1
    overlap = h / max(1, int(w.stride or h))
    per = {k: effective_windows(c, overlap) for k, c in counts.items()}
    worst = min(per, key=per.get) if per else None
    least, total = (per[worst] if worst is not None else 0.0), float(sum(per.values()))
    need_series, need_total = sel.min_windows_per_series, sel.min_windows_total
    short = []
    if least < need_series:
        short.append(f"series {worst} has {least:g} effective selection + claim windows, fewer than "
                     f"selection.min_windows_per_series={need_series:g}")
    if total < need_total:
        short.append(f"all {len(per)} series together have {total:g}, fewer than "
                     f"selection.min_windows_total={need_total:g}")
    return {"per_series_min": least, "worst_series": worst, "total": total, "n_series": len(per),
            "min_per_series": need_series, "min_total": need_total, "enough": not short,
            "reason": ("; ".join(short) + ": too few windows for an SE that could confirm a program")
            if short else None}


def _worst(per_series: dict[str, float]) -> tuple[str | None, float]:
    if not per_series:
        return None, 0.0
    key = min(per_series, key=per_series.get)
    return key, per_series[key]


class _SeriesJudge:
    """Which series a program makes significantly worse (``series_loss``), with the SE from spread origins.

    The per-series change comes from the judged windows; the SD of one window's gain from
    ``series_loss.se_origins`` origins spread over each training series' history (computed only for a
    program with a series below the raw threshold: otherwise nothing can be significant; once per program).
    """

    def __init__(self, spec: TimeSpec, sandbox) -> None:
        self.spec, self.sandbox = spec, sandbox
        self.max_loss = spec.selection.max_series_loss
        self.overlap = spec.prediction_length / max(1, int(spec.windows.stride or spec.prediction_length))
        self._spread: dict[str, dict] = {}

    def spread(self, code: str) -> dict:
        if code not in self._spread:
            s = self.spec
            levels = sorted(set(float(q) for q in s.quantile_levels) | {0.5})
            self._spread[code] = spread_gains(code, read_series(s.train_path), s.prediction_length, s.season,
                                              s.series_loss.se_origins, s.windows.min_history, s.forecaster,
                                              levels, s.sandbox, s.seed, self.sandbox)
        return self._spread[code]

    def judge(self, code: str, gains: np.ndarray, items: list[str], changed: bool) -> dict:
        per = per_series_gains(gains, items, self.overlap)
        means = {k: r["log"] for k, r in per.items()}
        worst_id, worst = _worst(means)
        out = {"worst_series": worst_id, "worst_series_gain": worst, "raw_losses": [], "significant_losses": [],
               "worst_series_se": per[worst_id]["se"] if worst_id is not None else 0.0}
        if self.max_loss is None or not changed:
            return out
        pct = 100.0 * self.max_loss
        raw = raw_losses(per, pct)
        if raw and self.spec.series_loss.se_origins > 0:
            per = per_series_gains(gains, items, self.overlap, self.spread(code), self.spec.series_loss.prior_dof)
        out.update(raw_losses=raw, significant_losses=significant_losses(per, pct, self.spec.series_loss.z),
                   worst_series_se=per[worst_id]["se"])
        return out


def _row(entry: LineageEntry, outcome: Any, judged: dict) -> dict:
    m = outcome.metrics
    return {"id": entry.id, "kind": entry.kind, "search_fitness": entry.score,
            "search_gain": entry.metrics.get("gain", 0.0),
            "search_mase_ratio": entry.metrics.get("mase_ratio", 1.0),
            "valid": outcome.valid, "gain": m["gain"], "gain_se": m["gain_se"],
            "gain_lcb": m["gain_lcb"], "mase_ratio": m["mase_ratio"],
            "fallback_rate": m["fallback_rate"], "n_windows": int(m["n_windows"]),
            "worst_series": judged["worst_series"], "worst_series_gain": judged["worst_series_gain"],
            "worst_series_se": judged["worst_series_se"],
            "series_losses_raw": len(judged["raw_losses"]),
            "series_losses_significant": judged["significant_losses"],
            "series_ok": not judged["significant_losses"]}


def claim(entry: LineageEntry, code: str, spec: TimeSpec, chosen_row: dict, judge: _SeriesJudge | None = None) -> dict:
    """The frozen program's gain as the report states it, and which windows it comes from.

    With claim windows: the program's gain there (never used to choose it), ± ``interval_z`` SE, and
    the series it makes significantly worse there. Without (``claim_windows: 0``): the selection-window
    estimate, which is optimistic because the same windows chose the program. The identity claims no change.
    """
    z = spec.selection.interval_z
    if entry.kind == SEED:
        return {"gain": 0.0, "gain_se": 0.0, "gain_lcb": 0.0, "interval": [0.0, 0.0], "n_windows": 0,
                "worst_series": None, "worst_series_gain": 0.0, "series_losses_raw": 0,
                "series_losses_significant": [], "source": "identity (no change)"}
    if spec.selection.claim_windows > 0:
        evaluator = TimeEvaluator(selection_spec(spec, "claim"))
        try:
            outcome, gains, items = evaluator.score_windows(code)
            judged = (judge or _SeriesJudge(spec, evaluator.sandbox)).judge(code, gains, items, outcome.valid)
        finally:
            evaluator.close()
        m = outcome.metrics
        gain, se, lcb, n = m["gain"], m["gain_se"], m["gain_lcb"], int(m["n_windows"])
        worst_id, worst = judged["worst_series"], judged["worst_series_gain"]
        raw, significant = len(judged["raw_losses"]), judged["significant_losses"]
        source = "claim windows (scored once, after the choice)"
    else:
        gain, se, lcb, n = (chosen_row[k] for k in ("gain", "gain_se", "gain_lcb", "n_windows"))
        worst_id, worst = chosen_row["worst_series"], chosen_row["worst_series_gain"]
        raw, significant = chosen_row["series_losses_raw"], chosen_row["series_losses_significant"]
        source = "selection windows (optimistic: the same windows chose the program)"
    return {"gain": gain, "gain_se": se, "gain_lcb": lcb, "interval": [gain - z * se, gain + z * se],
            "n_windows": n, "worst_series": worst_id, "worst_series_gain": worst, "series_losses_raw": raw,
            "series_losses_significant": significant, "source": source}


def select_time(lineage: list[LineageEntry], run_dir: Path, spec: TimeSpec | Mapping[str, Any],
                make_evaluator: Callable[[TimeSpec], Any] = TimeEvaluator) -> TimeSelection:
    """``make_evaluator(spec)`` builds the scoring evaluator (the run's executor's, see ``scoring_evaluator``)."""
    spec = time_spec(spec)
    sel = spec.selection
    top_k, n_windows = sel.top_k, sel.windows
    entries = finalists(lineage, top_k) if top_k > 0 and n_windows > 0 else []
    if not entries:
        return TimeSelection(None, "skipped")
    enough = evidence(spec)
    if sel.require_gain and not enough["enough"]:
        seed = next((e for e in lineage if e.kind == SEED), None)
        return TimeSelection(seed, "not enough evidence", [], None, claim(seed, "", spec, {}) if seed else None,
                             evidence=enough)
    evaluator = make_evaluator(selection_spec(spec))
    codes = [entry.source(run_dir) for entry in entries]
    judge = _SeriesJudge(spec, evaluator.sandbox)
    try:
        table = []
        for entry, code in zip(entries, codes):
            outcome, gains, items = evaluator.score_windows(code)
            changed = outcome.valid and entry.kind != SEED and outcome.metrics["fallback_rate"] == 0.0
            table.append(_row(entry, outcome, judge.judge(code, gains, items, changed)))
        seed = next((e for e, row in zip(entries, table) if row["kind"] == "seed"), None)
        usable = [(e, row, code) for e, row, code in zip(entries, table, codes)
                  if row["kind"] != "seed" and row["valid"] and row["fallback_rate"] == 0.0]
        rejected = sum(1 for _, row, _ in usable if row["gain_lcb"] > 0 and not row["series_ok"])
        ranked = [item for item in usable if item[1]["series_ok"]]
        if not ranked:
            return _decide(seed, "no gain found", table, None, rejected, spec, judge=judge, evidence=enough)
        entry, best, code = max(ranked, key=lambda item: (item[1]["gain_lcb"], item[1]["gain"]))
        if best["gain_lcb"] > sel.min_gain:  # above rounding noise, not just above 0
            chosen = _decide(entry, "gain", table, best, rejected, spec, code, judge, enough)
            if sel.confirm and not _confirmed(chosen.claimed, sel.min_gain, sel.max_series_loss):
                return dataclasses.replace(_decide(seed, "not confirmed", table, best, rejected, spec, judge=judge,
                                                   evidence=enough), unconfirmed=chosen.claimed)
            return chosen
        if not sel.require_gain:
            return _decide(entry, "gain not required", table, best, rejected, spec, code, judge, enough)
        return _decide(seed, "no gain found", table, best, rejected, spec, judge=judge, evidence=enough)
    finally:
        evaluator.close()


def _confirmed(claimed: dict | None, min_gain: float, max_loss: float | None) -> bool:
    """The claim windows agree with the choice: a gain above rounding level and, with the per-series
    rule, no series significantly worse than it allows there (claim windows only: nothing else is chosen on them)."""
    if not claimed or not claimed["n_windows"]:
        return True  # no claim windows (claim_windows: 0): nothing to confirm on
    if claimed["gain"] <= min_gain:
        return False
    return max_loss is None or not claimed["series_losses_significant"]


def _decide(entry: LineageEntry | None, decision: str, table: list[dict], best: dict | None, rejected: int,
            spec: TimeSpec, code: str = "", judge: _SeriesJudge | None = None,
            evidence: dict | None = None) -> TimeSelection:
    row = next((r for r in table if entry is not None and r["id"] == entry.id), None)
    claimed = claim(entry, code, spec, row, judge) if entry is not None and row is not None else None
    return TimeSelection(entry, decision, table, best, claimed, rejected, evidence=evidence)
