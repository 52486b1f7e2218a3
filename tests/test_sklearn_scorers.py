"""The scikit-learn scorers (linear, random_forest, sklearn by import path) on a tiny table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from efe.core.config import CONF_DIR
from evaluators.tabular.scorers import ScorerConfigError, auc, auc_explained, check_scorer, make_scorer


def conf(name: str, **over) -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "scorer" / f"{name}.yaml"), resolve=True)
    cfg.update(over)
    return cfg


def tiny(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A numeric signal with missing values, a categorical signal, a boolean and noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n)
    logit = 2.0 * x + np.where(colour == "red", 3.0, -1.0) + rng.normal(0, 0.5, n)
    X = pd.DataFrame({"x": np.where(rng.random(n) < 0.1, np.nan, x), "colour": colour,
                      "flag": rng.random(n) < 0.5, "noise": rng.normal(size=n)})
    return X, pd.Series((logit > 0).astype(int))


def pools():
    X, y = tiny()
    return X.iloc[:160], y.iloc[:160], X.iloc[160:], y.iloc[160:]


@pytest.mark.parametrize("cfg", [
    conf("linear"),
    conf("random_forest", params={"n_estimators": 30, "min_samples_leaf": 3}),
    conf("sklearn", estimator="sklearn.ensemble.ExtraTreesClassifier", params={"n_estimators": 30}),
    conf("sklearn", estimator="sklearn.ensemble.HistGradientBoostingClassifier", params={"max_iter": 30}),
], ids=["linear", "random_forest", "extra_trees", "hist_gb"])
def test_fit_on_pool_a_scores_pool_b_and_explains_each_input_column(cfg):
    XA, yA, XB, yB = pools()
    XB = XB.copy()
    XB.loc[XB.index[:5], "colour"] = "violet"  # a level pool A never saw
    scorer = make_scorer(cfg, seed=3)
    score, importance = auc_explained(scorer, XA, yA, XB, yB)
    assert 0.75 < score <= 1.0
    assert auc(make_scorer(cfg, seed=3), XA, yA, XB, yB) == score  # seeded: the same score again
    if importance is not None:  # per input column, the signals ahead of the noise
        assert importance.shape == (4,)
        assert importance[0] > importance[3] and importance[1] > importance[3]
    else:
        assert cfg["estimator"].endswith("HistGradientBoostingClassifier")  # it has no importances of its own


def test_linear_imputes_and_one_hot_encodes_inside_the_scorer():
    XA, yA, XB, yB = pools()
    scorer = make_scorer(conf("linear"), seed=0)
    proba, importance = scorer.predict_explained(XA, yA, XB)
    assert proba.shape == (len(XB),) and np.isfinite(proba).all()
    # the colour signal lives in three one-hot columns, summed back onto its one input column
    assert importance[1] > importance[3]


def test_description_names_kind_estimator_and_params():
    d = make_scorer(conf("random_forest"), seed=7).describe()
    assert d["kind"] == "random_forest" and d["estimator"] == "sklearn.ensemble.RandomForestClassifier"
    assert d["params"]["n_jobs"] == 1 and d["params"]["random_state"] == 7 and d["params"]["n_estimators"] == 200
    assert check_scorer(conf("linear"))["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert check_scorer({"name": "tree", "params": {}})["estimator"] == "sklearn.tree.DecisionTreeClassifier"


@pytest.mark.parametrize("cfg, words", [
    (conf("sklearn"), "needs scorer.estimator"),
    (conf("sklearn", estimator="sklearn.ensemble.NoSuchForest"), "cannot be imported"),
    (conf("sklearn", estimator="no_such_package_xyz.Model"), "cannot be imported"),
    (conf("sklearn", estimator="sklearn.svm.LinearSVC"), "has no predict_proba"),
    (conf("sklearn", estimator="sklearn.linear_model.LinearRegression"), "is a regressor, and the target is binary"),
    (conf("sklearn", estimator="sklearn.ensemble.ExtraTreesClassifier", params={"n_trees": 3}), "cannot be built"),
    (conf("random_forest", params={"n_estimators": -1}), "n_estimators"),
    (conf("linear", estimator="sklearn.svm.SVC"), "always uses sklearn.linear_model.LogisticRegression"),
    ({"name": "no_such_kind"}, "unknown scorer"),
])
def test_a_scorer_that_cannot_work_is_refused_with_one_line(cfg, words):
    with pytest.raises(ScorerConfigError, match=words) as err:
        check_scorer(cfg)
    assert "\n" not in str(err.value)
