"""Targets other than binary: ``dataset.task=auto|binary|multiclass|regression``.

Short real runs through the command line (a regression target with scorer=linear, a multiclass target
with an ExtraTreesClassifier), then the parts on their own: task inference, bad targets refused in one
line, a leak caught with a continuous target, the regressors, the memory fingerprint, the offline
proposer's label moves on a numeric target, and the bundled examples.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import efe
from efe.core.task import gain, macro_auc, metric, paired_bootstrap_se
from efe.datasets.checks import CheckLimits, data_warnings
from efe.datasets.tabular import DatasetError, load_tabular, prepare
from efe.proposer.tab_moves import Move, render_program
from efe.steering.memory import tab_fingerprint, tab_schema
from efe.tab.context import build_context, render_context
from evaluators.tabular.scorers import ScorerConfigError, auc, check_scorer, make_scorer
from tests.conftest import ROOT
from tests.test_moves import run_gates
from tests.test_scorer_runs import efe_tab, only_run


def regression_table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A numeric target driven by log(a/b) (a linear model cannot build it from a and b) and a category."""
    rng = np.random.default_rng(seed)
    a, b = rng.lognormal(0.0, 1.0, n), rng.lognormal(0.0, 1.0, n)
    colour = rng.choice(["red", "green", "blue"], n)
    price = 3.0 * np.log(a / b) + (colour == "red") + rng.normal(0.0, 0.5, n)
    return pd.DataFrame({"a": a, "b": b, "n1": rng.normal(size=n), "colour": colour, "price": price})


def multiclass_table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.lognormal(0.0, 1.0, n), rng.lognormal(0.0, 1.0, n)
    r = np.log(a / b) + rng.normal(0.0, 0.3, n)
    kind = np.where(r > 0.5, "high", np.where(r < -0.5, "low", "middle"))
    return pd.DataFrame({"a": a, "b": b, "n1": rng.normal(size=n), "kind": kind})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tasks")
    regression_table().to_csv(path / "prices.csv", index=False)
    multiclass_table().to_csv(path / "kinds.csv", index=False)
    return path


