"""Frozen programs as a product: sklearn transformer, standalone export, chunked apply, reload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import efe
from tests.conftest import NO_PLOTS, ROOT, ratio_table
from tests.helpers.frozen_check import reload_and_transform


@pytest.fixture(scope="module")
def tab_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("frozen")
    csv = tmp / "ratio.csv"
    table = ratio_table(600, seed=2)
    table["group"] = np.where(table["n1"] > 0, "up", "down")  # a text column too
    table.to_csv(csv, index=False)
    env = dict(os.environ)
    env.pop("EFE_LLM_API_BASE", None)
    proc = subprocess.run([sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={csv}",
                           "dataset.target=label", "scorer=tree", "evolution.iterations=12", f"runs_root={tmp}/runs",
                           f"llm.cache_dir={tmp}/cache", "report.models=[tree]", NO_PLOTS],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = next((tmp / "runs" / "tab").glob("*/*"))
    assert json.loads((run / "report.json").read_text())["winner"]["source"]
    return run


@pytest.fixture(scope="module")
def heldout(tab_run) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_parquet(tab_run / "data" / "heldout.parquet")
    return frame.drop(columns=["label"]), frame["label"]


def test_transformer_reproduces_the_frozen_transform_bit_for_bit(tab_run, heldout):
    X, _ = heldout
    transformer = efe.load_program(tab_run)
    out = transformer.transform(X)
    reproduced, in_sandbox = reload_and_transform(tab_run, X)
    pd.testing.assert_frame_equal(out, in_sandbox, check_exact=True)
    pd.testing.assert_frame_equal(out, reproduced, check_exact=True)
    one = transformer.transform(X.iloc[[5]])
    pd.testing.assert_frame_equal(one, out.iloc[[5]], check_exact=True)
    assert list(transformer.get_feature_names_out()) == list(out.columns)


def test_transformer_in_a_pipeline_with_clone_and_pandas_output(tab_run, heldout):
    X, y = heldout
    transformer = efe.load_program(tab_run / "frozen")
    numeric = Pipeline([("features", transformer), ("select", _NumericOnly()),
                        ("model", LogisticRegression(max_iter=500))])
    numeric.fit(X, y)
    assert 0.5 < numeric.score(X, y) <= 1.0
    cloned = clone(transformer)
    assert cloned.path == transformer.path and not hasattr(cloned, "state_")
    cloned.set_output(transform="pandas")
    out = cloned.fit(X).transform(X)
    assert isinstance(out, pd.DataFrame) and out.index.equals(X.index)
    refit = efe.load_program(tab_run)
    refit.set_params(refit=True)
    assert refit.fit(X, y).transform(X).shape == out.shape


def test_estimator_checks_that_apply_to_a_fixed_schema_pass(tab_run):
    """Checks that feed random arrays of another width or type cannot apply to a program frozen for
    given columns; every check either passes or fails only on that fixed-schema message."""
    from sklearn.utils.estimator_checks import check_estimator

    from efe.frozen.transformer import FrozenFeatureProgram

    results = check_estimator(FrozenFeatureProgram(tab_run / "frozen"), on_fail=None)
    schema_messages = ("the frozen program expects", "as when frozen")
    def chain(exc: BaseException | None) -> str:
        return "" if exc is None else f"{exc} {chain(exc.__cause__ or exc.__context__)}"

    unexpected = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"
                  and not any(m in chain(r["exception"]) for m in schema_messages)]
    assert not unexpected, unexpected
    passed = {r["check_name"] for r in results if r["status"] == "passed"}
    assert {"check_estimator_sparse_array", "check_estimator_sparse_matrix", "check_get_params_invariance",
            "check_parameters_default_constructible", "check_no_attributes_set_in_init",
            "check_estimators_unfitted", "check_set_params", "check_estimator_repr",
            "check_estimator_cloneable", "check_mixin_order"} <= passed, sorted(passed)


def test_schema_errors_name_the_problem(tab_run, heldout):
    X, _ = heldout
    transformer = efe.load_program(tab_run)
    with pytest.raises(ValueError, match=r"'a' missing .*'A' looks like a renamed 'a'"):
        transformer.transform(X.rename(columns={"a": "A"}))
    with pytest.raises(ValueError, match="column 'b' .* should be numeric"):
        transformer.transform(X.assign(b="high"))


def test_export_runs_in_an_interpreter_with_only_numpy_and_pandas(tab_run, heldout, tmp_path):
    X, _ = heldout
    out_file = tmp_path / "feature_program.py"
    proc = subprocess.run([sys.executable, "-m", "efe.export", f"run={tab_run}", f"out={out_file}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = out_file.read_text()
    assert "Held-out ROC-AUC" in text and "New features" in text
    assert "import efe" not in text and "from efe" not in text
    X.to_csv(tmp_path / "X.csv", index=False)
    exact = dict(float_precision="round_trip")  # both sides read identical floats
    expected = efe.load_program(tab_run).transform(pd.read_csv(tmp_path / "X.csv", **exact))
    site = _numpy_pandas_only(tmp_path / "site")
    script = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
              "import pandas as pd, feature_program as fp\n"
              "assert 'efe' not in sys.modules and 'sklearn' not in sys.modules and 'scipy' not in sys.modules\n"
              "X = pd.read_csv(sys.argv[3], float_precision='round_trip')\n"
              "fp.transform(X).to_pickle(sys.argv[4])\n")
    run = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(site), str(tmp_path),
                          str(tmp_path / "X.csv"), str(tmp_path / "out.pkl")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    got = pd.read_pickle(tmp_path / "out.pkl")  # our own file from our own test process
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_apply_in_chunks_equals_the_in_memory_transform(tab_run, heldout, tmp_path):
    X, _ = heldout
    big = pd.concat([X] * 7, ignore_index=True)
    big.to_csv(tmp_path / "big.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "efe.apply", f"frozen={tab_run}", f"input={tmp_path / 'big.csv'}",
                           f"output={tmp_path / 'out.parquet'}", "chunk_rows=100"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = pd.read_parquet(tmp_path / "out.parquet")
    expected = efe.load_program(tab_run).transform(pd.read_csv(tmp_path / "big.csv"))
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_exact=True)
    assert len(got) > 100
    bad = tmp_path / "bad.csv"
    big.rename(columns={"b": "B"}).head(3).to_csv(bad, index=False)
    proc = subprocess.run([sys.executable, "-m", "efe.apply", f"frozen={tab_run}", f"input={bad}",
                           f"output={tmp_path / 'x.parquet'}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "'b' missing" in proc.stderr and "Traceback" not in proc.stderr


class _NumericOnly:
    """Keeps numeric columns (the logistic regression cannot take text)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X.select_dtypes("number").fillna(0.0)

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self


def _numpy_pandas_only(site: Path) -> Path:
    """A folder exposing numpy, pandas and their own dependencies, and nothing else."""
    import dateutil
    import numpy
    import pytz
    import six
    import tzdata

    site.mkdir()
    for module in (numpy, pd, dateutil, pytz, tzdata):
        src = Path(module.__file__).parent
        (site / src.name).symlink_to(src)
    (site / "six.py").symlink_to(Path(six.__file__))
    libs = Path(numpy.__file__).parent.parent / "numpy.libs"
    if libs.exists():
        (site / "numpy.libs").symlink_to(libs)
    return site
