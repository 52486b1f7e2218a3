"""The fixed downstream models that score a representation.

TabPFN, LightGBM and a decision tree take the coded columns as they are (NaN included);
logistic regression (``linear``), a random forest (``random_forest``) and any scikit-learn-compatible
classifier named by import path (``sklearn``) get their own imputation, scaling and one-hot encoding
(``preprocess.sklearn_encoding``) inside one pipeline with the model.

Each scorer is built from its config group (``conf/scorer/*.yaml``) and the run's task
(``efe.core.task``), fitted on pool A, and returns for pool B the positive-class probability (binary),
the class probabilities, one column per class code (multiclass), or predicted values (regression, from
the regressor of the same family: LGBMRegressor, DecisionTreeRegressor, Ridge for ``linear``,
RandomForestRegressor, TabPFNRegressor). None of them is tuned per program: the
search changes only the features. ``check_scorer`` builds the configured one before a run
starts, so a scorer that cannot work is refused with one line.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import warnings
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np
import pandas as pd
from sklearn.base import is_classifier, is_regressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from efe.core.errors import EfeError
from efe.core.task import check_task, metric
from evaluators.tabular.costs import CostClock, charged
from evaluators.tabular.preprocess import RawColumns, ScorerInput, encoded_owners, sklearn_encoding

log = logging.getLogger(__name__)


class ScorerConfigError(EfeError):
    pass


class Scorer(Protocol):
    name: str
    estimator: str
    task: str

    def describe(self) -> dict[str, Any]: ...

    def predict_proba(self, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame,
                      clock: CostClock | None = None) -> np.ndarray: ...

    def predict_explained(self, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame,
                          clock: CostClock | None = None,
                          raw: RawColumns | None = None) -> tuple[np.ndarray, np.ndarray | None]: ...


def _class_columns(proba: np.ndarray, classes: Any) -> np.ndarray:
    """Class probabilities with one column per class code 0..K-1 (a code the fit did not see gets zeros)."""
    codes = [int(c) for c in classes]
    out = np.zeros((proba.shape[0], max(codes) + 1))
    out[:, codes] = proba
    return out


class _OnScorerInput:
    """Preprocess (fitted on pool A), then the model's own fit and prediction, each on the clock.

    ``predict_proba`` is the task's prediction: probabilities for classification, values for regression.
    """

    task = "binary"
    estimators: dict[str, str] = {}

    @classmethod
    def estimator_for(cls, task: str) -> str:
        """The estimator's import path for this task (one line if the family has none for it)."""
        task = check_task(task)
        key = "regression" if task == "regression" else "classification"
        if key not in cls.estimators:
            raise ScorerConfigError(f"scorer={cls.name} has no {task} model; choose another scorer")
        return cls.estimators[key]

    def _predicted(self, model: Any, B: Any) -> np.ndarray:
        """The task's prediction of a fitted model: P(class 1), every class's probability, or values."""
        if self.task == "regression":
            return np.asarray(model.predict(B), dtype="float64")
        proba = model.predict_proba(B)
        if self.task == "multiclass":
            return _class_columns(proba, model.classes_)
        return proba[:, list(model.classes_).index(1)]

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

    def describe(self) -> dict[str, Any]:
        """What the report, the frozen manifest and the model card name: kind, estimator path, parameters."""
        return {"kind": self.name, "estimator": self.estimator, "params": dict(self.params), "seed": self.seed}


class LightGBMScorer(_OnScorerInput):
    name = "lightgbm"
    estimators = {"classification": "lightgbm.LGBMClassifier", "regression": "lightgbm.LGBMRegressor"}

    def __init__(self, params: Mapping[str, Any], seed: int, task: str = "binary") -> None:
        self.task = check_task(task)
        self.estimator = self.estimator_for(self.task)
        self.params = dict(params)
        self.seed = seed

    def fit_predict(self, A, y, B, categorical):
        import lightgbm as lgb  # lazy: lightgbm is slow to import (~0.6 s); only this scorer needs it

        params = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31,
                  "min_child_samples": 20, "subsample": 1.0, "colsample_bytree": 1.0}
        params.update(self.params)
        kind = lgb.LGBMRegressor if self.task == "regression" else lgb.LGBMClassifier
        model = kind(**params, random_state=self.seed, n_jobs=1,
                     deterministic=True, force_row_wise=True, verbose=-1)
        model.fit(A, y, categorical_feature=categorical or "auto")
        return self._predicted(model, B), model

    def importance(self, model: Any) -> np.ndarray:
        return model.booster_.feature_importance(importance_type="gain").astype("float64")


