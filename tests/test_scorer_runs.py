"""``python -m efe.tab scorer=linear | scorer=sklearn scorer.estimator=...``: short real runs, and refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import efe
from tests.conftest import NO_PLOTS, ROOT, ratio_table


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    """The ratio table with a categorical column and missing values, for the scorers' own encoding."""
    table = ratio_table(300, seed=5)
    rng = np.random.default_rng(5)
    table["colour"] = rng.choice(["red", "green", "blue"], len(table))
    table.loc[rng.random(len(table)) < 0.1, "n1"] = np.nan
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    table.to_csv(path, index=False)
    return path


def efe_tab(tmp_path: Path, csv: Path, *overrides: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={csv}", "dataset.target=label",
            f"runs_root={tmp_path / 'runs'}", f"llm.cache_dir={tmp_path / 'cache'}", "llm=offline",
            "evolution.iterations=2", "report.models=[tree]", NO_PLOTS, *overrides]
    env = dict(os.environ)
    env.pop("EFE_LLM_API_BASE", None)
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env,
                          stdin=subprocess.DEVNULL)


def only_run(tmp_path: Path) -> Path:
    runs = list((tmp_path / "runs" / "tab").glob("*/*"))
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize("overrides, kind, estimator, param", [
    (["scorer=linear", "selection.top_k=2"], "linear", "sklearn.linear_model.LogisticRegression", ("C", 1.0)),
    (["scorer=sklearn", "scorer.estimator=sklearn.ensemble.ExtraTreesClassifier",
      "scorer.params={n_estimators: 40, min_samples_leaf: 3}", "selection.top_k=0"],
     "sklearn", "sklearn.ensemble.ExtraTreesClassifier", ("n_estimators", 40)),
], ids=["linear", "extra_trees"])
def test_run_freezes_a_program_and_names_the_scorer_everywhere(tmp_path, tiny_csv, overrides, kind, estimator, param):
    proc = efe_tab(tmp_path, tiny_csv, *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path)
    key, value = param
    spec = json.loads((run / "spec.json").read_text())
    assert spec["scorer"]["name"] == kind and spec["scorer"]["estimator"] == estimator
    report = json.loads((run / "report.json").read_text())
    assert report["search_scorer"] == kind
    assert report["scorer"]["estimator"] == estimator and report["scorer"]["params"][key] == value
    assert report["scorer"]["params"]["random_state"] == 0  # seeded with the run's seed
    # the held-out table scores with the run's scorer next to the comparison model (report.models=[tree])
    models = {r["model"]: r for r in report["heldout"]}
    assert set(models) == {kind, "tree"} and models[kind]["estimator"] == estimator
    assert 0.5 < models[kind]["auc_no_fe"] <= 1.0
    md = (run / "report.md").read_text()
    assert f"- Search scorer: {kind} ({estimator}) with parameters" in md
    assert f"The search scored programs with {kind} only; the others (tree) are comparisons" in md
    manifest = json.loads((run / "frozen" / "manifest.json").read_text())
    assert manifest["scorer"] == report["scorer"]
    assert manifest["heldout_report"].startswith("report.json")  # frozen first; the held-out verdict comes after
    card = subprocess.run([sys.executable, "-m", "efe.review", str(run)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert f"The search scored programs with **{kind} ({estimator}) with parameters" in card.stdout, card.stderr[-2000:]
    X = pd.read_csv(tiny_csv).drop(columns=["label"])  # the frozen program reloads and transforms the table
    assert len(efe.load_program(run).transform(X)) == len(X)


@pytest.mark.parametrize("overrides, words", [
    (["scorer=sklearn", "scorer.estimator=sklearn.ensemble.NoSuchForest"],
     "scorer.estimator 'sklearn.ensemble.NoSuchForest' cannot be imported"),
    (["scorer=sklearn", "scorer.estimator=no_such_package_xyz.Model"],
     "scorer.estimator 'no_such_package_xyz.Model' cannot be imported"),
    (["scorer=sklearn", "scorer.estimator=sklearn.svm.LinearSVC"],
     "scorer.estimator sklearn.svm.LinearSVC has no predict_proba"),
    (["scorer=sklearn"], "scorer=sklearn needs scorer.estimator"),
], ids=["no_class", "no_module", "no_predict_proba", "no_estimator"])
def test_an_unusable_estimator_is_refused_with_one_line_before_the_search(tmp_path, tiny_csv, overrides, words):
    proc = efe_tab(tmp_path, tiny_csv, *overrides)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "iter " not in proc.stderr
    assert not list((tmp_path / "runs").rglob("lineage.jsonl"))  # no search started
