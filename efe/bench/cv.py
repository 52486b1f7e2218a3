"""Repeated cross-validation of a program on a training part (CAAFE's keep-or-drop test)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from efe.core import plain
from efe.core.specs import SandboxSpec
from efe.sandbox import Sandbox, SandboxFailure
from efe.sandbox import plan as step
from evaluators.tabular.scorers import Scorer


@dataclass
class CVScores:
    auc: np.ndarray
    accuracy: np.ndarray


def splits(y: pd.Series, folds: int, repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for r in range(repeats):
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + r)
        out.extend(skf.split(np.zeros(len(y)), y))
    return out


def cv_scores(source: str | None, X: pd.DataFrame, y: pd.Series, folds: list, scorer: Scorer, sandbox: Sandbox,
              limits: SandboxSpec) -> CVScores | SandboxFailure:
    """AUC and accuracy per fold; ``source=None`` scores the raw features."""
    aucs, accs = [], []
    plan = [step.fit("X", "y", "state"),
            step.transform("X", "state", "T"),
            step.transform("X_val", "state", "T_val")]
    for train_idx, val_idx in folds:
        Xt, yt, Xv, yv = X.iloc[train_idx], y.iloc[train_idx], X.iloc[val_idx], y.iloc[val_idx]
        if source is None:
            Tt, Tv = plain.roundtrip(Xt), plain.roundtrip(Xv)
        else:
            result = sandbox.run(source, "tab", plan, ["T", "T_val"], values={"X": Xt, "y": yt, "X_val": Xv},
                                 limits=limits)
            if isinstance(result, SandboxFailure):
                return result
            Tt, Tv = result.outputs["T"], result.outputs["T_val"]
        proba = scorer.predict_proba(Tt, yt, Tv)
        aucs.append(roc_auc_score(yv, proba))
        accs.append(accuracy_score(yv, (proba >= 0.5).astype(int)))
    return CVScores(np.array(aucs), np.array(accs))