class TreeScorer(_OnScorerInput):
    name = "tree"
    estimators = {"classification": "sklearn.tree.DecisionTreeClassifier",
                  "regression": "sklearn.tree.DecisionTreeRegressor"}

    def __init__(self, params: Mapping[str, Any], seed: int, task: str = "binary") -> None:
        self.task = check_task(task)
        self.estimator = self.estimator_for(self.task)
        self.params = dict(params)
        self.seed = seed

    def fit_predict(self, A, y, B, categorical):
        params = {"max_depth": 4, "min_samples_leaf": 5}
        params.update(self.params)
        kind = DecisionTreeRegressor if self.task == "regression" else DecisionTreeClassifier
        model = kind(**params, random_state=self.seed)
        model.fit(A, y)
        return self._predicted(model, B), model

    def importance(self, model: Any) -> np.ndarray:
        return np.asarray(model.feature_importances_, dtype="float64")


class TabPFNScorer(_OnScorerInput):
    name = "tabpfn"
    estimators = {"classification": "tabpfn.TabPFNClassifier", "regression": "tabpfn.TabPFNRegressor"}

    def __init__(self, params: Mapping[str, Any], seed: int, task: str = "binary") -> None:
        self.task = check_task(task)
        self.estimator = self.estimator_for(self.task)
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

        kind = import_estimator(self.estimator)

        XA_num, yA_num = A, y
        if len(XA_num) > self.max_train_rows:
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.choice(len(XA_num), self.max_train_rows, replace=False))
            XA_num, yA_num = XA_num.iloc[keep], yA_num[keep]
        params = {"n_estimators": 4, "ignore_pretraining_limits": True}
        params.update(self.params)
        model = kind(model_path=self.model_path, device="cpu", random_state=self.seed,
                     inference_precision=torch.float32,
                     categorical_features_indices=categorical or None,
                     **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(XA_num.to_numpy(), yA_num)
            return self._predicted(model, B.to_numpy()), model


def import_estimator(path: str) -> type:
    """The class at ``package.module.ClassName`` (or ``package.module:ClassName``)."""
    module_name, _, attr = str(path).replace(":", ".").rpartition(".")
    if not module_name or not attr:
        raise ScorerConfigError(f"scorer.estimator '{path}' is not an import path like "
                                "sklearn.ensemble.ExtraTreesClassifier")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - ImportError, or whatever the module raises on import
        raise ScorerConfigError(f"scorer.estimator '{path}' cannot be imported: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise ScorerConfigError(f"scorer.estimator '{path}' cannot be imported: module '{module_name}' has no "
                                f"attribute '{attr}'")
    return cls


def _init_params(cls: type) -> set[str]:
    """The constructor parameters of an estimator class (its defaults' get_params, else its signature)."""
    try:
        return set(cls().get_params(deep=False))
    except Exception:  # noqa: BLE001 - a class that needs arguments, or has no get_params
        try:
            return {n for n, p in inspect.signature(cls).parameters.items()
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        except (TypeError, ValueError):
            return set()


class SklearnScorer(_OnScorerInput):
    """Any scikit-learn-compatible classifier with ``predict_proba``, behind the same encoding pipeline.

    The encoding (median imputation with missing indicators, standardisation, one-hot encoding of
    categoricals) is applied for every estimator, including ones that take NaN or categories
    natively: every sklearn scorer then sees the same representation of a program's output, and
    no estimator capability has to be guessed from tags that third-party libraries fill in
    differently. ``random_state`` is the run's seed and ``n_jobs`` is 1 unless ``params`` sets them.
    """

    name = "sklearn"
    fixed = False  # linear, random_forest: always the family's estimator for the task

    def __init__(self, params: Mapping[str, Any], seed: int, estimator: str | None = None,
                 encoding: Mapping[str, Any] | None = None, task: str = "binary") -> None:
        label = f"scorer={self.name}"
        self.task = check_task(task)
        if self.fixed:
            fixed = self.estimator_for(self.task)
            if estimator not in (None, fixed, *self.estimators.values()):
                raise ScorerConfigError(f"{label} always uses {fixed}; for another estimator "
                                        f"use scorer=sklearn scorer.estimator={estimator}")
            estimator = fixed
        if not estimator:
            what = "regressor" if self.task == "regression" else "classifier"
            example = "ExtraTreesRegressor" if self.task == "regression" else "ExtraTreesClassifier"
            raise ScorerConfigError(f"{label} needs scorer.estimator: the import path of a {what}, "
                                    f"e.g. scorer.estimator=sklearn.ensemble.{example}")
        if not encoding or not {"missing_indicator", "max_categories"} <= set(encoding):
            raise ScorerConfigError(f"{label} needs scorer.encoding.missing_indicator and "
                                    "scorer.encoding.max_categories (see conf/scorer/sklearn.yaml)")
        self.estimator = str(estimator)
        self.encoding = {"missing_indicator": bool(encoding["missing_indicator"]),
                         "max_categories": int(encoding["max_categories"])}
        self.seed = seed
        self.cls = import_estimator(self.estimator)
        self.params = dict(params)
        accepted = _init_params(self.cls)
        if "random_state" in accepted and "random_state" not in self.params:
            self.params["random_state"] = seed
        if "n_jobs" in accepted and "n_jobs" not in self.params:
            self.params["n_jobs"] = 1
        self.build()  # refuse an estimator that cannot be built or lacks predict_proba now, not mid-search

    def build(self) -> Any:
        """A fresh, unfitted estimator with the configured parameters."""
        try:
            model = self.cls(**self.params)
        except Exception as exc:  # noqa: BLE001 - bad parameters, or not a class at all
            raise ScorerConfigError(f"scorer.estimator {self.estimator} cannot be built with parameters "
                                    f"{self.params}: {type(exc).__name__}: {_first_line(exc)}") from None
        if self.task == "regression":
            if is_classifier(model) or not hasattr(model, "fit") or not hasattr(model, "predict"):
                raise ScorerConfigError(f"scorer.estimator {self.estimator} is not a regressor, and the target is "
                                        "a regression target (RMSE needs predicted values); choose a regressor, "
                                        "or set dataset.task to a classification task")
        elif not hasattr(model, "fit") or not hasattr(model, "predict_proba"):
            if is_regressor(model):
                raise ScorerConfigError(f"scorer.estimator {self.estimator} is a regressor, and the target is "
                                        f"{self.task} classification; choose a classifier, or set "
                                        "dataset.task=regression")
            raise ScorerConfigError(f"scorer.estimator {self.estimator} has no "
                                    f"{'fit' if not hasattr(model, 'fit') else 'predict_proba'}: ROC-AUC needs a "
                                    "classifier that predicts class probabilities")
        elif is_regressor(model):
            raise ScorerConfigError(f"scorer.estimator {self.estimator} is a regressor, and the target is "
                                    f"{self.task} classification; choose a classifier, or set dataset.task=regression")
        validate = getattr(model, "_validate_params", None)  # scikit-learn's own parameter check, without data
        if callable(validate):
            try:
                validate()
            except Exception as exc:  # noqa: BLE001 - InvalidParameterError and the like
                raise ScorerConfigError(f"scorer.estimator {self.estimator}: {_first_line(exc)}") from None
        return model

    def fit_predict(self, A, y, B, categorical):
        # lazy: scikit-learn's pipeline module is only needed by the scikit-learn scorers
        from sklearn.pipeline import Pipeline

        model = Pipeline([("encode", sklearn_encoding(A.shape[1], categorical, self.encoding)),
                          ("model", self.build())])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and all-missing-column notices: the AUC tells
            model.fit(A, y)
            return self._predicted(model, B), model

    def importance(self, model: Any) -> np.ndarray | None:
        """The estimator's own importances (or |coefficients|), summed back onto the input columns."""
        fitted = model.named_steps["model"]
        values = getattr(fitted, "feature_importances_", None)
        if values is None and getattr(fitted, "coef_", None) is not None:
            values = np.abs(np.asarray(fitted.coef_, dtype="float64")).sum(axis=0)
        if values is None:
            return None
        try:
            owners = encoded_owners(model.named_steps["encode"])
        except Exception:  # noqa: BLE001 - an encoder whose columns cannot be traced: no importances
            return None
        values = np.asarray(values, dtype="float64").ravel()
        if len(values) != len(owners):
            return None
        n_inputs = len(model.named_steps["encode"].feature_names_in_)
        return np.bincount(owners, weights=np.nan_to_num(values), minlength=n_inputs)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "estimator": self.estimator, "params": dict(self.params),
                "encoding": dict(self.encoding), "seed": self.seed}


class LinearScorer(SklearnScorer):
    name = "linear"
    fixed = True
    estimators = {"classification": "sklearn.linear_model.LogisticRegression",
                  "regression": "sklearn.linear_model.Ridge"}


class RandomForestScorer(SklearnScorer):
    name = "random_forest"
    fixed = True
    estimators = {"classification": "sklearn.ensemble.RandomForestClassifier",
                  "regression": "sklearn.ensemble.RandomForestRegressor"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


SCORERS = {"lightgbm": LightGBMScorer, "tree": TreeScorer, "tabpfn": TabPFNScorer,
           "linear": LinearScorer, "random_forest": RandomForestScorer, "sklearn": SklearnScorer}


def make_scorer(cfg: Mapping[str, Any], seed: int = 0, task: str = "binary") -> Scorer:
    """The configured scorer for the run's task (binary, multiclass or regression)."""
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in SCORERS:
        raise ScorerConfigError(f"unknown scorer {name!r}; choose one of {sorted(SCORERS)}")
    params = dict(cfg.pop("params", None) or {})
    regression_params = cfg.pop("regression_params", None)  # a family whose regressor takes other parameters
    if check_task(task) == "regression" and regression_params is not None:
        params = dict(regression_params)
    estimator = cfg.pop("estimator", None)
    kind = SCORERS[name]
    if issubclass(kind, SklearnScorer):
        encoding = cfg.pop("encoding", None)
        if cfg:
            raise ScorerConfigError(f"scorer={name} has no setting {sorted(cfg)[0]!r}; it takes estimator, "
                                    "params and encoding")
        return kind(params, seed, estimator, encoding, task)
    fixed = kind.estimator_for(task)
    if estimator not in (None, fixed, *kind.estimators.values()):
        raise ScorerConfigError(f"scorer={name} always uses {fixed}; for another estimator use "
                                f"scorer=sklearn scorer.estimator={estimator}")
    params.update({k: v for k, v in cfg.items() if v is not None})  # e.g. scorer.model_path
    return kind(params, seed, task)


def check_scorer(cfg: Mapping[str, Any], seed: int = 0, task: str = "binary") -> dict[str, Any]:
    """The run's scorer config as the spec records it (with its estimator's import path), once it is
    known to build: an unknown kind, an estimator that cannot be imported or built, or one without
    ``predict_proba`` (or, for regression, a classifier) raises ``ScorerConfigError`` before any search starts."""
    scorer = make_scorer(cfg, seed, task)
    return {**dict(cfg), "estimator": scorer.estimator}


def auc(scorer: Scorer, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame, yB: pd.Series,
        clock: CostClock | None = None, raw: RawColumns | None = None) -> float:
    return auc_explained(scorer, XA, yA, XB, yB, clock, raw)[0]


def auc_explained(scorer: Scorer, XA: pd.DataFrame, yA: pd.Series, XB: pd.DataFrame, yB: pd.Series,
                  clock: CostClock | None = None, raw: RawColumns | None = None) -> tuple[float, np.ndarray | None]:
    """The task's metric on B (ROC-AUC, macro ROC-AUC or RMSE) of the scorer fitted on A, and the fitted
    model's own importances (pool A)."""
    proba, importance = scorer.predict_explained(XA, yA, XB, clock, raw)
    with charged(clock, "scorer"):
        return metric(getattr(scorer, "task", "binary"), yB.to_numpy(), proba), importance
