"""A new user's first run on their own data: names, descriptions as typed, their own test file, warnings, refit."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

import efe
from efe.cli.args import shell_overrides
from efe.cli.common import _run_dir
from efe.core.config import ConfigError, compose
from efe.datasets.checks import CheckLimits, data_warnings
from efe.datasets.split import train_and_heldout
from efe.datasets.tabular import DatasetError, load_tabular, prepare
from efe.frozen.freeze import freeze, input_schema
from tests.conftest import ROOT, tab_program
from tests.helpers.example_data import churn_table, write_churn_files

DESCRIPTION = "one row per customer; churned = cancelled within 90 days, \"yes\" or 'no'"


@pytest.fixture(scope="module")
def named_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One short efe.tab run on a CSV with a leak column, a name with a space and the user's own test file."""
    tmp = tmp_path_factory.mktemp("first_run")
    files = write_churn_files(tmp)
    for name in ("churn.csv", "churn_test.csv"):
        frame = pd.read_csv(files[name])
        frame["account_status"] = np.where(frame["churned"] == "yes", "closed", "open")  # known only afterwards
        frame.to_csv(files[name], index=False)
    env = dict(os.environ)
    env.pop("EFE_LLM_API_BASE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={files['churn.csv']}",
         f"dataset.test_path={files['churn_test.csv']}", "dataset.target=churned", "dataset.name=Churn Q3",
         f"dataset.description={DESCRIPTION}", f"runs_root={tmp / 'runs'}", f"llm.cache_dir={tmp / 'cache'}",
         "evolution.iterations=1", "++selection.top_k=0", "scorer=tree", "report.models=[tree]"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp / "runs" / "tab").glob("*/*"))
    assert len(runs) == 1, runs
    return runs[0], proc


def test_dataset_name_names_the_run_directory_and_the_report(named_run):
    run, _ = named_run
    assert run.parent.name == "Churn_Q3"
    assert (run / "report.md").read_text().startswith("# EFE-Tab report: Churn Q3\n")
    assert json.loads((run / "report.json").read_text())["dataset"]["name"] == "Churn Q3"


def test_a_description_with_semicolons_equals_signs_commas_and_quotes_arrives_as_typed(named_run):
    run, _ = named_run
    assert json.loads((run / "context.json").read_text())["description"] == DESCRIPTION


def test_own_test_file_is_the_held_out_part_and_the_whole_training_file_is_searched(named_run):
    run, _ = named_run
    report = json.loads((run / "report.json").read_text())
    assert report["dataset"]["train_rows"] == 300 and report["dataset"]["heldout_rows"] == 150
    assert "the test file" in report["dataset"]["heldout_source"]
    assert "- Held-out part: the test file" in (run / "report.md").read_text()
    assert len(pd.read_parquet(run / "data" / "train.parquet")) == 300
    assert "test_path" not in (run / "spec.json").read_text()  # the spec never names the held-out part


def test_leak_warning_is_given_once_before_the_search_and_kept_in_the_report(named_run):
    run, proc = named_run
    lines = proc.stderr.splitlines()
    leak = [i for i, line in enumerate(lines) if "column 'account_status' almost determines the target" in line]
    start = next(i for i, line in enumerate(lines) if line.startswith("efe.tab: dataset"))
    assert len(leak) == 1 and leak[0] < start
    assert any("column 'customer_id' looks like an identifier" in line for line in lines[:start])
    assert "account_status" in (run / "report.md").read_text().split("## Data warnings")[1]
    assert "np.int64" not in proc.stderr and "np.float64" not in proc.stderr


def test_run_label_defaults_to_the_file_stem_and_is_safe_as_a_directory(tmp_path):
    runs = tmp_path / "runs"  # the run directory is created (claimed) as it is named
    assert _run_dir(str(runs), "tab", None, "data/train.csv", None, "T") == str(runs / "tab/train/T")
    assert _run_dir(str(runs), "tab", "Churn / Q3", "x.csv", None, "T") == str(runs / "tab/Churn_Q3/T")
    assert _run_dir(str(runs), "tab", "../..", None, None, "T") == str(runs / "tab/dataset/T")


