"""Aggregate feedback for the next prompt, computed on pool A only.

Pool B reaches the LLM only as two AUC numbers and their difference. What is explained here
(importances, a readable tree) is learnt from the candidate's transformed pool A. The default
importances are the scorer's own (split gain of LightGBM, impurity decrease of the tree) from the
fits the scoring already made, so feedback costs a fraction of one scorer fit; permutation
importance of a small model of its own is the alternative (``feedback.importance``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, export_text

from evaluators.tabular.preprocess import ScorerInput


def importance_report(columns: list[str], per_fold: list[np.ndarray], top: int) -> str:
    """Each column's share of the scorer's importance, mean ± SD over the scored folds."""
    shares = []
    for values in per_fold:
        values = np.clip(np.asarray(values, dtype="float64"), 0.0, None)
        total = values.sum()
        shares.append(values / total if total > 0 else values)
    shares = np.vstack(shares)
    mean = shares.mean(axis=0)
    sd = shares.std(axis=0, ddof=1) if len(shares) > 1 else np.zeros_like(mean)
    order = np.argsort(-mean, kind="stable")
    lines = [f"{columns[i]}: {mean[i]:+.4f} ± {sd[i]:.4f}" for i in order[:top]]
    if len(order) > top:
        lines.append(f"... {len(order) - top} more columns")
    return "\n".join(lines)


def permutation_report(TA: pd.DataFrame, yA: pd.Series, seed: int, repeats: int, top: int) -> str:
    """Permutation importance (ROC-AUC drop) of each column, on a split of pool A."""
    import lightgbm as lgb  # lazy: lightgbm is slow to import (~0.6 s); only this fallback needs it

    if yA.nunique() < 2 or len(TA) < 40:
        return "(pool A too small for importances)"
    fit_idx, eval_idx = train_test_split(np.arange(len(TA)), test_size=0.3, stratify=yA,
                                         random_state=seed)
    prep = ScorerInput().fit(TA.iloc[fit_idx])
    Xf, Xe = prep.transform(TA.iloc[fit_idx]), prep.transform(TA.iloc[eval_idx])
    model = lgb.LGBMClassifier(n_estimators=60, learning_rate=0.1, num_leaves=15, random_state=seed,
                               n_jobs=1, deterministic=True, force_row_wise=True, verbose=-1)
    model.fit(Xf, yA.iloc[fit_idx].to_numpy())
    result = permutation_importance(model, Xe, yA.iloc[eval_idx].to_numpy(), scoring="roc_auc",
                                    n_repeats=repeats, random_state=seed, n_jobs=1)
    order = np.argsort(-result.importances_mean)
    lines = [f"{TA.columns[i]}: {result.importances_mean[i]:+.4f} ± {result.importances_std[i]:.4f}"
             for i in order[:top]]
    if len(order) > top:
        lines.append(f"... {len(order) - top} more columns")
    return "\n".join(lines)


def tree_report(TA: pd.DataFrame, yA: pd.Series, seed: int, depth: int) -> str:
    """A readable shallow tree on the candidate's representation of pool A."""
    prep = ScorerInput().fit(TA)
    X = prep.transform(TA)
    tree = DecisionTreeClassifier(max_depth=depth, min_samples_leaf=max(5, len(X) // 100),
                                  random_state=seed)
    tree.fit(X, yA.to_numpy())
    return export_text(tree, feature_names=[str(c) for c in TA.columns], decimals=3)  # the user's names
