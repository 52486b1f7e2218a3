"""The fixed downstream models that score a representation: TabPFN, LightGBM, a decision tree.

Each scorer is built from its config group (``conf/scorer/*.yaml``), fitted on pool A, and
returns positive-class probabilities for pool B. None of them is tuned per program: the
search changes only the features.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier

from efe.core.errors import EfeError
from evaluators.tabular.costs import CostClock, charged
from evaluators.tabular.preprocess import RawColumns, ScorerInput

log = logging.getLogger(__name__)


class ScorerConfigError(EfeError):
    pass


class Scorer(Protocol):
    name: str

    def predict_proba(self, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame,
                      clock: CostClock | None = None) -> np.ndarray: ...

    def predict_explained(self, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame,
                          clock: CostClock | None = None,
                          raw: RawColumns | None = None) -> tuple[np.ndarray, np.ndarray | None]: ...


class _OnScorerInput:
    """Preprocess (fitted on pool A), then the model's own fit and prediction, each on the clock."""

    def predict_proba(self, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame,
                      clock: CostClock | None = None) -> np.ndarray:
        return self.predict_explained(XA, yA, XB, clock)[0]

    def predict_explained(self, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame,
                          clock: CostClock | None = None,
                          raw: RawColumns | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities for XB, and the fitted model's own importance of each column of XA (None if it has none).

        ``raw``: the coded raw pools of this fold, reused for the columns a program kept as they are.
        """
        with charged(clock, "preprocess"):
            prep = ScorerInput().fit(XA, raw)
            A, B = prep.transform(XA), prep.transform(XB)
        with charged(clock, "scorer"):
            if clock is not None:
                clock.scorer_fits += 1
            proba, model = self.fit_predict(A, yA.to_numpy(), B, prep.categorical_indices_)
        return proba, self.importance(model)

    def fit_predict(self, A: pd.DataFrame, y: np.ndarray, B: pd.DataFrame, categorical: list[int]) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def importance(self, model: Any) -> np.ndarray | None:
        return None


class LightGBMScorer(_OnScorerInput):
    name = "lightgbm"

    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        self.params = dict(params)
        self.seed = seed

    def fit_predict(self, A, y, B, categorical):
        import lightgbm as lgb  # lazy: lightgbm is slow to import (~0.6 s); only this scorer needs it

        params = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31,
                  "min_child_samples": 20, "subsample": 1.0, "colsample_bytree": 1.0}
        params.update(self.params)
        model = lgb.LGBMClassifier(**params, random_state=self.seed, n_jobs=1,
                                   deterministic=True, force_row_wise=True, verbose=-1)
        model.fit(A, y, categorical_feature=categorical or "auto")
        return model.predict_proba(B)[:, 1], model

    def importance(self, model: Any) -> np.ndarray:
        return model.booster_.feature_importance(importance_type="gain").astype("float64")


class TreeScorer(_OnScorerInput):
    name = "tree"

    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        self.params = dict(params)
        self.seed = seed

    def fit_predict(self, A, y, B, categorical):
        params = {"max_depth": 4, "min_samples_leaf": 5}
        params.update(self.params)
        model = DecisionTreeClassifier(**params, random_state=self.seed)
        model.fit(A, y)
        return model.predict_proba(B)[:, 1], model

    def importance(self, model: Any) -> np.ndarray:
        return np.asarray(model.feature_importances_, dtype="float64")


class TabPFNScorer(_OnScorerInput):
    name = "tabpfn"

    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        params = dict(params)
        path = params.pop("model_path", None)
        if not path:
            raise ScorerConfigError(
                "scorer=tabpfn needs scorer.model_path: the path of a TabPFN classifier checkpoint "
                "(e.g. the .ckpt file in your Hugging Face cache); this machine cannot download weights")
        if not Path(str(path)).expanduser().exists():
            raise ScorerConfigError(f"scorer.model_path '{path}' does not exist")
        self.model_path = str(Path(str(path)).expanduser())
        self.max_train_rows = int(params.pop("max_train_rows", 3000))
        self.params = params
        self.seed = seed

    def fit_predict(self, A, y, B, categorical):
        import torch  # lazy: heavy (torch, TabPFN); only the TabPFN scorer needs them
        from tabpfn import TabPFNClassifier

        XA_num, yA_num = A, y
        if len(XA_num) > self.max_train_rows:
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.choice(len(XA_num), self.max_train_rows, replace=False))
            XA_num, yA_num = XA_num.iloc[keep], yA_num[keep]
        params = {"n_estimators": 4, "ignore_pretraining_limits": True}
        params.update(self.params)
        model = TabPFNClassifier(model_path=self.model_path, device="cpu", random_state=self.seed,
                                 inference_precision=torch.float32,
                                 categorical_features_indices=categorical or None,
                                 **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(XA_num.to_numpy(), yA_num)
            proba = model.predict_proba(B.to_numpy())
        positive = list(model.classes_).index(1)
        return proba[:, positive], model


SCORERS = {"lightgbm": LightGBMScorer, "tree": TreeScorer, "tabpfn": TabPFNScorer}


def make_scorer(cfg: Mapping[str, Any], seed: int = 0) -> Scorer:
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in SCORERS:
        raise ScorerConfigError(f"unknown scorer {name!r}; choose one of {sorted(SCORERS)}")
    params = dict(cfg.pop("params", None) or {})
    params.update({k: v for k, v in cfg.items() if v is not None})  # e.g. scorer.model_path
    return SCORERS[name](params, seed)


def auc(scorer: Scorer, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame, yB: pd.Series,
        clock: CostClock | None = None, raw: RawColumns | None = None) -> float:
    return auc_explained(scorer, XA, yA, XB, yB, clock, raw)[0]


def auc_explained(scorer: Scorer, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame, yB: pd.Series,
                  clock: CostClock | None = None, raw: RawColumns | None = None) -> tuple[float, np.ndarray | None]:
    """ROC-AUC on B of the scorer fitted on A, and the fitted model's own importances (pool A)."""
    proba, importance = scorer.predict_explained(XA, yA, XB, clock, raw)
    with charged(clock, "scorer"):
        return float(roc_auc_score(yB.to_numpy(), proba)), importance