def _review(run: Path) -> str:
    card = subprocess.run([sys.executable, "-m", "efe.review", str(run)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert card.returncode == 0, card.stderr[-2000:]
    return card.stdout


# ----------------------------------------------------------------------------- through the command line
def test_a_numeric_target_runs_a_regression_search_with_scorer_linear(tmp_path, data_dir):
    csv = data_dir / "prices.csv"
    proc = efe_tab(tmp_path, csv, "dataset.target=price", "scorer=linear", "selection.top_k=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the console says what was inferred and how to override it
    assert ("task: regression, inferred from target 'price' (numeric, 240 distinct values); set "
            "dataset.task=binary|multiclass to override") in proc.stderr
    run = only_run(tmp_path)
    spec = json.loads((run / "spec.json").read_text())
    assert spec["task"] == "regression" and spec["scorer"]["estimator"] == "sklearn.linear_model.Ridge"
    report = json.loads((run / "report.json").read_text())
    assert report["dataset"]["task"] == "regression" and report["dataset"]["metric"] == "RMSE"
    rows = {r["model"]: r for r in report["heldout"]}
    assert set(rows) == {"linear", "tree"}
    linear = rows["linear"]
    assert linear["metric"] == "RMSE" and linear["se_method"] == "paired bootstrap"
    assert linear["auc_no_fe"] == pytest.approx(linear["no_fe"]["rmse"])  # the metric is the RMSE itself
    assert linear["delta"] == pytest.approx(1.0 - linear["auc_efe"] / linear["auc_no_fe"])  # relative reduction
    identity = report["winner"]["kind"] == "seed"
    assert np.isfinite(linear["delta_se"]) and (linear["delta_se"] == 0.0 if identity else linear["delta_se"] > 0)
    assert {"mae", "r2"} <= set(linear["efe"])
    md = (run / "report.md").read_text()
    assert "- task: regression, inferred from target 'price'" in md and "## Held-out RMSE" in md
    assert "relative RMSE reduction ± SE (paired bootstrap)" in md and "MAE" in md and "R²" in md
    manifest = json.loads((run / "frozen" / "manifest.json").read_text())
    assert manifest["task"] == "regression" and manifest["metric"] == "RMSE"
    assert manifest["scorer"]["estimator"] == "sklearn.linear_model.Ridge"
    X = pd.read_csv(csv).drop(columns=["price"])
    assert len(efe.load_program(run).transform(X)) == len(X)
    card = _review(run)
    assert "Task: regression (RMSE; lower is better" in card and "RMSE on the held-out part" in card


def test_a_multiclass_target_runs_with_an_extra_trees_classifier(tmp_path, data_dir):
    csv = data_dir / "kinds.csv"
    proc = efe_tab(tmp_path, csv, "dataset.target=kind", "scorer=sklearn",
                   "scorer.estimator=sklearn.ensemble.ExtraTreesClassifier",
                   "scorer.params={n_estimators: 30, min_samples_leaf: 3}", "selection.top_k=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "task: multiclass, inferred from target 'kind' (non-numeric, 3 distinct values)" in proc.stderr
    run = only_run(tmp_path)
    spec = json.loads((run / "spec.json").read_text())
    assert spec["task"] == "multiclass" and spec["dataset"]["classes"] == ["high", "low", "middle"]
    report = json.loads((run / "report.json").read_text())
    rows = {r["model"]: r for r in report["heldout"]}
    assert set(rows) == {"sklearn", "tree"}
    assert rows["sklearn"]["estimator"] == "sklearn.ensemble.ExtraTreesClassifier"
    assert rows["sklearn"]["metric"] == "macro one-vs-rest ROC-AUC"
    assert 0.6 < rows["sklearn"]["auc_no_fe"] <= 1.0  # macro AUC: the classes are learnable
    assert rows["sklearn"]["delta"] == pytest.approx(rows["sklearn"]["auc_efe"] - rows["sklearn"]["auc_no_fe"])
    md = (run / "report.md").read_text()
    assert "## Held-out macro one-vs-rest ROC-AUC" in md and "multiclass, 3 classes 'high', 'low', 'middle'" in md
    manifest = json.loads((run / "frozen" / "manifest.json").read_text())
    assert manifest["task"] == "multiclass" and manifest["classes"] == ["high", "low", "middle"]
    X = pd.read_csv(csv).drop(columns=["kind"])
    assert len(efe.load_program(run).transform(X)) == len(X)


# ----------------------------------------------------------------------------- task inference
@pytest.mark.parametrize("values, task", [
    (lambda n, r: np.where(r.random(n) < 0.5, "yes", "no"), "binary"),
    (lambda n, r: r.integers(0, 2, n), "binary"),
    (lambda n, r: r.choice(["a", "b", "c"], n), "multiclass"),
    (lambda n, r: r.integers(1, 6, n), "multiclass"),          # few integer values: classes
    (lambda n, r: r.integers(0, 500, n), "regression"),        # many integer values: a quantity
    (lambda n, r: r.normal(size=n), "regression"),
], ids=["text2", "int2", "text3", "int5", "int500", "float"])
def test_auto_infers_the_task_from_the_target(values, task):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "t": values(200, rng)})
    ds = prepare(frame, "t", name="t")
    assert ds.task == task and "inferred from target 't'" in ds.task_note
    assert ds.y.dtype.kind == ("f" if task == "regression" else "i")
    if task == "multiclass":
        assert sorted(ds.y.unique()) == list(range(len(ds.classes)))


def test_a_given_task_overrides_the_inference():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "t": rng.integers(1, 6, 200)})
    ds = prepare(frame, "t", name="t", task="regression")
    assert ds.task == "regression" and ds.task_note.startswith("task: regression (dataset.task=regression")
    assert load_tabular({"name": "wine", "task": "auto"}).task == "multiclass"
    assert load_tabular({"name": "diabetes"}).task == "regression"


