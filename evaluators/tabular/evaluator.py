"""EFE-Tab evaluation of one program source: stage-1 gates, then stage-2 scoring.

Holds the heavy state (training data, paired folds, cached baselines, the sandbox worker)
so that openevolve's thin evaluator file can be re-executed for every program cheaply.
Every outcome, including failures, carries ``combined_score`` and every MAP-Elites axis.

Lean by design (``scripts/bench_eval.py`` profiles it): data is sent to the sandbox worker once
per sample or fold set and referenced afterwards; one sandbox call runs the gate plan and the
program on the cascade's first folds (stage 1 judges the gates and hands those fold outputs on as
``FirstFolds``; stage 2 scores them), a second one the remaining folds when the cascade goes on;
feedback reuses the importances of the scorer fits the scoring already made.

Configuration is the run spec's own parts (``spec.gate``, ``spec.fitness``, ``spec.feedback``,
``spec.sandbox``), taken as they are.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

from efe.core import plain
from efe.datasets.split import read_train
from efe.core.feedback_record import FeedbackRecord, TabFeedback, TabScores
from efe.sandbox import Sandbox, SandboxFailure, SandboxResult, Step
from efe.sandbox import plan as step
from efe.core.specs import FeedbackSpec, SandboxSpec, TabSpec, tab_spec
from evaluators.base import Evaluator
from evaluators.outcome import Outcome
from evaluators.tabular import feedback, gates
from evaluators.tabular.cascade import SharedBest
from evaluators.tabular.costs import CostClock
from evaluators.tabular.fitness import paired_tab_fitness
from evaluators.tabular.pools import (
    FoldPlan,
    SelectionPlan,
    paired_estimate,
)
from evaluators.tabular.preprocess import RawColumns
from evaluators.tabular.sampling import scoring_rows, search_and_pool
from evaluators.tabular.scorers import auc, auc_explained, make_scorer
from efe.core.task import gain, metric_name

log = logging.getLogger(__name__)

AXES = ("generated_feature_count", "dropped_feature_count")


@dataclass
class Scored:
    """Per-fold results of one program on some folds of a plan."""

    deltas: list[float] = field(default_factory=list)
    auc_base: list[float] = field(default_factory=list)
    auc_candidate: list[float] = field(default_factory=list)
    n_b: list[int] = field(default_factory=list)
    runtime_s: float = 0.0
    new: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    first_fold: tuple | None = None  # (TA, yA) of the first scored fold, for pool-A feedback
    first_raw: RawColumns | None = None  # that fold's raw pools in scorer input
    importances: list[np.ndarray] = field(default_factory=list)  # the scorer's own, per fold (pool A)
    stdout: str = ""

    @property
    def n_changed(self) -> int:
        return len(self.new) + len(self.dropped)

    @property
    def runtime_per_fold(self) -> float:
        return self.runtime_s / max(len(self.deltas), 1)

    def extend(self, other: "Scored") -> None:
        for name in ("deltas", "auc_base", "auc_candidate", "n_b", "importances"):
            getattr(self, name).extend(getattr(other, name))
        self.runtime_s += other.runtime_s
        self.stdout = self.stdout or other.stdout


@dataclass(frozen=True)
class FirstFolds:
    """What a passed stage 1 hands to stage 2 (``Outcome.handoff``): the program's run on the cascade's
    first folds (made in the gates' sandbox call) and the first fold's outputs the gates already checked."""

    source: str
    result: SandboxResult
    checked: dict[int, tuple[pd.DataFrame, pd.DataFrame]]


def limit_threads(n: Any) -> None:
    """BLAS/OpenMP threads of this process: parallel evaluations already use every core."""
    if n:
        threadpool_limits(int(n))


def _failure_of(error: dict) -> SandboxFailure:
    """A step that failed inside a sandbox call (``keep_going``), as the failure a whole call reports."""
    detail = {k: error[k] for k in ("op", "exception", "source_line") if k in error}
    kind = error.get("kind") if error.get("kind") in SandboxFailure.KINDS else "exception"
    return SandboxFailure(kind, str(error.get("message", "")), error.get("line"), detail)


class TabEvaluator(Evaluator):
    setting = "tab"

    def __init__(self, spec: TabSpec | Mapping[str, Any], sandbox: Sandbox | None = None) -> None:
        self.spec = spec = tab_spec(spec)
        self.seed = spec.seed
        self.target = spec.target
        X, y = read_train(spec.train_path, self.target)
        carve = spec.selection_pool  # rows kept for the final selection: never scored by the search
        kept, self.search_rows, self.selection_rows = search_and_pool(
            y, spec.scoring.max_rows, carve.fraction, carve.max_rows, self.seed, carve.seed)
        self.X, self.y = (X, y) if len(kept) == len(y) else (X.iloc[kept].copy(), y.iloc[kept].copy())
        limit_threads(spec.scoring.threads)
        pools = spec.pools
        self.folds = FoldPlan(self.X.iloc[self.search_rows], self.y.iloc[self.search_rows],
                              pools.n_folds, pools.n_repeats, self.seed)
        self._fresh: dict[tuple, FoldPlan] = {}
        self.cascade_first = pools.cascade_folds
        self.cascade_optimism_z = pools.cascade_optimism_z
        self.best = SharedBest(Path(spec.run_dir) / "cascade_best.json" if spec.run_dir else None)
        self.gate_rows = spec.gate.sample_rows
        self.gate_parts = spec.gate.n_partitions
        self.label_free_state = spec.gate.label_free_state
        self.fitness = spec.fitness
        self.task = spec.task
        self.scorer = make_scorer(spec.scorer, self.seed, spec.task)
        self.limits = spec.sandbox
        self.output_chars = spec.feedback.output_chars
        self.sandbox = sandbox or Sandbox(self.limits)
        self._baselines: dict[tuple, float] = {}
        self._raw: dict[tuple, RawColumns] = {}  # per fold: the raw pools in scorer input, shared by programs
        self._original = list(self.X.columns)
        self.clock = CostClock()
        self._gate: dict[str, Any] | None = None

    # ------------------------------------------------------------------ public
    def stage1(self, source: str) -> Outcome:
        """Gates: validity, mutation, batch and index leakage, judged on the first fold's own run.

        One sandbox call fits the program on the first fold's pool A, transforms its pools A and B,
        and transforms parts of a small sample of pool A with that same state (one part re-indexed);
        then it runs the cascade's other first folds (steps allowed to fail without stopping the
        gates). A valid outcome hands those fold outputs on (``handoff``: ``FirstFolds``) for stage 2 to score.
        """
        first = self._cascade_folds()[0]
        gate = self._gate_data()
        ops, returns = self._fold_steps(first)
        fit0, (ta0, tb0), rest = ops[0], ops[1:3], ops[3:]
        plan = [fit0, gate["after_fit"], ta0, tb0, *gate["plan"], *rest]
        key = self._fold_data(self.folds, "search", first, with_gate=True)
        limits = self._limits_for(len(first) + 1)
        result = self._run(source, plan, [*gate["returns"], *returns], data=key, limits=limits,
                           gate_steps=gate["steps"])
        if isinstance(result, SandboxFailure):
            return self._failed("stage1", result.kind, result.reason, stdout=result.detail.get("stdout"))
        failed = self._fold_failure(result, 0, "stage1") or self._gate_step_failure(result, gate)
        if failed is not None:
            return failed
        try:
            with self.clock.part("gates"):
                checked = self._judge_gates(result.outputs, gate)
        except gates.GateFailure as exc:
            return self._failed("stage1", f"gate:{exc.gate}", exc.reason, stdout=result.stdout)
        new, dropped = self._column_changes(checked[0])
        metrics = self._metrics(valid=True, score=self.fitness.offset, new=len(new), dropped=len(dropped))
        return Outcome(metrics, {}, "valid", "", "stage1", {"new": new, "dropped": dropped},
                       feedback=FeedbackRecord("tab", stage="stage1"),
                       handoff=FirstFolds(source, result, {0: checked}))

    def _gate_data(self) -> dict[str, Any]:
        """The gate's sample of the first fold's pool A in parts (the last re-indexed), and its plan steps (built once).

        A part's output must equal the same rows of the whole pool A's output (batch independence);
        the re-indexed part's, position by position (index invariance). "Was it changed?" checks
        get fingerprints (``plain.digest``) back, never copies of the inputs.
        """
        if self._gate is None:
            X, _ = self.folds.gate_sample(self.gate_rows)
            _, yA = self.folds.pool_a(0)
            rng = np.random.default_rng(self.seed)
            n_parts = max(self.gate_parts, 2)  # one part is re-indexed: at least one keeps its index
            labels = rng.permutation(len(X)) % n_parts  # every part gets rows (a fold plan allows 10+)
            parts = {f"X_part{k}": X[labels == k] for k in range(n_parts) if (labels == k).any()}
            last = list(parts)[-1]
            original_index = parts[last].index
            reindexed = parts.pop(last).copy()
            limits = self.spec.gate
            reindexed.index = pd.Index(rng.permutation(len(reindexed)) * limits.reindex_stride + limits.reindex_offset,
                                       name=X.index.name)
            values = {"X_reindexed": reindexed, **parts}
            inputs = ["XA0", "XB0", *values]
            plan = [step.transform(name, "state0", "T_" + name, keep_going=True) for name in values]
            plan.append(step.digest(*inputs, "state0", out="after_transform", keep_going=True))
            returns = ["after_fit", "after_transform", *("T_" + name for name in values)]
            if self.label_free_state:  # LLM-FE-style searches: fit may not learn from the labels
                values["yA0_permuted"] = pd.Series(rng.permutation(yA.to_numpy()), index=yA.index, name=yA.name)
                plan += [step.fit("XA0", "yA0_permuted", "state_permuted", keep_going=True),
                         step.digest("state_permuted", out="state_permuted", keep_going=True)]
                returns.append("state_permuted")
            raw = self._raw_columns(self.folds, 0).pools  # the first fold's pools as the worker holds them
            seen = {"XA0": raw["A"], "XB0": raw["B"], **plain.roundtrip({"yA0": yA, **values})}
            self._gate = {
                "parts": parts, "reindexed": reindexed, "reindexed_from": original_index, "values": values,
                "after_fit": step.digest("XA0", "yA0", "state0", out="after_fit", keep_going=True),
                "plan": plan, "returns": returns, "inputs": inputs,
                "steps": ("after_fit", *(s.out for s in plan)),  # every gate step's output, in plan order
                "pristine": {name: plain.digest(seen[name]) for name in ["yA0", *inputs]},
            }
        return self._gate

    def _gate_step_failure(self, result: Any, gate: dict[str, Any]) -> Outcome | None:
        """A gate step that failed (an exception on a part of pool A, or an unencodable value), as the outcome."""
        for name in gate["steps"]:
            error = result.errors.get(name)
            if error is not None:
                failure = _failure_of(error)
                return self._failed("stage1", failure.kind, failure.reason, stdout=result.stdout)
        return None

    def _judge_gates(self, out: dict, gate: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every stage-1 rule on what the sandbox returned; the first fold's checked outputs, or GateFailure."""
        pristine, inputs, parts, limits = gate["pristine"], gate["inputs"], gate["parts"], self.spec.gate
        x_fit, y_fit, state_fit = out["after_fit"]
        gates.check_unmutated({"X": pristine["XA0"], "y": pristine["yA0"]}, {"X": x_fit, "y": y_fit}, "fit")
        *inputs_after, state_after = out["after_transform"]
        gates.check_unmutated({name: pristine[name] for name in inputs}, dict(zip(inputs, inputs_after)), "transform")
        XA, _ = self.folds.pool_a(0)
        XB, _ = self.folds.pool_b(0)
        TA = gates.check_output("pool A", XA, out.get("TA0"), limits)
        TB = gates.check_output("the scoring pool", XB, out.get("TB0"), limits)
        for name, part in parts.items():
            gates.check_output("a subset of the rows", part, out.get("T_" + name), limits)
        T_re = gates.check_output("the re-indexed sample", gate["reindexed"], out.get("T_X_reindexed"), limits)
        gates.check_state_unchanged(state_fit, state_after)
        if self.label_free_state and state_fit != out.get("state_permuted", [None])[0]:
            raise gates.GateFailure("label_dependent_state",
                                    "this search evolves stateless feature functions: fit must not learn "
                                    "from the labels y (no target encodings or label statistics)")
        rows = pd.Index(np.concatenate([part.index.to_numpy() for part in parts.values()]))
        gates.check_batch_independence(TA.loc[rows.sort_values()], [out["T_" + n] for n in parts], limits)
        gates.check_index_invariance(TA.loc[gate["reindexed_from"]], T_re, limits)
        return TA, TB

    def stage2(self, source: str, first_folds: FirstFolds | None = None) -> Outcome:
        """Paired scoring on the search folds, with a cascade.

        The first ``cascade.first_folds`` folds are scored; if even the optimistic bound
        (mean + ``cascade.optimism_z``·SE) cannot beat the best fully scored fitness of the run so
        far, the candidate stops there, scored by the lower bound of what it has. Otherwise it gets
        all folds. Either way the outcome carries every metric.

        ``first_folds``: what this program's stage 1 handed on (its run on the first folds); without it
        (or for another source) those folds are run here.
        """
        first, rest = self._cascade_folds()
        started = time.time()
        if first_folds is not None and first_folds.source == source:  # stage 1 already ran these folds
            scored = self._score_outputs(self.folds, first_folds.result, first, checked=first_folds.checked)
        else:
            scored = self._score_folds(self.folds, "search", source, first)
        if isinstance(scored, Outcome):
            return scored
        if rest:
            optimistic = paired_tab_fitness(*self._estimate(self.folds, scored.deltas), scored.n_changed,
                                            int(np.mean(scored.n_b)), scored.runtime_per_fold, self.fitness,
                                            z=-self.cascade_optimism_z)
            best = self.best.read()
            if best is None or optimistic.score > best:
                more = self._score_folds(self.folds, "search", source, rest)
                if isinstance(more, Outcome):
                    return more
                scored.extend(more)
        outcome = self._outcome(self.folds, scored, self.folds.n_folds, time.time() - started)
        if outcome.metrics["full_scoring"] == 1.0:
            self.best.offer(outcome.metrics["combined_score"])
        return outcome

    def score_fresh(self, source: str, n_folds: int, n_repeats: int, seed: int) -> Outcome:
        """Final selection: all folds validating on the selection pool (no cascade, no feedback).

        Without a selection pool (``selection.pool_fraction`` 0), fresh folds of all training rows.
        """
        plan = self._fresh.get((n_folds, n_repeats, seed))
        if plan is None:
            plan = (SelectionPlan(self.X, self.y, self.search_rows, self.selection_rows, n_folds, n_repeats, seed)
                    if len(self.selection_rows) else FoldPlan(self.X, self.y, n_folds, n_repeats, seed))
            self._fresh[(n_folds, n_repeats, seed)] = plan
        started = time.time()
        scored = self._score_folds(plan, f"fresh{seed}", source, list(range(plan.n_folds)))
        if isinstance(scored, Outcome):
            return scored
        return self._outcome(plan, scored, plan.n_folds, time.time() - started, with_feedback=False)

    def baseline(self, plan: FoldPlan, fold: int) -> float:
        """The task's metric (ROC-AUC, or RMSE) of the scorer on raw features (as a program would see them), cached per fold."""
        key = (id(plan), fold)
        if key not in self._baselines:
            _, yA = plan.pool_a(fold)
            _, yB = plan.pool_b(fold)
            raw = self._raw_columns(plan, fold)
            # cached: not on the clock
            self._baselines[key] = auc(self.scorer, raw.pools["A"], yA, raw.pools["B"], yB, raw=raw)
        return self._baselines[key]

    def _raw_columns(self, plan: FoldPlan, fold: int) -> RawColumns:
        """The fold's raw pools as a program sees them (through the plain-data codec), coded for the scorer once."""
        key = (id(plan), fold)
        if key not in self._raw:
            XA, _ = plan.pool_a(fold)
            XB, _ = plan.pool_b(fold)
            self._raw[key] = RawColumns(plain.roundtrip(XA), plain.roundtrip(XB))
        return self._raw[key]

    def invalid_metrics(self, source: str = "") -> dict[str, float]:
        return self._metrics(valid=False, score=self.fitness.invalid_score, new=0, dropped=0)

    # ------------------------------------------------------------------ helpers
    def _cascade_folds(self) -> tuple[list[int], list[int]]:
        """(the folds every valid candidate gets, the folds only promising ones get)."""
        folds = list(range(self.folds.n_folds))
        first = self.cascade_first if self.cascade_first and self.cascade_first < len(folds) else len(folds)
        return folds[:first], folds[first:]

    def _limits_for(self, n_calls: int) -> SandboxSpec:
        """The per-call limits for a sandbox call that makes ``n_calls`` calls' worth of work: the CPU
        limit (one for the whole child process) is scaled; the wall-clock limit is not, since the sandbox
        holds it per step (a hung program is killed ``timeout_s`` after its last step, not n times later)."""
        return dataclasses.replace(self.limits, cpu_s=int(self.limits.cpu_s * n_calls))

    def _fold_data(self, plan: FoldPlan, tag: str, folds: list[int], with_gate: bool = False) -> str:
        """Key of the worker's copy of these folds' pools (sent once): pool A with labels, pool B without."""
        key = f"tab-{tag}-" + "-".join(map(str, folds)) + ("-gate" if with_gate else "")
        if not self.sandbox.has(key):
            values = dict(self._gate_data()["values"]) if with_gate else {}
            for i in folds:
                XA, yA = plan.pool_a(i)
                XB, _ = plan.pool_b(i)  # pool B labels never enter the sandbox
                values.update({f"XA{i}": XA, f"yA{i}": yA, f"XB{i}": XB})
            with self.clock.part("sandbox"):
                self.sandbox.load(key, values)
        return key

    @staticmethod
    def _fold_steps(folds: list[int]) -> tuple[list[Step], list[str]]:
        """Fit on each fold's pool A, transform its A and B with that state; a failing step stops only its fold."""
        ops, returns = [], []
        for i in folds:
            ops += [step.fit(f"XA{i}", f"yA{i}", f"state{i}", keep_going=True),
                    step.transform(f"XA{i}", f"state{i}", f"TA{i}", keep_going=True),
                    step.transform(f"XB{i}", f"state{i}", f"TB{i}", keep_going=True)]
            returns += [f"TA{i}", f"TB{i}"]
        return ops, returns

    def _score_folds(self, plan: FoldPlan, tag: str, source: str, folds: list[int]) -> Scored | Outcome:
        """The program on these folds (one sandbox call), then ROC-AUC on each fold's pool B."""
        key = self._fold_data(plan, tag, folds)
        ops, returns = self._fold_steps(folds)
        result = self._run(source, ops, returns, data=key, limits=self._limits_for(len(folds)))
        if isinstance(result, SandboxFailure):
            return self._failed("stage2", result.kind, result.reason, stdout=result.detail.get("stdout"))
        return self._score_outputs(plan, result, folds)

    def _fold_failure(self, result: Any, fold: int, stage: str) -> Outcome | None:
        """A failed step of this fold as the outcome; a transform's exception message is withheld."""
        error = next((result.errors[n] for n in (f"state{fold}", f"TA{fold}", f"TB{fold}") if n in result.errors), None)
        if error is None:
            return None
        failure = _failure_of(error)
        reason = failure.reason
        if failure.detail.get("op") == "transform" and failure.kind == "exception":
            reason = self._redacted(failure)
        return self._failed(stage, failure.kind, reason, stdout=result.stdout)

    def _score_outputs(self, plan: FoldPlan, result: Any, folds: list[int],
                       checked: dict[int, tuple[pd.DataFrame, pd.DataFrame]] | None = None) -> Scored | Outcome:
        """Check each fold's outputs (unless ``checked`` has them) and score them against the cached baseline."""
        checked = checked or {}
        for i in folds:
            failed = self._fold_failure(result, i, "stage2")
            if failed is not None:
                return failed
        runtime = sum(result.timings.get(n, 0.0) for i in folds for n in (f"state{i}", f"TA{i}", f"TB{i}"))
        scored = Scored(runtime_s=float(runtime), stdout=result.stdout or "")
        for i in folds:
            XA, yA = plan.pool_a(i)
            XB, yB = plan.pool_b(i)
            try:
                with self.clock.part("gates"):
                    TA, TB = checked.get(i) or (
                        gates.check_output("pool A", XA, result.outputs.get(f"TA{i}"), self.spec.gate),
                        gates.check_output("the scoring pool", XB, result.outputs.get(f"TB{i}"), self.spec.gate))
                    if list(TA.columns) != list(TB.columns):
                        raise gates.GateFailure("schema_mismatch", "transform produced different columns for the "
                                                                   "fitting pool and the scoring pool")
            except gates.GateFailure as exc:
                return self._failed("stage2", f"gate:{exc.gate}", exc.reason, stdout=result.stdout)
            base = self.baseline(plan, i)
            raw = self._raw_columns(plan, i)
            try:
                auc_c, importance = auc_explained(self.scorer, TA, yA, TB, yB, self.clock, raw=raw)
            except Exception as exc:  # noqa: BLE001 - a representation the scorer cannot use
                return self._failed("stage2", "scorer", f"the scorer could not use the features: "
                                    f"{type(exc).__name__}: {str(exc)[:self.spec.feedback.error_chars]}")
            if scored.first_fold is None:
                scored.new, scored.dropped = self._column_changes(TA)
                scored.first_fold = (TA, yA)
                scored.first_raw = raw
            if importance is not None:
                scored.importances.append(importance)
            scored.deltas.append(gain(self.task, base, auc_c))  # ΔAUC, or the relative RMSE reduction
            scored.auc_base.append(base)
            scored.auc_candidate.append(auc_c)
            scored.n_b.append(len(XB))
        return scored

    def _run(self, source: str, plan: list[Step], returns: list[str], *, limits: SandboxSpec,
             data: str | None = None, values: dict | None = None, gate_steps: tuple[str, ...] = ()) -> Any:
        """One sandbox call, charged to the clock: the folds' fit/transform as the program's own time,
        the gate steps run in the child (``gate_steps``: transforms of the gate's parts, fingerprints) as
        gates, and the rest as sandbox."""
        started = time.perf_counter()
        result = self.sandbox.run(source, "tab", plan, returns, data=data, values=values, seed=self.seed,
                                  limits=limits)
        wall = time.perf_counter() - started
        timings = {} if isinstance(result, SandboxFailure) else result.timings
        gated = float(sum(t for name, t in timings.items() if name in gate_steps))
        program = float(sum(timings.values())) - gated
        self.clock.add("program", program)
        self.clock.add("gates", gated)
        self.clock.add("sandbox", wall - program - gated)
        return result

    @staticmethod
    def _estimate(plan: FoldPlan, deltas: list[float]) -> tuple[float, float]:
        return paired_estimate(deltas, plan.test_train_ratio, plan.independent_folds)

    def _outcome(self, plan: FoldPlan, scored: Scored, n_planned: int, eval_s: float,
                 with_feedback: bool = True) -> Outcome:
        mean, se = self._estimate(plan, scored.deltas)
        n_b = int(np.mean(scored.n_b))
        fit = paired_tab_fitness(mean, se, scored.n_changed, n_b, scored.runtime_per_fold, self.fitness)
        metrics = self._metrics(valid=True, score=fit.score, new=len(scored.new), dropped=len(scored.dropped),
                                scored=scored, se=se, n_planned=n_planned)
        metrics["delta_auc_lcb"] = float(fit.delta_auc)
        record = self._feedback(scored, mean, se, fit, n_planned) if with_feedback else None
        return Outcome(metrics, {}, "valid", "", "stage2", {"new": scored.new, "dropped": scored.dropped},
                       runtime_s=round(eval_s, 4), feedback=record, fold_deltas=tuple(map(float, scored.deltas)))

    def _column_changes(self, T: pd.DataFrame) -> tuple[list[str], list[str]]:
        new = [str(c) for c in T.columns if c not in self._original]
        dropped = [c for c in self._original if c not in T.columns]
        return new, dropped

    def _metrics(self, *, valid: bool, score: float, new: int, dropped: int, scored: Scored | None = None,
                 se: float = 0.0, n_planned: int = 0) -> dict[str, float]:
        """Every metric, for every outcome: openevolve needs ``combined_score`` and each MAP-Elites axis."""
        done = len(scored.deltas) if scored else 0
        return {
            "combined_score": float(score),
            "generated_feature_count": float(new),
            "dropped_feature_count": float(dropped),
            "auc_base": float(np.mean(scored.auc_base)) if done else 0.0,
            "auc_candidate": float(np.mean(scored.auc_candidate)) if done else 0.0,
            "delta_auc": float(np.mean(scored.deltas)) if done else 0.0,
            "delta_auc_se": float(se) if done and np.isfinite(se) else 0.0,
            "delta_auc_lcb": 0.0,
            "n_folds": float(done),
            "full_scoring": 1.0 if done and done >= n_planned else 0.0,
            "valid": 1.0 if valid else 0.0,
        }

    def _failed(self, stage: str, kind: str, reason: str, stdout: str | None = None) -> Outcome:
        return self.failure(self.invalid_metrics(), stage, kind, reason, stdout)

    @staticmethod
    def _redacted(failure: SandboxFailure) -> str:
        line = f" at program line {failure.line}: {failure.detail.get('source_line', '')}" if failure.line else ""
        return (f"exception in transform on the scoring pool: {failure.detail.get('exception', 'Exception')}"
                f"{line} (message withheld: it may quote scoring-pool values; make transform robust to "
                "unseen categories and missing values)")

    def _feedback(self, scored: Scored, mean: float, se: float, fit, n_planned: int) -> FeedbackRecord:
        cfg = self.spec.feedback
        n_b = int(np.mean(scored.n_b))
        scores = TabScores(
            auc_base=float(np.mean(scored.auc_base)), auc_candidate=float(np.mean(scored.auc_candidate)),
            delta=float(mean), delta_se=float(se), n_folds=len(scored.deltas), n_planned=int(n_planned),
            fitness=float(fit.score), fitness_offset=self.fitness.offset, auc_weight=self.fitness.auc_weight,
            confidence_z=self.fitness.confidence_z, delta_lcb=float(fit.delta_auc),
            complexity_penalty=float(fit.complexity_penalty), runtime_penalty=float(fit.runtime_penalty),
            runtime_per_fold=float(scored.runtime_per_fold), pool_a_rows=len(self.folds.y) - n_b, pool_b_rows=n_b,
            **({} if self.task == "binary" else {"metric": metric_name(self.task).replace("ROC-AUC", "AUC")}),
            **({"gain": "delta (relative RMSE reduction)"} if self.task == "regression" else {}))
        TA, yA = scored.first_fold
        explained: dict[str, Any] = {}
        error = ""
        if cfg.enabled:
            try:
                with self.clock.part("feedback"):
                    explained = self._explanations(scored, TA, yA, cfg)
            except Exception as exc:  # noqa: BLE001 - feedback must never sink an evaluation
                error = f"{type(exc).__name__}: {exc}"[:cfg.error_chars]
        tab = TabFeedback(scores, tuple(scored.new), tuple(scored.dropped), int(TA.shape[1]),
                          feedback_error=error, **explained)
        return FeedbackRecord("tab", "valid", "", "stage2", self._output_tail(scored.stdout), tab=tab)

    def _explanations(self, scored: Scored, TA: pd.DataFrame, yA: pd.Series, cfg: FeedbackSpec) -> dict[str, Any]:
        """Importances and a readable tree, learnt on pool A (a sample of it above ``feedback.max_rows``)."""
        top = cfg.max_features
        TA_s, yA_s = scoring_rows(TA, yA, cfg.max_rows, self.seed)
        if cfg.importance == "scorer" and scored.importances:
            method = "scorer"
            ranked = feedback.scorer_importance(list(TA.columns), scored.importances, top)
        else:  # permutation importance of a small model of its own (scorers without importances: TabPFN)
            method = "permutation"
            ranked = feedback.permutation_importances(TA_s, yA_s, self.seed, cfg.permutation_repeats,
                                                      top, cfg)
        importance, more = ranked or ((), 0)
        return {"importance_method": method, "importance": importance, "importance_more": more,
                "importance_note": "" if ranked is not None else feedback.TOO_SMALL,
                "tree": feedback.tree_report(TA_s, yA_s, self.seed, cfg.tree_depth, cfg, scored.first_raw)}