def test_score_prints_a_note_when_the_name_comes_from_the_file(tmp_path, capsys):
    from efe.score import main as score

    files = write_churn_files(tmp_path, train_rows=120, test_rows=60)
    code = score([str(ROOT / "programs" / "tab_identity.py"), "dataset=csv", f"dataset.path={files['churn.csv']}",
                  "dataset.target=churned", "dataset.description=a; b = c", "scorer=tree"])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert "note: dataset named 'churn' after its file; set dataset.name=<name>" in err


@pytest.mark.parametrize("text", [DESCRIPTION, "a, b", "x=1", "trailing backslash \\", "it's", "plain"])
def test_free_text_overrides_reach_the_config_unchanged(text):
    args = shell_overrides(["dataset=csv", "dataset.path=x.csv", "dataset.target=t", f"dataset.description={text}"])
    assert compose("tab", args).dataset.description == text


def test_an_override_hydra_cannot_read_gets_a_one_line_error_with_the_fix():
    with pytest.raises(ConfigError, match=r"cannot read the override 'llm.api_base=a;b' .*quote a value") as err:
        shell_overrides(["llm.api_base=a;b"])
    assert "\n" not in str(err.value)
    assert shell_overrides(["dataset.name=null", "--cfg", "job", "llm.models=[{name: m, weight: 1}]"]) == \
        ["dataset.name=null", "--cfg", "job", "llm.models=[{name: m, weight: 1}]"]


def _train(tmp_path: Path) -> tuple:
    path = tmp_path / "train.csv"
    churn_table(200, seed=0).to_csv(path, index=False)
    return load_tabular({"path": str(path), "target": "churned"}), path


@pytest.mark.parametrize("change, match", [
    (lambda f: f.drop(columns=["contract"]), r"same columns as the training file \(missing 'contract'\)"),
    (lambda f: f.assign(extra=1), r"not in the training file: 'extra'"),
    (lambda f: f.assign(churned="maybe"), r"values the training file does not have: 'maybe' \(training values: 'no', 'yes'\)"),
    (lambda f: f.assign(churned="no"), r"holds only one class of 'churned' \('no' in 80 rows\)"),
    (lambda f: f.assign(tenure_months="long"), r"column 'tenure_months' in the test file '.*' should be numeric .* text such as 'long'"),
])
def test_a_test_file_that_does_not_match_the_training_file_is_refused_in_one_line(tmp_path, change, match):
    train, train_path = _train(tmp_path)
    test_path = tmp_path / "test.csv"
    change(churn_table(80, seed=1)).to_csv(test_path, index=False)
    with pytest.raises(DatasetError, match=match) as err:
        train_and_heldout(train, str(test_path), 0.25, 0, train_path=str(train_path))
    assert "\n" not in str(err.value)


def test_test_file_keeps_the_training_columns_and_kinds(tmp_path):
    train, train_path = _train(tmp_path)
    test = churn_table(80, seed=1)
    test["monthly_charges"] = test["monthly_charges"].astype(str)  # numbers read as text elsewhere
    test[list(reversed(test.columns))].to_csv(tmp_path / "test.csv", index=False)
    part, held, source = train_and_heldout(train, str(tmp_path / "test.csv"), 0.25, 0)
    assert part is train and len(held.y) == 80 and "the test file" in source
    assert list(held.X.columns) == list(train.X.columns)
    assert (held.X.dtypes == train.X.dtypes).all()
    with pytest.raises(DatasetError, match="is the training file itself"):
        train_and_heldout(train, str(train_path), 0.25, 0, train_path=str(train_path))
    _, _, split_source = train_and_heldout(train, None, 0.25, 0)
    assert "stratified 25% split" in split_source


