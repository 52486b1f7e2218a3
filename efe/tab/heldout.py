"""After the search: refit the winner on the whole training part, score it on the held-out part.

The program runs in the sandbox with the training rows (with labels) and the held-out rows
(without); held-out labels stay in this process, where the trusted scorers use them.

Each row holds the task's metric without and with the program (keys ``auc_no_fe`` / ``auc_efe``: ROC-AUC,
macro one-vs-rest ROC-AUC, or RMSE for regression, named by ``metric``), the gain (``delta``: ΔAUC, or the
relative RMSE reduction) and its paired SE: DeLong's for a binary AUC, a paired bootstrap over the
held-out rows (``report.bootstrap`` resamples) for the others. Regression rows add MAE and R² beside RMSE.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from scipy.stats import rankdata
from efe.core import plain
from efe.core.task import gain, metric, metric_name, paired_bootstrap_se, regression_summary
from efe.core.config import CONF_DIR
from efe.core.specs import SandboxSpec, TabGateSpec
from efe.frozen.sandboxed import shared_sandbox
from efe.sandbox import SandboxFailure
from efe.sandbox import plan as step
from efe.tab.parallel import map_parallel
from evaluators.tabular import gates
from evaluators.tabular.scorers import make_scorer

log = logging.getLogger(__name__)


@dataclass
class HeldoutResult:
    state: Any
    train_out: pd.DataFrame
    test_out: pd.DataFrame
    rows: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def scorer_configs(names: list[str], search_scorer: dict) -> list[dict]:
    """Each report model's config group, with the search scorer's own settings where it is one.

    The search scorer is always among them (first, when ``names`` does not list it): the held-out
    table scores the frozen program with the model the search optimised for, next to the others.
    """
    out = []
    if search_scorer.get("name") not in names:
        out.append(dict(search_scorer))
    for name in names:
        if name == search_scorer.get("name"):
            out.append(dict(search_scorer))
            continue
        path = CONF_DIR / "scorer" / f"{name}.yaml"
        if not path.exists():
            raise ValueError(f"report.models names an unknown scorer '{name}'")
        out.append(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
    return out


def refit_and_score(source: str, X_train: pd.DataFrame, y_train: pd.Series, X_test: pd.DataFrame,
                    y_test: pd.Series, models: list[dict], limits: SandboxSpec, seed: int,
                    gate_limits: TabGateSpec, task: str = "binary", bootstrap: int = 200) -> HeldoutResult:
    out = refit(source, X_train, y_train, X_test, limits, seed, gate_limits)
    score_heldout(out, X_train, y_train, X_test, y_test, models, seed, task=task, bootstrap=bootstrap)
    return out


def refit(source: str, X_train: pd.DataFrame, y_train: pd.Series, X_test: pd.DataFrame, limits: SandboxSpec,
          seed: int, gate_limits: TabGateSpec) -> HeldoutResult:
    """The winner fitted on the whole training part, and its output on both parts (no scoring yet)."""
    plan = [
        step.fit("X", "y", "state"),
        step.transform("X", "state", "T"),
        step.transform("X_test", "state", "T_test"),
    ]
    sandbox = shared_sandbox(limits)  # the run's process already has one (its isolation probe)
    sandbox.load("heldout", {"X": X_train, "y": y_train, "X_test": X_test})
    result = sandbox.run(source, "tab", plan, ["state", "T", "T_test"], data="heldout", seed=seed)
    if isinstance(result, SandboxFailure):
        raise RuntimeError(f"the winning program failed when refitted on the whole training part: {result.reason}")
    T = gates.check_output("the training part", X_train, result.outputs["T"], gate_limits)
    T_test = gates.check_output("the held-out part", X_test, result.outputs["T_test"], gate_limits)
    return HeldoutResult(result.outputs["state"], T, T_test)


def score_heldout(out: HeldoutResult, X_train: pd.DataFrame, y_train: pd.Series, X_test: pd.DataFrame,
                  y_test: pd.Series, models: list[dict], seed: int, workers: int = 1, task: str = "binary",
                  bootstrap: int = 200) -> None:
    """Each report model with and without the winner's features; a model that fails is listed as skipped.

    The fits are independent: ``workers`` of them run at once (``selection.workers``).
    """
    raw_train, raw_test = plain.roundtrip(X_train), plain.roundtrip(X_test)
    scorers = {}
    for cfg in models:
        name = cfg.get("name")
        try:
            scorers[name] = make_scorer(cfg, seed, task)
        except ValueError as exc:
            out.skipped[name] = str(exc).split(";")[0]
    inputs = {"base": (raw_train, raw_test), "fe": (out.train_out, out.test_out)}

    def predict(job: tuple[str, str]) -> np.ndarray | Exception:
        name, which = job
        try:
            return scorers[name].predict_proba(inputs[which][0], y_train, inputs[which][1])
        except Exception as exc:  # noqa: BLE001 - one model failing must not lose the others or the result
            log.warning("held-out scoring with %s failed", name, exc_info=True)
            return exc

    jobs = [(name, which) for name in scorers for which in ("base", "fe")]
    probas = dict(zip(jobs, map_parallel(predict, jobs, workers, "held-out report: model fits" if workers > 1 else "")))
    for name in scorers:
        p_base, p_fe = probas[(name, "base")], probas[(name, "fe")]
        try:
            for p in (p_base, p_fe):
                if isinstance(p, Exception):
                    raise p
            y = y_test.to_numpy()
            base, fe = metric(task, y, p_base), metric(task, y, p_fe)
            if task == "binary":
                se = delong_se_of_difference(y, p_fe, p_base)
            else:
                se = paired_bootstrap_se(task, y, p_fe, p_base, bootstrap, seed)
        except Exception as exc:  # noqa: BLE001 - one model failing must not lose the others or the result
            out.skipped[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
            continue
        row = {"model": name, "estimator": scorers[name].estimator, "metric": metric_name(task),
               "auc_no_fe": base, "auc_efe": fe, "delta": gain(task, base, fe), "delta_se": se,
               "se_method": "DeLong" if task == "binary" else "paired bootstrap"}
        if task == "regression":
            row["no_fe"] = regression_summary(y, p_base)
            row["efe"] = regression_summary(y, p_fe)
        out.rows.append(row)


def _placements(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong structural components: each positive's share of negatives below it, and vice versa."""
    m, n = len(pos), len(neg)
    ranks = rankdata(np.concatenate([pos, neg]))
    v10 = (ranks[:m] - rankdata(pos)) / n
    v01 = 1.0 - (ranks[m:] - rankdata(neg)) / m
    return v10, v01


def delong_se_of_difference(y: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> float:
    """Standard error of AUC(p1) − AUC(p2) on the same rows (DeLong et al., 1988).

    This is how precisely the held-out part can measure a gain: a claimed gain well inside
    ±2 of these SEs cannot be confirmed (or refuted) by the held-out rows.
    """
    y = np.asarray(y)
    positive = y == np.unique(y)[-1]
    p1, p2 = np.asarray(p1, dtype=float), np.asarray(p2, dtype=float)
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        return float("nan")
    a10, a01 = _placements(p1[positive], p1[~positive])
    b10, b01 = _placements(p2[positive], p2[~positive])
    var = (np.var(a10 - b10, ddof=1) / m) + (np.var(a01 - b01, ddof=1) / n)
    return float(np.sqrt(max(var, 0.0)))
