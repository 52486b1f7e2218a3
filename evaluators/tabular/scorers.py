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

from evaluators.tabular.preprocess import ScorerInput

log = logging.getLogger(__name__)


class ScorerConfigError(ValueError):
    pass


class Scorer(Protocol):
    name: str

    def predict_proba(self, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame) -> np.ndarray: ...


class LightGBMScorer:
    name = "lightgbm"

    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        self.params = dict(params)
        self.seed = seed

    def predict_proba(self, XA, yA, XB):
        import lightgbm as lgb

        prep = ScorerInput().fit(XA)
        params = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31,
                  "min_child_samples": 20, "subsample": 1.0, "colsample_bytree": 1.0}
        params.update(self.params)
        model = lgb.LGBMClassifier(**params, random_state=self.seed, n_jobs=1,
                                   deterministic=True, force_row_wise=True, verbose=-1)
        model.fit(prep.transform(XA), yA.to_numpy(),
                  categorical_feature=prep.categorical_indices_ or "auto")
        return model.predict_proba(prep.transform(XB))[:, 1]


class TreeScorer:
    name = "tree"

    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        self.params = dict(params)
        self.seed = seed

    def predict_proba(self, XA, yA, XB):
        from sklearn.tree import DecisionTreeClassifier

        prep = ScorerInput().fit(XA)
        params = {"max_depth": 4, "min_samples_leaf": 5}
        params.update(self.params)
        model = DecisionTreeClassifier(**params, random_state=self.seed)
        model.fit(prep.transform(XA), yA.to_numpy())
        return model.predict_proba(prep.transform(XB))[:, 1]


class TabPFNScorer:
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

    def predict_proba(self, XA, yA, XB):
        import torch
        from tabpfn import TabPFNClassifier

        prep = ScorerInput().fit(XA)
        XA_num, yA_num = prep.transform(XA), yA.to_numpy()
        if len(XA_num) > self.max_train_rows:
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.choice(len(XA_num), self.max_train_rows, replace=False))
            XA_num, yA_num = XA_num.iloc[keep], yA_num[keep]
        params = {"n_estimators": 4, "ignore_pretraining_limits": True}
        params.update(self.params)
        model = TabPFNClassifier(model_path=self.model_path, device="cpu", random_state=self.seed,
                                 inference_precision=torch.float32,
                                 categorical_features_indices=prep.categorical_indices_ or None,
                                 **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(XA_num.to_numpy(), yA_num)
            proba = model.predict_proba(prep.transform(XB).to_numpy())
        positive = list(model.classes_).index(1)
        return proba[:, positive]


SCORERS = {"lightgbm": LightGBMScorer, "tree": TreeScorer, "tabpfn": TabPFNScorer}


def make_scorer(cfg: Mapping[str, Any], seed: int = 0) -> Scorer:
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in SCORERS:
        raise ScorerConfigError(f"unknown scorer {name!r}; choose one of {sorted(SCORERS)}")
    params = dict(cfg.pop("params", None) or {})
    params.update({k: v for k, v in cfg.items() if v is not None})  # e.g. scorer.model_path
    return SCORERS[name](params, seed)


def auc(scorer: Scorer, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame, yB: pd.Series) -> float:
    proba = scorer.predict_proba(XA, yA, XB)
    return float(roc_auc_score(yB.to_numpy(), proba))