def test_data_checks_name_leaks_ids_and_a_tiny_class_but_not_honest_columns():
    rng = np.random.default_rng(0)
    n = 400
    y = rng.random(n) < 0.3
    frame = pd.DataFrame({
        "customer_id": np.arange(5000, 5000 + n), "user_key": rng.permutation(n) * 7,
        "name": [f"person {i}" for i in range(n)],
        "honest": rng.normal(size=n) + y, "code": rng.choice(["a", "b", "c"], n),
        "refund": np.where(y, 1.0, 0.0) + rng.normal(0, 0.01, n),          # |corr| ~ 1
        "days_since_cancel": np.where(y, rng.integers(1, 90, n), np.nan),  # present for one class only
        "status": np.where(y, "closed", "open"),                           # one value per class
        "label": np.where(y, "yes", "no"),
    })
    ds = prepare(frame, "label", name="toy")
    warnings = data_warnings(ds, CheckLimits.from_conf())
    named = {w.split("'")[1] for w in warnings if w.startswith("column")}
    assert named == {"customer_id", "user_key", "name", "refund", "days_since_cancel", "status"}
    assert not any("minority" in w for w in warnings)
    tiny = prepare(frame.assign(label=np.where(np.arange(n) < 10, "yes", "no")), "label", name="tiny")
    assert any("minority class of 'label' ('yes') has only 10 of 400" in w
               for w in data_warnings(tiny, CheckLimits.from_conf()))
    assert not data_warnings(tiny, dataclasses.replace(CheckLimits.from_conf(), min_minority_rows=5, id_unique_fraction=1.1, leak_auc=1.0))


def test_dataset_errors_show_values_not_numpy_reprs(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"a": [1], "t": [0]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"is constant \(0 in all 1 rows\)"):
        load_tabular({"path": str(path), "target": "t"})
    ds = prepare(pd.DataFrame({"a": [1, 2, 3, 4], "k": [7] * 4, "t": [0, 1, 0, 1]}), "t", name="x")
    assert ds.warnings == ["dropped column 'k': it is constant (7)"]
    with pytest.raises(DatasetError, match=r"positive_label 5 is not a value of target 't' \(values: 0, 1\)"):
        prepare(pd.DataFrame({"a": [1, 2], "t": [0, 1]}), "t", name="x", positive_label=5)


CENTRE = tab_program("return X.assign(a_centred=X['a'] - state['mean'])", "return {'mean': float(X['a'].mean())}")


def test_load_program_refit_relearns_the_state_on_the_data_given_to_fit(tmp_path):
    rng = np.random.default_rng(0)
    old = pd.DataFrame({"a": rng.normal(0, 1, 50), "b": rng.normal(size=50)})
    new = pd.DataFrame({"a": rng.normal(10, 1, 60), "b": rng.normal(size=60)})
    y_new = pd.Series((new["b"] > 0).astype(int))
    freeze(tmp_path / "frozen", "tab", CENTRE, {"mean": float(old["a"].mean())}, schema=input_schema(old),
           output_columns=["a", "b", "a_centred"])

    kept = efe.load_program(tmp_path)
    assert kept.state_["mean"] == pytest.approx(old["a"].mean())
    assert kept.fit(new, y_new).state_["mean"] == pytest.approx(old["a"].mean())  # refit=False keeps it

    relearn = efe.load_program(tmp_path, refit=True)
    with pytest.raises(NotFittedError):
        relearn.transform(new)
    out = relearn.fit(new, y_new).transform(new)
    assert relearn.state_["mean"] == pytest.approx(new["a"].mean())
    assert abs(out["a_centred"].mean()) < 1e-9

    pipe = Pipeline([("features", efe.load_program(tmp_path, refit=True)),
                     ("model", DecisionTreeClassifier(max_depth=2, random_state=0))]).fit(new, y_new)
    assert pipe.named_steps["features"].state_["mean"] == pytest.approx(new["a"].mean())
    assert pipe.score(new, y_new) > 0.9