# ----------------------------------------------------------------------------- bad targets
@pytest.mark.parametrize("target, task, match", [
    ([1.0, np.nan] + [2.0, 3.5] * 20, "auto", r"target 't' in the table has 1 missing \(NaN\) value\(s\); a regression"),
    ([1.5, np.inf] + [2.0, 3.5] * 20, "regression", r"has 1 infinite value\(s\); a regression target must be finite"),
    ([2.5] * 42, "regression", r"target 't' in the table is constant \(2.5 in all 42 rows\)"),
    (["a"] * 42, "auto", r"target 't' in the table is constant \('a' in all 42 rows\)"),
    ([0.5, 1.5, 2.5] * 14, "binary", r"has 3 distinct values \(0.5, 1.5, 2.5\) but dataset.task=binary needs two; "
                                     r"set dataset.task=regression"),
    (["x", "y", "z"] * 14, "binary", r"dataset.task=binary needs two; set dataset.task=multiclass"),
    (["x", "y"] * 21, "multiclass", r"has two values \('x', 'y'\); set dataset.task=binary"),
    (["x", "y"] * 21, "regression", r"target 't' in the table is not numeric .*dataset.task=regression needs numbers"),
    (["x", "y"] * 20 + ["z", "z"], "auto", r"class 'z' of target 't' in the table has only 2 row\(s\), fewer than "
                                           r"checks.min_class_rows=5"),
], ids=["nan", "inf", "constant_number", "constant_class", "numeric_binary", "text_binary", "two_multiclass",
        "text_regression", "tiny_class"])
def test_bad_targets_are_refused_in_one_line(target, task, match):
    frame = pd.DataFrame({"x": np.arange(len(target), dtype=float), "t": target})
    with pytest.raises(DatasetError, match=match) as err:
        prepare(frame, "t", name="t", task=task, min_class_rows=5)
    assert "\n" not in str(err.value)


def test_a_tiny_class_is_refused_before_the_search_from_the_command_line(tmp_path):
    frame = multiclass_table(120)
    frame.loc[:2, "kind"] = "rare"
    csv = tmp_path / "rare.csv"
    frame.to_csv(csv, index=False)
    proc = efe_tab(tmp_path, csv, "dataset.target=kind", "scorer=tree", "checks.min_class_rows=4")
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "class 'rare' of target 'kind'" in errors[0] and "min_class_rows=4" in errors[0]
    assert "Traceback" not in proc.stderr and not list((tmp_path / "runs").rglob("lineage.jsonl"))


# ----------------------------------------------------------------------------- leaks, metrics, scorers
def test_the_leak_check_catches_target_plus_noise_with_a_continuous_target():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.normal(10.0, 3.0, n)
    frame = pd.DataFrame({"honest": y + rng.normal(0.0, 4.0, n), "noise": rng.normal(size=n),
                          "leaky": y + rng.normal(0.0, 0.05, n),                 # the target, plus noise
                          "bucket": np.round(y, 1).astype(str),                  # one value per target level
                          "price": y})
    ds = prepare(frame, "price", name="toy")
    assert ds.task == "regression"
    warnings = data_warnings(ds, CheckLimits.from_conf())
    named = {w.split("'")[1] for w in warnings if w.startswith("column")}
    assert named == {"leaky", "bucket"}
    assert not any("minority" in w for w in warnings)


def test_the_leak_check_catches_a_class_mapping_with_several_classes():
    rng = np.random.default_rng(2)
    kind = rng.choice(["a", "b", "c"], 300)
    frame = pd.DataFrame({"code": pd.Series(kind).map({"a": "x1", "b": "x2", "c": "x3"}),
                          "noise": rng.normal(size=300), "kind": kind})
    warnings = data_warnings(prepare(frame, "kind", name="toy"), CheckLimits.from_conf())
    assert [w.split("'")[1] for w in warnings if w.startswith("column")] == ["code"]


