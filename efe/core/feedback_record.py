"""The evaluator's feedback on one program as data, and the one function that renders it for the prompt.

An evaluator returns a ``FeedbackRecord``: the verdict and its reason, the scores with their
standard errors, and per setting what it learnt (tabular: new and dropped columns, importances on
pool A, a readable tree; time series: MASE ratio, help/harm/fallback counts). openevolve gets
``render_artifacts(record)`` (its prompt shows artifacts as text); the offline proposer reads the
record itself from the run's outcome sidecars (``write_feedback`` / ``read_feedback``, keyed by the
program's source hash like ``efe.rundir.outcomes``), so it never parses the prose back.

Only aggregates live here: pool B rows, series values and forecasts never enter a record.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


FEEDBACK_DIR = "feedback"  # under the run's outcomes directory: one <source hash>.json per evaluated program
STAGE1_PASSED = "passed all gates"


@dataclass(frozen=True)
class Importance:
    """One column's importance on pool A: mean and SD over the scored folds (or permutation repeats)."""

    column: str
    mean: float
    sd: float


@dataclass(frozen=True)
class TabScores:
    """Paired ROC-AUC of the candidate against the identity, and how the fitness was made from it."""

    auc_base: float
    auc_candidate: float
    delta: float
    delta_se: float           # not finite when too few folds were scored ("unknown" in the text)
    n_folds: int              # paired folds scored
    n_planned: int            # folds a fully scored candidate gets (fewer: the cascade stopped it)
    fitness: float
    fitness_offset: float
    auc_weight: float
    confidence_z: float
    delta_lcb: float          # delta - z * SE, the delta the fitness uses
    complexity_penalty: float
    runtime_penalty: float
    runtime_per_fold: float   # program seconds per fold
    pool_a_rows: int
    pool_b_rows: int
    metric: str = "AUC"       # the task's metric: AUC (macro one-vs-rest for several classes) or RMSE
    gain: str = "delta"       # what delta is: the metric's difference, or the relative RMSE reduction


@dataclass(frozen=True)
class TabFeedback:
    scores: TabScores
    new_columns: tuple[str, ...] = ()
    dropped_columns: tuple[str, ...] = ()
    output_column_count: int = 0
    importance_method: str | None = None   # "scorer" or "permutation"; None: no importances computed
    importance: tuple[Importance, ...] = ()  # the largest first, at most ``feedback.max_features``
    importance_more: int = 0                # columns left out of ``importance``
    importance_note: str = ""               # why there are no importances (e.g. pool A too small)
    tree: str | None = None                 # a shallow tree on pool A, as text
    feedback_error: str = ""                # the explanations failed (the scores still stand)

    @property
    def importance_by_column(self) -> dict[str, float]:
        return {i.column: i.mean for i in self.importance}


@dataclass(frozen=True)
class TimeFeedback:
    """Paired MASE of the candidate against the identity over the scored windows."""

    mase_ratio: float         # geometric mean of candidate / identity MASE
    n_windows: int
    total_windows: int
    screened: bool            # scored on one rotation only (no gain there)
    gain: float               # mean log MASE gain
    gain_se: float
    gain_lcb: float
    confidence_z: float
    mase_base: float
    mase_candidate: float
    wql_ratio: float
    mae_ratio: float
    fitness: float
    fitness_offset: float
    mase_weight: float
    harm_penalty: float
    complexity_penalty: float
    helped: int               # windows the program helped / harmed / fell back to the identity on
    harmed: int
    fallback: int
    errors: dict[str, int] = field(default_factory=dict)  # program error type -> windows
    runtime_s: float = 0.0

    @property
    def help_rate(self) -> float:
        return self.helped / self.n_windows if self.n_windows else 0.0

    @property
    def harm_rate(self) -> float:
        return self.harmed / self.n_windows if self.n_windows else 0.0


@dataclass(frozen=True)
class FeedbackRecord:
    """What the evaluator says about one program (``tab``/``time`` hold the scores of a scored one)."""

    setting: str
    verdict: str = "valid"    # "valid" or "invalid (<kind>)", e.g. "invalid (gate:round_trip)"
    reason: str = ""          # why it is invalid, in one line
    stage: str = ""           # where it stopped: stage1 (gates), stage2 (scoring), internal
    program_output: str = ""  # the tail of what the program printed
    tab: TabFeedback | None = None
    time: TimeFeedback | None = None

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeedbackRecord":
        tab = data.get("tab")
        if tab is not None:
            tab = TabFeedback(**{**tab, "scores": TabScores(**tab["scores"]),
                                 "new_columns": tuple(tab.get("new_columns") or ()),
                                 "dropped_columns": tuple(tab.get("dropped_columns") or ()),
                                 "importance": tuple(Importance(**i) for i in tab.get("importance") or ())})
        time_ = data.get("time")
        if time_ is not None:
            time_ = TimeFeedback(**time_)
        return cls(**{**data, "tab": tab, "time": time_})


