"""Tests of a packaged feature program, written by ``python -m efe.package``.

Run with ``pytest <package directory>``; they need numpy, pandas and pytest only. What they check,
against ``package.json`` and the stored sample rows (training rows, labels removed):
the files are the ones packaged (hashes, checked before the module is imported: an edited module is
never run), the input and output schema, the round trip on the
sample, one row at a time, determinism and row order, a missing column, NaN in each input column,
and the time of one batch.
"""

import hashlib
import importlib
import json
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
CONFIG = json.loads((HERE / "package.json").read_text())
TOL = CONFIG["tolerance"]


def _changed():
    """The packaged files whose hashes no longer match package.json (the module among them)."""
    changed = []
    for name, digest in CONFIG["sha256"].items():
        path = HERE / name
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if actual != digest:
            changed.append(f"{name} was changed after packaging (sha256 {actual[:12]}, packaged {digest[:12]})")
    return changed


class _NotImported:
    """Stands for the module when its files fail the hash check: it is never imported (nor run)."""

    def __getattr__(self, name):
        if name.startswith("_") and name != "_decode":  # pytest's own probes while collecting
            raise AttributeError(name)
        pytest.fail("the packaged module was not imported because its files fail the hash check: "
                    + "; ".join(CHANGED), pytrace=False)


# The hashes are checked at collection, before the module is imported: an edited module never runs here.
CHANGED = _changed()
if CHANGED:
    program = _NotImported()
else:
    sys.path.insert(0, str(HERE))
    program = importlib.import_module(CONFIG["module"])


def _read(name):
    """A stored table, rebuilt exactly (values, dtypes, index) with the module's own decoder."""
    return program._decode(json.loads((HERE / name).read_text()))


def _same(got, expected):
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=TOL["rtol"], atol=TOL["atol"])


@pytest.fixture(scope="module")
def sample():
    return _read(CONFIG["sample"]["input"])


@pytest.fixture(scope="module")
def expected():
    return _read(CONFIG["sample"]["output"])


def test_files_are_the_ones_packaged():
    assert not CHANGED, "; ".join(CHANGED)


def test_sample_rows_carry_no_labels_and_match_the_input_schema(sample):
    names = [c["name"] for c in CONFIG["input_schema"]]
    assert CONFIG["target"] not in sample.columns
    assert list(sample.columns) == names == list(program.INPUT_COLUMNS)
    assert {c: str(t) for c, t in sample.dtypes.items()} == {c["name"]: c["dtype"] for c in CONFIG["input_schema"]}


def test_round_trip_on_the_stored_sample_rows(sample, expected):
    _same(program.transform(sample), expected)


def test_output_schema(sample):
    out = program.transform(sample)
    assert [{"name": str(c), "dtype": str(t)} for c, t in out.dtypes.items()] == CONFIG["output_schema"]
    assert out.index.equals(sample.index)


def test_single_rows_equal_the_batch(sample, expected):
    for i in range(min(CONFIG["sample"]["single_rows"], len(sample))):
        _same(program.transform(sample.iloc[[i]]), expected.iloc[[i]])


def test_deterministic_and_independent_of_row_order(sample, expected):
    first, second = program.transform(sample), program.transform(sample)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    _same(program.transform(sample.iloc[::-1]), expected.iloc[::-1])


@pytest.mark.parametrize("column", [c["name"] for c in CONFIG["input_schema"]])
def test_a_missing_column_is_named_in_the_error(sample, column):
    with pytest.raises(ValueError, match="missing") as info:
        program.transform(sample.drop(columns=[column]))
    assert repr(column) in str(info.value)


@pytest.mark.parametrize("case", CONFIG["nan_probe"], ids=lambda case: case["column"])
def test_nan_in_an_input_column_behaves_as_when_packaged(case, expected):
    X = _read(case["input"])
    if case["error"]:
        with pytest.raises(Exception):
            program.transform(X)
        return
    out = program.transform(X)
    _same(out, _read(case["output"]))
    untouched = X.index[1:]  # only the first row holds the NaN: the others must not move
    _same(out.loc[untouched], expected.loc[untouched])


def test_latency_of_one_batch(sample):
    rows = CONFIG["latency"]["batch_rows"]
    batch = pd.concat([sample] * (rows // len(sample) + 1), ignore_index=True).head(rows)
    started = time.perf_counter()
    out = program.transform(batch)
    elapsed = time.perf_counter() - started
    assert len(out) == rows
    budget = CONFIG["latency"]["budget_s"]
    measured = CONFIG["latency"]["measured_s"]
    assert elapsed < budget, f"{rows} rows took {elapsed:.3f}s (budget {budget:.3f}s; {measured:.4f}s when packaged)"