def test_metrics_and_gain_follow_the_task():
    y = np.array([0, 1, 2, 0, 1, 2])
    perfect = np.eye(3)[y]
    assert macro_auc(y, perfect) == 1.0 and metric("multiclass", y, perfect) == 1.0
    assert metric("regression", [1.0, 2.0], [1.0, 4.0]) == pytest.approx(np.sqrt(2.0))
    assert gain("regression", 2.0, 1.5) == pytest.approx(0.25)  # 25% lower RMSE: higher is better
    assert gain("binary", 0.70, 0.75) == pytest.approx(0.05)
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    se = paired_bootstrap_se("regression", truth, truth + rng.normal(0, 0.5, 200), truth + rng.normal(0, 1, 200), 100, 0)
    assert 0.0 < se < 0.2


@pytest.mark.parametrize("name, estimator", [
    ("linear", "sklearn.linear_model.Ridge"), ("random_forest", "sklearn.ensemble.RandomForestRegressor"),
    ("lightgbm", "lightgbm.LGBMRegressor"), ("tree", "sklearn.tree.DecisionTreeRegressor"),
])
def test_every_scorer_family_has_a_regressor(name, estimator):
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "scorer" / f"{name}.yaml"))
    assert check_scorer(cfg, 0, "regression")["estimator"] == estimator
    table = regression_table(200)
    X, y = table.drop(columns=["price", "colour"]), table["price"]
    rmse = auc(make_scorer(cfg, 0, "regression"), X[:150], y[:150], X[150:], y[150:])
    assert 0.0 < rmse < float(y.std()) * 1.5


def test_an_estimator_that_does_not_match_the_task_is_refused_in_one_line():
    cfg = {"name": "sklearn", "estimator": "sklearn.ensemble.ExtraTreesClassifier", "params": {},
           "encoding": {"missing_indicator": True, "max_categories": 20}}
    with pytest.raises(ScorerConfigError, match="ExtraTreesClassifier is not a regressor"):
        check_scorer(cfg, 0, "regression")
    with pytest.raises(ScorerConfigError, match="ExtraTreesRegressor is a regressor, and the target is multiclass"):
        check_scorer({**cfg, "estimator": "sklearn.ensemble.ExtraTreesRegressor"}, 0, "multiclass")


# ----------------------------------------------------------------------------- memory, context, proposer
def test_the_task_is_part_of_the_memory_fingerprint_and_the_prompt():
    table = regression_table(200)
    as_regression = build_context(prepare(table, "price", name="p"))
    as_classes = build_context(prepare(table.assign(price=np.where(table["price"] > 0, "up", "down")), "price",
                                       name="p"))
    assert tab_fingerprint(as_regression, "price") != tab_fingerprint(as_classes, "price")
    assert tab_schema(as_regression, "price")["must"] == {"target": "price", "task": "regression"}
    assert tab_schema(as_classes, "price")["must"] == {"target": "price"}  # binary: as before tasks
    text = render_context(as_regression)
    assert "Task: regression; target 'price'" in text and "RMSE" in text and "positive rate" not in text


@pytest.mark.parametrize("kind, params", [("te_oof", (5, 1.0, 10.0)), ("target_enc", (20,)),
                                          ("expand", ("ratio", 2))])
def test_label_moves_learn_from_a_numeric_target(kind, params):
    table = regression_table(300)
    X, y = table.drop(columns=["price"]), table["price"]
    columns = ("colour",) if kind != "expand" else ("a", "b", "n1")
    source = render_program([Move(kind, columns, params)])
    T, state = run_gates(source, X, y)
    new = [c for c in T.columns if c not in X.columns]
    assert new and all(T[c].notna().all() for c in new)
    if kind != "expand":  # a target mean per level: red is about one unit above the others
        rates = next(v["rate"] for v in state.values() if isinstance(v, dict) and "rate" in v)
        assert rates["red"] > max(rates["green"], rates["blue"]) + 0.5
