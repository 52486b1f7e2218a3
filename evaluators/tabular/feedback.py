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
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, export_text

from efe.core.feedback_record import Importance
from efe.core.task import is_continuous
from efe.core.specs import FeedbackSpec
from evaluators.tabular.preprocess import RawColumns, ScorerInput

TOO_SMALL = "(pool A too small for importances)"


def _ranked(columns: list, mean: np.ndarray, sd: np.ndarray, order: np.ndarray,
            top: int) -> tuple[tuple[Importance, ...], int]:
    """(the ``top`` columns in this order, how many were left out)."""
    kept = tuple(Importance(str(columns[i]), float(mean[i]), float(sd[i])) for i in order[:top])
    return kept, max(len(order) - top, 0)


def scorer_importance(columns: list[str], per_fold: list[np.ndarray], top: int) -> tuple[tuple[Importance, ...], int]:
    """Each column's share of the scorer's importance, mean ± SD over the scored folds."""
    shares = []
    for values in per_fold:
        values = np.clip(np.asarray(values, dtype="float64"), 0.0, None)
        total = values.sum()
        shares.append(values / total if total > 0 else values)
    shares = np.vstack(shares)
    mean = shares.mean(axis=0)
    sd = shares.std(axis=0, ddof=1) if len(shares) > 1 else np.zeros_like(mean)
    return _ranked(columns, mean, sd, np.argsort(-mean, kind="stable"), top)


def permutation_importances(TA: pd.DataFrame, yA: pd.Series, seed: int, repeats: int, top: int,
                            models: FeedbackSpec) -> tuple[tuple[Importance, ...], int] | None:
    """Permutation importance (ROC-AUC drop, macro one-vs-rest for several classes, RMSE rise for a regression
    target) of each column, on a split of pool A; None when pool A is too small."""
    import lightgbm as lgb  # lazy: lightgbm is slow to import (~0.6 s); only this fallback needs it

    if yA.nunique() < 2 or len(TA) < models.perm_min_rows:
        return None
    continuous = is_continuous(yA)
    fit_idx, eval_idx = train_test_split(np.arange(len(TA)), test_size=models.perm_eval_fraction,
                                         stratify=None if continuous else yA, random_state=seed)
    prep = ScorerInput().fit(TA.iloc[fit_idx])
    Xf, Xe = prep.transform(TA.iloc[fit_idx]), prep.transform(TA.iloc[eval_idx])
    kind = lgb.LGBMRegressor if continuous else lgb.LGBMClassifier
    model = kind(n_estimators=models.perm_n_estimators, learning_rate=models.perm_learning_rate,
                               num_leaves=models.perm_num_leaves, random_state=seed,
                               n_jobs=1, deterministic=True, force_row_wise=True, verbose=-1)
    model.fit(Xf, yA.iloc[fit_idx].to_numpy())
    scoring = ("neg_root_mean_squared_error" if continuous else "roc_auc" if yA.nunique() <= 2 else "roc_auc_ovr")
    result = permutation_importance(model, Xe, yA.iloc[eval_idx].to_numpy(), scoring=scoring,
                                    n_repeats=repeats, random_state=seed, n_jobs=1)
    return _ranked(list(TA.columns), result.importances_mean, result.importances_std,
                   np.argsort(-result.importances_mean), top)


def tree_report(TA: pd.DataFrame, yA: pd.Series, seed: int, depth: int,
                models: FeedbackSpec, raw: RawColumns | None = None) -> str:
    """A readable shallow tree on the candidate's representation of pool A."""
    prep = ScorerInput().fit(TA, raw)
    X = prep.transform(TA)
    leaf = max(models.tree_min_leaf, len(X) // models.tree_rows_per_leaf)
    kind = DecisionTreeRegressor if is_continuous(yA) else DecisionTreeClassifier
    tree = kind(max_depth=depth, min_samples_leaf=leaf, random_state=seed)
    tree.fit(X, yA.to_numpy())
    return export_text(tree, feature_names=[str(c) for c in TA.columns], decimals=3)  # the user's names
