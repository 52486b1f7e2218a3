"""What a table's target asks for: binary or multiclass classification, or regression, and its metric.

Every part of efe.tab that scores (the evaluator's folds, the final selection, the held-out report)
reaches the metric through here, so one task word decides it everywhere:

- ``binary``: ROC-AUC of the positive-class probability; the gain is the AUC difference.
- ``multiclass``: macro one-vs-rest ROC-AUC of the class probabilities; the gain is its difference.
- ``regression``: RMSE of the predictions; the gain is the relative RMSE reduction
  ``(RMSE_base - RMSE_candidate) / RMSE_base``, so that inside the search higher is always better and a
  gain reads on the same scale as ΔAUC (0.02 = 2% lower RMSE). MAE and R² are reported beside it.

Targets reach the scorers coded: 0/1 for binary, class codes 0..K-1 for multiclass, floats for
regression (a float target is how the folds know not to stratify).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

TASKS = ("binary", "multiclass", "regression")
CHOICES = ("auto", *TASKS)

METRIC = {"binary": "ROC-AUC", "multiclass": "macro one-vs-rest ROC-AUC", "regression": "RMSE"}
GAIN = {"binary": "ΔAUC", "multiclass": "ΔAUC (macro OvR)", "regression": "relative RMSE reduction"}


def check_task(task: Any) -> str:
    task = str(task or "binary")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    return task


def is_classification(task: str) -> bool:
    return check_task(task) != "regression"


def is_continuous(y: pd.Series | np.ndarray) -> bool:
    """A regression target as the data layer codes it (floats); class codes are integers."""
    return np.asarray(y).dtype.kind == "f"


def metric_name(task: str) -> str:
    return METRIC[check_task(task)]


def gain_name(task: str) -> str:
    return GAIN[check_task(task)]


def macro_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """Macro one-vs-rest ROC-AUC over the classes present in ``y`` (columns of ``proba`` are codes 0..K-1)."""
    y = np.asarray(y).astype("int64")
    proba = np.asarray(proba, dtype="float64")
    scores = []
    for k in range(proba.shape[1]):
        positive = y == k
        if positive.any() and not positive.all():
            scores.append(roc_auc_score(positive, proba[:, k]))
    return float(np.mean(scores)) if scores else float("nan")


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    err = np.asarray(pred, dtype="float64") - np.asarray(y, dtype="float64")
    return float(np.sqrt(np.mean(err * err)))


def metric(task: str, y: Any, pred: Any) -> float:
    """The task's metric of predictions ``pred`` (probabilities, or values for regression) on labels ``y``."""
    task = check_task(task)
    y = np.asarray(y)
    if task == "binary":
        return float(roc_auc_score(y, np.asarray(pred)))
    if task == "multiclass":
        return macro_auc(y, pred)
    return rmse(y, pred)


def gain(task: str, base: float, candidate: float) -> float:
    """How much better ``candidate`` is than ``base`` (higher is better for every task)."""
    if check_task(task) == "regression":
        return float((base - candidate) / base) if base > 0 else 0.0
    return float(candidate - base)


def regression_summary(y: Any, pred: Any) -> dict[str, float]:
    """RMSE, MAE and R² of regression predictions."""
    y = np.asarray(y, dtype="float64")
    pred = np.asarray(pred, dtype="float64")
    err = pred - y
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {"rmse": float(np.sqrt(np.mean(err * err))), "mae": float(np.mean(np.abs(err))),
            "r2": float(1.0 - np.sum(err * err) / ss_tot) if ss_tot > 0 else float("nan")}


def paired_bootstrap_se(task: str, y: Any, pred_fe: Any, pred_base: Any, n_boot: int, seed: int) -> float:
    """SE of the held-out gain (``gain(metric(base), metric(fe))``) by resampling rows, both predictions paired."""
    y = np.asarray(y)
    pred_fe, pred_base = np.asarray(pred_fe), np.asarray(pred_base)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, len(y), len(y))
        yb = y[idx]
        if check_task(task) != "regression" and len(np.unique(yb)) < 2:
            continue
        try:
            values.append(gain(task, metric(task, yb, pred_base[idx]), metric(task, yb, pred_fe[idx])))
        except ValueError:
            continue
    values = [v for v in values if np.isfinite(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
