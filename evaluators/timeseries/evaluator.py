"""EFE-Time evaluation of one program: stage-1 gates, then forecasting through the program.

Stage 2 makes two sandbox round trips around the trusted forecaster: (1) fit + transform each
history, (2) inverse-transform each forecast quantile. A series whose program call fails
falls back to the identity (the baseline forecast) and counts as harmed. Artifacts are
aggregate only: ratios, rates, counts, timing; never series values or forecasts.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Mapping

import numpy as np

from efe.core.contracts import EVOLVE_END, EVOLVE_START
from efe.datasets.ts_store import read_series
from efe.core.feedback_record import FeedbackRecord, TimeFeedback
from efe.sandbox import Sandbox, SandboxFailure, Step
from efe.sandbox import plan as step
from efe.core.specs import TimeSpec, time_spec
from evaluators.base import Evaluator
from evaluators.outcome import Outcome
from evaluators.timeseries import gates
from evaluators.timeseries.fitness import gain_bound, time_fitness
from evaluators.timeseries.forecasters import make_forecaster
from evaluators.timeseries.pipeline import (
    Forecasts,
    forecast_through,
    log_gains,
    paired_gain,
    score_forecasts,
)
from evaluators.timeseries.windows import (
    Instance,
    cut_windows,
    history_meta,
    rotation_for,
    rotation_groups,
    seasonal_continuation,
    windows_per_series,
)

log = logging.getLogger(__name__)


_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?:e[-+]?\d+)?|(?<![\w.])[-+]?\d{4,}(?![\w.])")


def _without_numbers(reason: str) -> str:
    """Program error messages can quote series values; the LLM gets the error without them."""
    return _NUMBER.sub("<value>", reason)


def _probe(y: np.ndarray, horizon: int) -> np.ndarray:
    """Later values well outside the history's range: a transform that looks ahead changes."""
    finite = y[np.isfinite(y)]
    if len(finite) == 0:
        return np.ones(horizon)
    span = float(np.ptp(finite)) + abs(float(finite[-1])) * 0.1 + 1.0
    return float(np.max(finite)) + span * np.linspace(0.5, 1.5, horizon)


def _merge_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in {**a, **b}}


def block_lines(source: str) -> int:
    start, end = source.find(EVOLVE_START), source.find(EVOLVE_END)
    block = source[start:end] if 0 <= start < end else source
    return sum(1 for line in block.splitlines() if line.strip() and not line.strip().startswith("#"))