def failure_record(setting: str, kind: str, reason: str, stage: str, program_output: str = "") -> FeedbackRecord:
    return FeedbackRecord(setting, f"invalid ({kind})", reason, stage, program_output)


# --------------------------------------------------------------------------- rendering


def render_artifacts(record: FeedbackRecord) -> dict[str, str]:
    """The record as openevolve's artifacts: the text the next prompt shows, section by section."""
    if not record.valid:
        out = {"verdict": record.verdict, "reason": record.reason, "failure_stage": record.stage}
    elif record.tab is not None:
        out = _tab_sections(record.tab)
    elif record.time is not None:
        out = _time_sections(record.time)
    else:
        out = {"stage1": STAGE1_PASSED}
    if record.program_output:
        out["program_output"] = record.program_output
    return out


def _tab_sections(fb: TabFeedback) -> dict[str, str]:
    s = fb.scores
    slow = (f"; program runtime {s.runtime_per_fold:.0f}s per fold is penalised {s.runtime_penalty:.2f}"
            if s.runtime_penalty else "")
    stopped = ("" if s.n_folds >= s.n_planned else
               f"; stopped after {s.n_folds} of {s.n_planned} folds: even an optimistic reading of these folds "
               "could not beat the best program so far")
    se_text = f"{s.delta_se:.4f}" if math.isfinite(s.delta_se) else "unknown"
    scores = (f"{s.metric} baseline {s.auc_base:.4f}, candidate {s.auc_candidate:.4f}, "
              f"{s.gain} {s.delta:+.4f} (standard error {se_text}, {s.n_folds} paired folds); "
              f"fitness {s.fitness:.4f} = {s.fitness_offset} + {s.auc_weight}*(delta - "
              f"{s.confidence_z}*SE = {s.delta_lcb:+.4f}) "
              f"- complexity {s.complexity_penalty:.4f} - runtime {s.runtime_penalty:.2f}; "
              f"per fold: pool A {s.pool_a_rows} rows, pool B {s.pool_b_rows} "
              f"rows{stopped}{slow}")
    out = {
        "verdict": "valid",
        "scores": scores,
        "new_columns": ", ".join(fb.new_columns) or "(none)",
        "dropped_columns": ", ".join(fb.dropped_columns) or "(none)",
        "output_column_count": str(fb.output_column_count),
    }
    if fb.feedback_error:
        out["feedback_error"] = fb.feedback_error
    elif fb.importance_method is not None:
        key = "importance_pool_a" if fb.importance_method == "scorer" else "permutation_importance_pool_a"
        out[key] = render_importance(fb)
        if fb.tree is not None:
            out["tree_pool_a"] = fb.tree
    return out


def render_importance(fb: TabFeedback) -> str:
    """One line per column, largest first: ``name: +mean ± sd``."""
    if fb.importance_note:
        return fb.importance_note
    lines = [f"{i.column}: {i.mean:+.4f} ± {i.sd:.4f}" for i in fb.importance]
    if fb.importance_more:
        lines.append(f"... {fb.importance_more} more columns")
    return "\n".join(lines)


def _time_sections(fb: TimeFeedback) -> dict[str, str]:
    errors = ", ".join(f"{k}: {v}" for k, v in fb.errors.items()) or "none"
    n = fb.n_windows
    scope = (f"screened on {n} of {fb.total_windows} windows (no gain there, so not scored further)"
             if fb.screened else f"all {n} windows")
    return {
        "verdict": "valid",
        "scores": (f"MASE ratio {fb.mase_ratio:.4f} (geometric mean over {scope}); gain "
                   f"{fb.gain:+.4f} ± {fb.gain_se:.4f} SE in log MASE, lower bound {fb.gain_lcb:+.4f} at "
                   f"z={fb.confidence_z:g}; mean MASE identity {fb.mase_base:.4f}, candidate {fb.mase_candidate:.4f}; "
                   f"WQL ratio {fb.wql_ratio:.4f}; MAE ratio {fb.mae_ratio:.4f}; fitness {fb.fitness:.4f} = "
                   f"{fb.fitness_offset} + {fb.mase_weight}*(1 - exp(-lower bound)) - harm "
                   f"{fb.harm_penalty:.4f} - complexity {fb.complexity_penalty:.4f}"),
        "series": (f"{n} forecast windows: helped {fb.helped}, harmed {fb.harmed}, fell back to "
                   f"identity {fb.fallback} (program errors: {errors})"),
        "timing": f"program + forecaster {fb.runtime_s:.1f}s",
    }
