"""EFE-Tab evaluation of one program source: stage-1 gates, then stage-2 scoring.

Holds the heavy state (training data, pool rotations, cached baselines, the sandbox worker)
so that openevolve's thin evaluator file can be re-executed for every program cheaply.
Every outcome, including failures, carries ``combined_score`` and every MAP-Elites axis.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from efe import plain
from efe.datasets.split import read_train
from efe.sandbox import Sandbox, SandboxFailure, SandboxLimits
from evaluators.outcome import Outcome
from evaluators.tabular import feedback, gates
from evaluators.tabular.fitness import FitnessConstants, tab_fitness
from evaluators.tabular.scorers import auc, make_scorer

log = logging.getLogger(__name__)

AXES = ("generated_feature_count", "dropped_feature_count")


class TabEvaluator:
    def __init__(self, spec: dict[str, Any], sandbox: Sandbox | None = None) -> None:
        self.spec = spec
        self.seed = int(spec.get("seed", 0))
        self.target = spec["target"]
        self.X, self.y = read_train(spec["train_path"], self.target)
        pools = spec.get("pools", {})
        from evaluators.tabular.pools import PoolRotation

        self.pools = PoolRotation(self.X, self.y, float(pools.get("score_fraction", 0.3)),
                                  int(pools.get("n_rotations", 5)), self.seed)
        gate_cfg = spec.get("gate", {})
        self.gate_rows = int(gate_cfg.get("sample_rows", 200))
        self.gate_parts = int(gate_cfg.get("n_partitions", 3))
        self.gate_limits = gates.GateLimits.from_mapping(gate_cfg)
        self.label_free_state = bool(gate_cfg.get("label_free_state", False))
        self.fitness = FitnessConstants.from_mapping(spec.get("fitness"))
        self.feedback_cfg = spec.get("feedback", {})
        self.scorer = make_scorer(spec["scorer"], self.seed)
        self.limits = SandboxLimits.from_mapping(spec.get("sandbox"))
        self.sandbox = sandbox or Sandbox(self.limits)
        self._baselines: dict[int, float] = {}
        self._original = list(self.X.columns)

    @property
    def n_rotations(self) -> int:
        return self.pools.n_rotations

    def close(self) -> None:
        self.sandbox.close()

    # ------------------------------------------------------------------ public
    def evaluate(self, source: str) -> Outcome:
        first = self.stage1(source)
        if not first.valid:
            return first
        return self.stage2(source)

    def stage1(self, source: str) -> Outcome:
        """Gates on a small sample of pool A: validity, mutation, batch and index leakage."""
        rotation = self.pools.rotation_for(source)
        X, y = self.pools.gate_sample(rotation, self.gate_rows)
        rng = np.random.default_rng(self.seed + rotation)
        labels = rng.integers(0, self.gate_parts, size=len(X))
        parts = {f"X_part{k}": X[labels == k] for k in range(self.gate_parts) if (labels == k).any()}
        reindexed = X.copy()
        reindexed.index = pd.Index(rng.permutation(len(X)) * 7 + 1_000_003, name=X.index.name)
        values = {"X": X, "y": y, "X_reindexed": reindexed, **parts}
        plan = [
            {"op": "fit", "args": ["X", "y"], "out": "state"},
            {"op": "snapshot", "args": ["X", "y"], "out": "after_fit"},
            {"op": "snapshot", "args": ["state"], "out": "state_after_fit"},
            {"op": "transform", "args": ["X", "state"], "out": "T"},
            *({"op": "transform", "args": [name, "state"], "out": "T_" + name} for name in parts),
            {"op": "transform", "args": ["X_reindexed", "state"], "out": "T_X_reindexed"},
        ]
        returns = ["after_fit", "state_after_fit", "state", "T", "T_X_reindexed", "X", "y",
                   "X_reindexed", *parts, *("T_" + n for n in parts)]
        if self.label_free_state:  # LLM-FE-style searches: fit may not learn from the labels
            values["y_permuted"] = pd.Series(rng.permutation(y.to_numpy()), index=y.index, name=y.name)
            plan.append({"op": "fit", "args": ["X", "y_permuted"], "out": "state_permuted"})
            returns.append("state_permuted")
        result = self.sandbox.run(source, "tab", plan, returns, values=values, seed=self.seed,
                                  limits=self.limits)
        if isinstance(result, SandboxFailure):
            return self._failed("stage1", result.kind, result.reason, rotation, stdout=result.detail.get("stdout"))
        out = result.outputs
        try:
            snap = out["after_fit"]
            gates.check_unmutated({"X": X, "y": y}, {"X": snap[0], "y": snap[1]}, "fit")
            gates.check_unmutated({"X": X, "X_reindexed": reindexed, **parts},
                                  {k: out.get(k) for k in ["X", "X_reindexed", *parts]}, "transform")
            T = gates.check_output("the sample", X, out.get("T"), self.gate_limits)
            for name, part in parts.items():
                gates.check_output("a subset of the rows", part, out.get("T_" + name), self.gate_limits)
            T_re = gates.check_output("the re-indexed sample", reindexed, out.get("T_X_reindexed"),
                                      self.gate_limits)
            gates.check_state_unchanged(out["state_after_fit"], out["state"])
            if self.label_free_state and plain.encode(out["state_after_fit"]) != plain.encode(out.get("state_permuted")):
                raise gates.GateFailure("label_dependent_state",
                                        "this search evolves stateless feature functions: fit must not learn "
                                        "from the labels y (no target encodings or label statistics)")
            gates.check_batch_independence(T, [out["T_" + n] for n in parts], self.gate_limits)
            gates.check_index_invariance(T, T_re, self.gate_limits)
        except gates.GateFailure as exc:
            return self._failed("stage1", f"gate:{exc.gate}", exc.reason, rotation, stdout=result.stdout)
        new, dropped = self._column_changes(T)
        metrics = self._metrics(valid=True, score=self.fitness.offset, rotation=rotation,
                                new=len(new), dropped=len(dropped), auc_c=None)
        return Outcome(metrics, {"stage1": "passed all gates"}, "valid", "", "stage1",
                       {"new": new, "dropped": dropped})

    def stage2(self, source: str, rotation: int | None = None) -> Outcome:
        """Fit on pool A, transform A and B with the same state, score ROC-AUC on B.

        ``rotation`` overrides the program's own pool draw (final selection scores finalists on all).
        """
        rotation = self.pools.rotation_for(source) if rotation is None else int(rotation)
        key = self._ensure_pools_loaded(rotation)
        XA, yA = self.pools.pool_a(rotation)
        XB, yB = self.pools.pool_b(rotation)
        plan = [
            {"op": "fit", "args": ["XA", "yA"], "out": "state"},
            {"op": "transform", "args": ["XA", "state"], "out": "TA"},
            {"op": "transform", "args": ["XB", "state"], "out": "TB"},
        ]
        result = self.sandbox.run(source, "tab", plan, ["TA", "TB"], data=key, seed=self.seed,
                                  limits=self.limits)
        if isinstance(result, SandboxFailure):
            reason = result.reason
            if result.detail.get("op") == "transform" and result.kind == "exception":
                reason = self._redacted(result)
            return self._failed("stage2", result.kind, reason, rotation, stdout=result.detail.get("stdout"))
        runtime = float(sum(result.timings.values()))
        try:
            TA = gates.check_output("pool A", XA, result.outputs.get("TA"), self.gate_limits)
            TB = gates.check_output("the scoring pool", XB, result.outputs.get("TB"), self.gate_limits)
            if list(TA.columns) != list(TB.columns):
                raise gates.GateFailure("schema_mismatch", "transform produced different columns for the "
                                                           "fitting pool and the scoring pool")
        except gates.GateFailure as exc:
            return self._failed("stage2", f"gate:{exc.gate}", exc.reason, rotation, stdout=result.stdout)

        base = self.baseline(rotation)
        try:
            auc_c = auc(self.scorer, TA, yA, TB, yB)
        except Exception as exc:  # noqa: BLE001 - a representation the scorer cannot use
            return self._failed("stage2", "scorer", f"the scorer could not use the features: "
                                f"{type(exc).__name__}: {str(exc)[:200]}", rotation)
        new, dropped = self._column_changes(TA)
        fit = tab_fitness(base, auc_c, len(new) + len(dropped), len(XB), runtime, self.fitness)
        metrics = self._metrics(valid=True, score=fit.score, rotation=rotation, new=len(new),
                                dropped=len(dropped), auc_c=auc_c)
        artifacts = self._feedback(TA, yA, base, auc_c, fit, new, dropped, len(XA), len(XB), rotation,
                                   runtime, result.stdout)
        return Outcome(metrics, artifacts, "valid", "", "stage2", {"new": new, "dropped": dropped},
                       runtime_s=runtime)

    def baseline(self, rotation: int) -> float:
        """ROC-AUC of the scorer on raw features (as a program would see them), cached."""
        if rotation not in self._baselines:
            XA, yA = self.pools.pool_a(rotation)
            XB, yB = self.pools.pool_b(rotation)
            XA_seen, XB_seen = plain.roundtrip(XA), plain.roundtrip(XB)
            self._baselines[rotation] = auc(self.scorer, XA_seen, yA, XB_seen, yB)
        return self._baselines[rotation]

    def internal_error(self, source: str, message: str) -> Outcome:
        """An evaluator bug must cost one candidate, never the run."""
        return self._failed("internal", "internal", f"evaluator error: {message}"[:500],
                            self.pools.rotation_for(source))

    # ------------------------------------------------------------------ helpers
    def _ensure_pools_loaded(self, rotation: int) -> str:
        key = f"tab-pools-{rotation}"
        if not self.sandbox.has(key):
            XA, yA = self.pools.pool_a(rotation)
            XB, _ = self.pools.pool_b(rotation)  # pool B labels never enter the sandbox
            self.sandbox.load(key, {"XA": XA, "yA": yA, "XB": XB})
        return key

    def _column_changes(self, T: pd.DataFrame) -> tuple[list[str], list[str]]:
        new = [str(c) for c in T.columns if c not in self._original]
        dropped = [c for c in self._original if c not in T.columns]
        return new, dropped

    def _metrics(self, *, valid: bool, score: float, rotation: int, new: int, dropped: int,
                 auc_c: float | None) -> dict[str, float]:
        base = self._baselines.get(rotation)
        base_v = float(base) if base is not None else 0.0
        cand_v = float(auc_c) if auc_c is not None else (base_v if valid else 0.0)
        return {
            "combined_score": float(score),
            "generated_feature_count": float(new),
            "dropped_feature_count": float(dropped),
            "auc_base": base_v,
            "auc_candidate": cand_v,
            "delta_auc": float(cand_v - base_v) if auc_c is not None else 0.0,
            "valid": 1.0 if valid else 0.0,
            "rotation": float(rotation),
        }

    def _failed(self, stage: str, kind: str, reason: str, rotation: int, stdout: str | None = None) -> Outcome:
        metrics = self._metrics(valid=False, score=self.fitness.invalid_score, rotation=rotation,
                                new=0, dropped=0, auc_c=None)
        artifacts = {"verdict": f"invalid ({kind})", "reason": reason, "failure_stage": stage}
        if stdout:
            artifacts["program_output"] = stdout[-1500:]
        return Outcome(metrics, artifacts, f"invalid:{kind}", reason, stage)

    @staticmethod
    def _redacted(failure: SandboxFailure) -> str:
        line = f" at program line {failure.line}: {failure.detail.get('source_line', '')}" if failure.line else ""
        return (f"exception in transform on the scoring pool: {failure.detail.get('exception', 'Exception')}"
                f"{line} (message withheld: it may quote scoring-pool values; make transform robust to "
                "unseen categories and missing values)")

    def _feedback(self, TA, yA, base, auc_c, fit, new, dropped, n_a, n_b, rotation, runtime, stdout) -> dict:
        cfg = self.feedback_cfg
        slow = (f"; program runtime {runtime:.0f}s is penalised {fit.runtime_penalty:.2f}"
                if fit.runtime_penalty else "")
        scores = (f"AUC baseline {base:.4f}, candidate {auc_c:.4f}, delta {fit.delta_auc:+.4f}; "
                  f"fitness {fit.score:.4f} = {self.fitness.offset} + {self.fitness.auc_weight}*delta "
                  f"- complexity {fit.complexity_penalty:.4f} - runtime {fit.runtime_penalty:.2f}; "
                  f"pool A {n_a} rows, pool B {n_b} rows, rotation {rotation}{slow}")
        artifacts = {
            "verdict": "valid",
            "scores": scores,
            "new_columns": ", ".join(new) or "(none)",
            "dropped_columns": ", ".join(dropped) or "(none)",
            "output_column_count": str(TA.shape[1]),
        }
        if cfg.get("enabled", True):
            try:
                artifacts["permutation_importance_pool_a"] = feedback.permutation_report(
                    TA, yA, self.seed, int(cfg.get("permutation_repeats", 3)), int(cfg.get("max_features", 20)))
                artifacts["tree_pool_a"] = feedback.tree_report(TA, yA, self.seed, int(cfg.get("tree_depth", 3)))
            except Exception as exc:  # noqa: BLE001 - feedback must never sink an evaluation
                artifacts["feedback_error"] = f"{type(exc).__name__}: {exc}"[:200]
        if stdout:
            artifacts["program_output"] = stdout[-1500:]
        return artifacts