class TimeEvaluator(Evaluator):
    setting = "time"

    def __init__(self, spec: TimeSpec | Mapping[str, Any], sandbox: Sandbox | None = None) -> None:
        self.spec = spec = time_spec(spec)
        self.seed = spec.seed
        self.horizon = spec.prediction_length
        self.season = spec.season
        self.levels = [float(q) for q in spec.quantile_levels]
        if 0.5 not in self.levels:
            self.levels = sorted(self.levels + [0.5])
        self.median_index = self.levels.index(0.5)
        w = spec.windows
        series = read_series(spec.train_path)
        self.stride = w.stride or self.horizon
        # many series: fewer windows each (at least 2), the same windows for every program
        n_windows = windows_per_series(w.n_windows, w.max_total, len(series))
        self.instances = cut_windows(series, self.horizon, n_windows, w.min_history, self.stride, w.end_offset)
        if not self.instances:
            raise ValueError("no validation window fits in the training part: series are too short for "
                             f"{w.n_windows} windows of {self.horizon} steps")
        self.groups = rotation_groups(self.instances, w.n_rotations, self.seed, w.min_instances_per_rotation)
        self.gate_series = spec.gate.sample_series
        self.round_trip_rtol = spec.gate.round_trip_rtol
        self.widen = spec.gate.widen
        self.harm_tolerance = spec.fitness.harm_tolerance
        self.fitness = spec.fitness
        self.forecaster = make_forecaster(spec.forecaster)
        self.limits = spec.sandbox
        self.sandbox = sandbox or Sandbox(self.limits)
        self._metas = [history_meta(i.history, self.horizon, self.season) for i in self.instances]
        # The identity's forecasts, computed once: per instance, or per (batch, instance) for a global
        # forecaster (one model across the batch), whose forecast of a window depends on the batch.
        self._global = bool(getattr(self.forecaster, "global_model", False))
        self._base_q: dict[Any, np.ndarray] = {}

    @property
    def n_rotations(self) -> int:
        return len(self.groups)

    # ------------------------------------------------------------------ public
    def stage1(self, source: str) -> Outcome:
        rotation = rotation_for(source, len(self.groups))
        members = self.groups[rotation][: self.gate_series]
        values: dict[str, Any] = {}
        plan: list[Step] = []
        for k, idx in enumerate(members):
            inst = self.instances[idx]
            ext = np.concatenate([inst.history, seasonal_continuation(inst.history, self.horizon, self.season)])
            values.update({f"y{k}": inst.history, f"m{k}": self._metas[idx], f"x{k}": ext,
                           f"p{k}": np.concatenate([inst.history, _probe(inst.history, self.horizon)])})
            plan += [
                step.fit(f"y{k}", f"m{k}", f"s{k}"),
                step.digest(f"s{k}", out=f"s{k}_fit"),  # the fitted state's fingerprint, before any transform
                step.transform(f"y{k}", f"s{k}", f"z{k}"),
                step.transform(f"x{k}", f"s{k}", f"zx{k}"),
                step.transform(f"p{k}", f"s{k}", f"zp{k}"),
            ]
        returns = [n for k in range(len(members))
                   for n in (f"s{k}", f"s{k}_fit", f"z{k}", f"zx{k}", f"zp{k}", f"y{k}", f"x{k}")]
        first = self.sandbox.run(source, "time", plan, returns, values=values, seed=self.seed, limits=self.limits)
        if isinstance(first, SandboxFailure):
            return self._failed("stage1", first.kind, _without_numbers(first.reason), rotation)
        out = first.outputs
        second_values: dict[str, Any] = {}
        second_plan: list[Step] = []
        try:
            for k, idx in enumerate(members):
                inst = self.instances[idx]
                what = f"history {k + 1}"
                gates.check_unchanged(inst.history, out[f"y{k}"], "fit or transform", "its input")
                gates.check_state(out[f"s{k}"], len(inst.history))
                z = gates.check_forward(inst.history, out[f"z{k}"], what)
                ext = values[f"x{k}"]
                zx = gates.check_forward(ext, out[f"zx{k}"], f"{what} extended by a horizon")
                gates.check_lookahead(z, zx[: len(z)])
                probe = values[f"p{k}"]
                zp = gates.check_forward(probe, out[f"zp{k}"], f"{what} extended beyond its range")
                gates.check_lookahead(z, zp[: len(z)])
                finite = z[np.isfinite(z)]
                lo, hi = float(finite.min()), float(finite.max())
                span = max(hi - lo, 1e-9 * max(abs(lo), abs(hi), 1.0))
                widened = {
                    f"rt{k}": zx[len(inst.history):],
                    f"w{k}_1": np.array([hi + self.widen * span]),
                    f"w{k}_h": np.linspace(lo - self.widen * span, hi + self.widen * span, self.horizon),
                    f"w{k}_3h": np.linspace(hi + self.widen * span, lo - self.widen * span, 3 * self.horizon),
                }
                second_values.update(widened)
                second_values[f"s{k}"] = out[f"s{k}"]
                for name in widened:
                    second_plan.append(step.inverse_transform(name, f"s{k}", "r_" + name))
                second_plan.append(step.digest(f"s{k}", out=f"s{k}_after"))
        except gates.GateFailure as exc:
            return self._failed("stage1", f"gate:{exc.gate}", exc.reason, rotation)
        second = self.sandbox.run(source, "time", second_plan,
                                  [s.out for s in second_plan] + list(second_values),
                                  values=second_values, seed=self.seed, limits=self.limits)
        if isinstance(second, SandboxFailure):
            return self._failed("stage1", second.kind, _without_numbers(second.reason), rotation)
        try:
            for k, idx in enumerate(members):
                inst = self.instances[idx]
                rt = gates.check_inverse(second.outputs[f"r_rt{k}"], self.horizon, "the forecast horizon")
                gates.check_round_trip(seasonal_continuation(inst.history, self.horizon, self.season), rt,
                                       self.round_trip_rtol)
                for suffix, n in (("1", 1), ("h", self.horizon), ("3h", 3 * self.horizon)):
                    gates.check_inverse(second.outputs[f"r_w{k}_{suffix}"], n,
                                        f"a {n}-step forecast {int(self.widen * 100)}% beyond the history's range")
                gates.check_unchanged(out[f"s{k}_fit"], second.outputs[f"s{k}_after"], "transform or inverse_transform",
                                      "the fitted state")
                gates.check_unchanged(second_values[f"w{k}_h"], second.outputs[f"w{k}_h"], "inverse_transform", "its input")
        except gates.GateFailure as exc:
            return self._failed("stage1", f"gate:{exc.gate}", exc.reason, rotation)
        metrics = self._metrics(True, self.fitness.offset, rotation)
        return Outcome(metrics, {}, "valid", "", "stage1", feedback=FeedbackRecord("time", stage="stage1"))

    def stage2(self, source: str, handoff: Any = None, *, rotation: int | None = None, full: bool = False) -> Outcome:
        """Score on the rotation's windows; if the program looks promising there (or ``full``), on all of them.

        ``handoff`` is unused: this stage 1 hands nothing on (its gates run on other inputs than the scoring).

        Fitness comes from the paired gain over the scored windows: mean log MASE ratio against the
        identity, and its lower confidence bound.
        """
        return self._stage2(source, rotation, full)[0]

    def score_by_series(self, source: str) -> tuple[Outcome, dict[str, float]]:
        """All windows scored, plus each series' mean log MASE gain over its windows (empty when invalid).

        Final selection uses it for its per-series do-no-harm rule: a program that helps on average
        may still hurt one series.
        """
        outcome, gains, items = self.score_windows(source)
        return outcome, {k: float(np.mean([g for g, it in zip(gains, items) if it == k])) for k in dict.fromkeys(items)}

    def score_windows(self, source: str) -> tuple[Outcome, np.ndarray, list[str]]:
        """All windows scored: the outcome, each window's log MASE gain and its series (empty when invalid)."""
        outcome, members, gains = self._stage2(source, None, True)
        return outcome, gains, [self.instances[i].item_id for i in members]

    def _stage2(self, source: str, rotation: int | None, full: bool) -> tuple[Outcome, list[int], np.ndarray]:
        rotation = rotation_for(source, len(self.groups)) if rotation is None else int(rotation)
        start = time.perf_counter()
        members = list(self.groups[rotation])
        none = np.zeros(0)
        first = self._forecast_members(source, members)
        if isinstance(first, SandboxFailure):
            return self._failed("stage2", first.kind, first.reason, rotation), [], none
        scored, base = first
        gains = log_gains(*self._per_instance(members, scored, base))
        rest = [i for i in range(len(self.instances)) if i not in set(members)]
        screened = bool(rest) and not full and float(np.mean(gains)) <= 0.0
        if rest and not screened:
            second = self._forecast_members(source, rest)
            if isinstance(second, SandboxFailure):
                return self._failed("stage2", second.kind, second.reason, rotation), [], none
            more, more_base = second
            members, scored = members + rest, Forecasts(scored.quantiles + more.quantiles,
                                                        np.concatenate([scored.fallback, more.fallback]),
                                                        _merge_counts(scored.errors, more.errors))
            base = base + more_base
        runtime = time.perf_counter() - start
        per_c, per_b = self._per_instance(members, scored, base)
        return (self._valid_outcome(source, rotation, members, scored, base, screened, runtime, per_c, per_b),
                members, log_gains(per_c, per_b))

    def _valid_outcome(self, source: str, rotation: int, members: list[int], run: Forecasts,
                       base_q: list[np.ndarray], screened: bool, runtime: float, per_c: np.ndarray,
                       per_b: np.ndarray) -> Outcome:
        gain, se = paired_gain(log_gains(per_c, per_b), self.horizon / self.stride)
        insts = [self.instances[i] for i in members]
        base, scores = self._scores(insts, base_q), self._scores(insts, run.quantiles)
        harmed = (per_c > per_b * (1 + self.harm_tolerance)) | run.fallback
        helped = (per_c < per_b * (1 - self.harm_tolerance)) & ~run.fallback
        n = len(members)
        fit = time_fitness(gain, se, float(run.fallback.mean()), float(harmed.mean()), float(helped.mean()),
                           block_lines(source), self.fitness)
        bound = gain_bound(gain, se, self.fitness.confidence_z)
        metrics = self._metrics(True, fit.score, rotation)
        metrics.update({
            "mase_ratio": float(np.exp(-gain)), "gain": gain, "gain_se": se, "gain_lcb": bound,
            "n_windows": float(n), "windows_fraction": n / len(self.instances),
            "wql_ratio": float(scores["wql"] / base["wql"]) if base["wql"] > 0 else 1.0,
            "mae_ratio": float(scores["mae"] / base["mae"]) if base["mae"] > 0 else 1.0,
            "mase_base": float(base["mase"]), "mase_candidate": float(scores["mase"]),
            "help_rate": float(helped.mean()), "harm_rate": float(harmed.mean()),
            "fallback_rate": float(run.fallback.mean()), "eval_seconds": float(runtime),
        })
        record = FeedbackRecord("time", "valid", "", "stage2", time=TimeFeedback(
            mase_ratio=metrics["mase_ratio"], n_windows=n, total_windows=len(self.instances), screened=screened,
            gain=float(gain), gain_se=float(se), gain_lcb=float(bound), confidence_z=self.fitness.confidence_z,
            mase_base=float(base["mase"]), mase_candidate=float(scores["mase"]), wql_ratio=metrics["wql_ratio"],
            mae_ratio=metrics["mae_ratio"], fitness=float(fit.score), fitness_offset=self.fitness.offset,
            mase_weight=self.fitness.mase_weight, harm_penalty=float(fit.harm_penalty),
            complexity_penalty=float(fit.complexity_penalty), helped=int(helped.sum()), harmed=int(harmed.sum()),
            fallback=int(run.fallback.sum()), errors={str(k): int(v) for k, v in run.errors.items()},
            runtime_s=float(runtime)))
        return Outcome(metrics, {}, "valid", "", "stage2", runtime_s=runtime, feedback=record)

    # ------------------------------------------------------------------ forecasting
    def forecast_through(self, source: str, instances: list[Instance], metas: list[dict]) -> Forecasts | SandboxFailure:
        return forecast_through(self.sandbox, self.limits, source, instances, metas, self.forecaster,
                                self.horizon, self.season, self.levels, self.seed)

    def _forecast_members(self, source: str,
                          members: list[int]) -> tuple[Forecasts, list[np.ndarray]] | SandboxFailure:
        """The program's forecasts on these instances (the identity's where it fell back), and the identity's."""
        run = self.forecast_through(source, [self.instances[i] for i in members], [self._metas[i] for i in members])
        if isinstance(run, SandboxFailure):
            return run
        base = self.baseline(members)
        run.quantiles = [q if not fb else b for q, fb, b in zip(run.quantiles, run.fallback, base)]
        return run, base

    def baseline(self, members: list[int]) -> list[np.ndarray]:
        """The identity's forecasts of these instances, computed once: every program is compared on the same windows.

        A global forecaster fits one model across the batch, so its forecast of a window depends on the
        other windows in the batch; its identity forecasts are kept per batch, and a program's forecasts
        are always compared with the identity's from the very same batch (the identity then gains exactly 0).
        """
        batch = tuple(members) if self._global else None

        def key(i: int) -> Any:
            return (batch, i) if self._global else i

        todo = [i for i in members if key(i) not in self._base_q]
        if todo:
            q = self.forecaster.forecast([self.instances[i].history for i in todo], self.horizon, self.season,
                                         self.levels)
            self._base_q.update({key(i): q[j] for j, i in enumerate(todo)})
        return [self._base_q[key(i)] for i in members]

    def _per_instance(self, members: list[int], run: Forecasts,
                      base: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        insts = [self.instances[i] for i in members]
        return self._scores(insts, run.quantiles)["per_instance"], self._scores(insts, base)["per_instance"]

    def _scores(self, insts: list[Instance], quantiles: list[np.ndarray]) -> dict:
        return score_forecasts(insts, quantiles, self.levels, self.season)

    # ------------------------------------------------------------------ helpers
    def _metrics(self, valid: bool, score: float, rotation: int) -> dict[str, float]:
        """Every metric key (openevolve needs each one on every result, failures included)."""
        return {"combined_score": float(score), "valid": 1.0 if valid else 0.0, "mase_ratio": 1.0,
                "gain": 0.0, "gain_se": 0.0, "gain_lcb": 0.0, "n_windows": 0.0, "windows_fraction": 0.0,
                "wql_ratio": 1.0, "mae_ratio": 1.0, "mase_base": 0.0, "mase_candidate": 0.0,
                "help_rate": 0.0, "harm_rate": 0.0, "fallback_rate": 0.0, "eval_seconds": 0.0,
                "rotation": float(rotation)}

    def _failed(self, stage: str, kind: str, reason: str, rotation: int) -> Outcome:
        return self.failure(self._metrics(False, self.fitness.invalid_score, rotation), stage, kind, reason)

    def invalid_metrics(self, source: str) -> dict[str, float]:
        return self._metrics(False, self.fitness.invalid_score, rotation_for(source, len(self.groups)))
