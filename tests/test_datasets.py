"""Dataset loading: bundled tables work offline; bad input gets a clear error naming it."""

from __future__ import annotations

import pandas as pd
import pytest

from efe.datasets.bundled import TABLES
from efe.datasets.split import outer_split
from efe.datasets.tabular import DatasetError, load_tabular, prepare


@pytest.mark.parametrize("name", sorted(TABLES))
def test_bundled_tables_load_as_their_task(name):
    ds = load_tabular({"name": name})
    assert ds.task == TABLES[name].task if TABLES[name].task != "auto" else ds.task == "binary"
    if ds.task == "regression":
        assert ds.y.dtype == "float64" and ds.y.nunique() > 100
    else:
        assert set(ds.y.unique()) == set(range(len(ds.classes)))
    assert ds.X.shape[0] == ds.y.shape[0] > 100
    assert ds.target not in ds.X.columns
    assert len(ds.description) > 50


def test_mixed_type_tables_are_bundled():
    mixed = [n for n in TABLES if (load_tabular({"name": n}).X.dtypes == object).any()]
    assert len(mixed) >= 2


def test_csv_and_parquet_round_trip(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 3, "c": list("abab") * 3, "t": ["y", "n", "y", "n"] * 3})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for path in ("d.csv", "d.parquet"):
        ds = load_tabular({"path": str(tmp_path / path), "target": "t", "description": "toy"})
        assert list(ds.X.columns) == ["x", "c"] and ds.positive_label == "y"
        assert ds.y.tolist() == [1, 0, 1, 0] * 3


@pytest.mark.parametrize("name, content, match", [
    ("nope.csv", None, "does not exist"),
    ("empty.csv", "", "is empty"),
    ("header.csv", "a,b,t\n", "no data rows"),
    ("dup.csv", "a,a,t\n1,2,y\n3,4,n\n", "duplicate column names: 'a'"),
    ("x.json", "{}", "unsupported file type"),
])
def test_file_problems_are_named(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DatasetError, match=match):
        load_tabular({"path": str(path), "target": "t"})


def test_missing_target_lists_columns_and_suggests():
    frame = pd.DataFrame({"income": [1, 2], "label": [0, 1]})
    with pytest.raises(DatasetError, match=r"target column 'lable' is missing .*found: income, label.*did you mean 'label'"):
        prepare(frame, "lable", name="t")


def test_constant_targets_and_three_classes_for_a_binary_task_are_refused():
    with pytest.raises(DatasetError, match=r"is constant \('yes' in all 3 rows\)"):
        prepare(pd.DataFrame({"a": [1, 2, 3], "t": ["yes"] * 3}), "t", name="t")
    with pytest.raises(DatasetError, match=r"3 distinct values .*dataset.task=binary needs two"):
        prepare(pd.DataFrame({"a": [1, 2, 3], "t": ["a", "b", "c"]}), "t", name="t", task="binary")


def test_all_nan_and_constant_columns_are_dropped_with_warning(caplog):
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4], "gone": [None] * 4, "same": [7] * 4, "t": [0, 1, 0, 1]})
    ds = prepare(frame, "t", name="t")
    assert list(ds.X.columns) == ["a"]
    assert any("all values are missing" in w for w in ds.warnings)
    assert any("constant" in w for w in ds.warnings)
    assert "gone" in caplog.text


def test_rows_without_target_are_dropped_and_nothing_left_is_an_error():
    ds = prepare(pd.DataFrame({"a": [1, 2, 3, 4], "t": [0, 1, None, 1]}), "t", name="t")
    assert len(ds.X) == 3 and any("target" in w for w in ds.warnings)
    with pytest.raises(DatasetError, match="no usable feature columns"):
        prepare(pd.DataFrame({"a": [5, 5, 5], "t": [0, 1, 0]}), "t", name="t")


def test_unsupported_cell_types_are_refused():
    frame = pd.DataFrame({"a": [{"k": 1}, {"k": 2}], "t": [0, 1]})
    with pytest.raises(DatasetError, match="column 'a'"):
        prepare(frame, "t", name="t")


def test_outer_split_is_stratified_and_disjoint():
    ds = load_tabular({"name": "breast_cancer"})
    train, test = outer_split(ds, 0.25, seed=0)
    assert len(train.X) + len(test.X) == len(ds.X)
    assert abs(train.y.mean() - test.y.mean()) < 0.02
    again, _ = outer_split(ds, 0.25, seed=0)
    pd.testing.assert_frame_equal(train.X, again.X)
