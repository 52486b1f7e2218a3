"""``efe.apply`` with engine=dask and engine=spark equals engine=pandas: values, dtypes, column order.

Needs the extras ``efe[dask]`` and ``efe[spark]`` (and Java for Spark); CI installs them with the
dev extra. One Spark session (local[2]) is shared by the module: it takes seconds to start.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from efe.apply import apply, main
from efe.frozen.freeze import freeze, input_schema, instantiate
from tests.conftest import tab_program

PROGRAM = tab_program(
    "out = X.copy()\n"
    "out['ratio'] = X['a'] / X['b']\n"
    "out['a_centred'] = X['a'] - state['mean_a']\n"
    "out['above'] = X['a'] > state['mean_a']\n"
    "out['k2'] = X['k'] * 2\n"
    "out['tag'] = X['group'] + '_' + X['k'].astype(str)\n"
    "return out.drop(columns=['b'])",
    fit_body="return {'mean_a': float(X['a'].mean())}",
)


SANDBOX = {"parquet": {"sandbox": "true"}, "csv": {"sandbox": "false"}}  # both paths, half the sandbox start-ups


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.lognormal(0, 1, n), "b": rng.lognormal(0, 1, n),
                         "k": rng.integers(0, 50, n), "group": rng.choice(["x", "y", "z"], n)})


@pytest.fixture(scope="module")
def frozen(tmp_path_factory) -> Path:
    """A program frozen with state fitted on other rows: a refit on a partition would change a_centred."""
    train = table(500, seed=1)
    program = instantiate(PROGRAM, "build_feature_program")
    state = program.fit(train, None)
    out = program.transform(train, state)
    return freeze(tmp_path_factory.mktemp("frozen") / "frozen", "tab", PROGRAM, state,
                  schema=input_schema(train), output_columns=list(out.columns),
                  extra={"output_schema": input_schema(out)})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """3,000 rows as a Parquet directory of 4 parts and a CSV directory of 3 parts (unequal sizes)."""
    root = tmp_path_factory.mktemp("inputs")
    rows = table(3000, seed=2)
    parquet, csv = root / "parquet", root / "csv"
    parquet.mkdir()
    csv.mkdir()
    for i, part in enumerate(np.array_split(rows, [400, 1500, 1600])):
        part.to_parquet(parquet / f"part-{i}.parquet", index=False)
    # 9 significant digits: pandas' default CSV float parser may differ from a correctly rounded one
    # (Spark's) in the last bit for 17-digit text; with shorter text both give the same double
    text = rows.assign(a=rows["a"].round(8), b=rows["b"].round(8))
    for i, part in enumerate(np.array_split(text, [1000, 1100])):
        part.to_csv(csv / f"part-{i}.csv", index=False)
    return {"parquet": parquet, "csv": csv}


def read_output(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def expected(frozen, inputs, tmp_path_factory) -> dict[str, pd.DataFrame]:
    out = tmp_path_factory.mktemp("pandas")
    found = {}
    for kind, source in inputs.items():
        assert apply(frozen, source, out / f"{kind}.parquet", "pandas", {"chunk_rows": 700, "progress": False}) == 3000
        found[kind] = read_output(out / f"{kind}.parquet")
    assert list(found["parquet"].columns) == ["a", "k", "group", "ratio", "a_centred", "above", "k2", "tag"]
    return found


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark", reason="engine=spark needs the extra: pip install 'efe[spark]'")
    if shutil.which("java") is None:
        pytest.skip("engine=spark needs Java on the PATH")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("efe-tests")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "3")
               .config("spark.sql.adaptive.coalescePartitions.enabled", "false")  # keep several partitions
               .config("spark.sql.files.maxPartitionBytes", "20000").getOrCreate())
    yield session
    session.stop()


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_dask_equals_pandas(frozen, inputs, expected, tmp_path, kind):
    pytest.importorskip("dask.dataframe", reason="engine=dask needs the extra: pip install 'efe[dask]'")
    target = tmp_path / "dask.parquet"
    assert apply(frozen, inputs[kind], target, "dask", SANDBOX[kind]) == 3000
    assert len(list(target.glob("part-*.parquet"))) >= 3  # one part per input partition
    pd.testing.assert_frame_equal(read_output(target), expected[kind], check_exact=True)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_spark_equals_pandas(spark, frozen, inputs, expected, tmp_path, kind):
    target = tmp_path / "spark.parquet"
    assert apply(frozen, inputs[kind], target, "spark", SANDBOX[kind]) == 3000
    assert len(list(target.glob("part-*.parquet"))) >= 2
    pd.testing.assert_frame_equal(read_output(target), expected[kind], check_exact=True)


def test_command_line_names_an_unknown_engine(frozen, inputs, tmp_path, capsys):
    assert main([f"frozen={frozen}", f"input={inputs['csv']}", f"output={tmp_path / 'x.parquet'}",
                 "engine=polars"]) == 2
    assert "unknown engine 'polars'" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_a_partitioned_engine_refuses_an_output_that_is_a_file(frozen, inputs, tmp_path, capsys, engine):
    """A pandas run's features.parquet is a file; dask and spark write a directory: one line, exit 2."""
    output = tmp_path / "features.parquet"
    output.write_bytes(b"an earlier pandas output")
    code = main([f"frozen={frozen}", f"input={inputs['parquet']}", f"output={output}", f"engine={engine}"])
    assert code == 2
    assert "is a file; engine=" + engine in capsys.readouterr().err
    assert output.read_bytes() == b"an earlier pandas output"
