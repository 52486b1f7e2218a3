"""``efe.apply`` with engine=dask and engine=spark, and the DataFrame APIs ``efe.dask.transform`` and
``efe.spark.transform``, equal engine=pandas: values, dtypes, column order (Spark's row order across
partitions is its own, so Spark results are compared sorted by a key).

Needs the extras ``efe[dask]`` and ``efe[spark]`` (and Java for Spark); CI installs them with the
dev extra. One Spark session (local[1], "the user's own") is shared by the module, and one
spark-submit starts another JVM: each takes tens of seconds on a loaded machine, so Spark tests are few.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import efe.dask
import efe.spark
from efe.apply import apply, main
from efe.apply.spark_engine import ARROW_BATCH
from efe.frozen.freeze import freeze, input_schema, instantiate
from tests.conftest import ROOT, tab_program

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
    """3,000 rows as a Parquet directory of 4 parts and a CSV directory of 3 parts (unequal sizes).

    The CSV parts hold the columns in another order than the frozen schema (and the last part in
    yet another order), and one more: every engine must take columns by name, never by position."""
    root = tmp_path_factory.mktemp("inputs")
    rows = table(3000, seed=2)
    parquet, csv = root / "parquet", root / "csv"
    parquet.mkdir()
    csv.mkdir()
    for i, part in enumerate(np.array_split(rows, [400, 1500, 1600])):
        part.to_parquet(parquet / f"part-{i}.parquet", index=False)
    # 9 significant digits: pandas' default CSV float parser may differ from a correctly rounded one
    # (Spark's) in the last bit for 17-digit text; with shorter text both give the same double
    text = rows.assign(a=rows["a"].round(8), b=rows["b"].round(8), note="n")[["group", "note", "b", "k", "a"]]
    for i, part in enumerate(np.array_split(text, [1000, 1100])):
        (part if i < 2 else part[["k", "a", "note", "group", "b"]]).to_csv(csv / f"part-{i}.csv", index=False)
    return {"parquet": parquet, "csv": csv}


def read_output(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by 'a' (unique floats): Spark orders partitions its own way."""
    return frame.sort_values("a", kind="stable").reset_index(drop=True)


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
    session = (SparkSession.builder.master("local[1]").appName("efe-tests")
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
def test_spark_equals_pandas_and_restores_the_session_settings(spark, frozen, inputs, expected, tmp_path, kind):
    """Run in the user's active session; the Arrow batch size it changes is restored (or unset again)."""
    user_value = "777" if kind == "parquet" else None
    if user_value:
        spark.conf.set(ARROW_BATCH, user_value)
    else:
        spark.conf.unset(ARROW_BATCH)
    target = tmp_path / "spark.parquet"
    assert apply(frozen, inputs[kind], target, "spark", {**SANDBOX[kind], "chunk_rows": "500"}) == 3000
    assert len(list(target.glob("part-*.parquet"))) >= 2
    pd.testing.assert_frame_equal(by_key(read_output(target)), by_key(expected[kind]), check_exact=True)
    assert spark.conf.get(ARROW_BATCH, None) == user_value
    assert spark.sparkContext.master == "local[1]"  # the user's session, still running, master untouched


def test_spark_api_in_the_users_session(spark, frozen, inputs, expected):
    """``efe.spark.transform`` is lazy, takes columns by name, and refuses a renamed one before any job."""
    df = spark.read.parquet(str(inputs["parquet"])).select("group", "k", "b", "a")  # by name, in any order
    got = efe.spark.transform(df, frozen, sandboxed=False)
    assert [f.name for f in got.schema.fields] == list(expected["parquet"].columns)
    pd.testing.assert_frame_equal(by_key(got.toPandas()), by_key(expected["parquet"]), check_exact=True)
    with pytest.raises(ValueError, match=r"column 'a' missing from the Spark DataFrame .*'A' looks like a renamed"):
        efe.spark.transform(df.withColumnRenamed("a", "A"), frozen)


def test_spark_refuses_text_in_a_numeric_column_past_the_checked_rows(spark, frozen, inputs, tmp_path, capsys):
    """Past the rows checked up front, Spark reads CSV in FAILFAST mode: one line, exit 2, not NaN."""
    rows = pd.read_csv(inputs["csv"] / "part-0.csv")
    rows["a"] = rows["a"].astype(object)
    rows.loc[500, "a"] = "abc"
    (tmp_path / "in").mkdir()
    rows.to_csv(tmp_path / "in" / "part-0.csv", index=False)
    code = main([f"frozen={frozen}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out.parquet'}",
                 "engine=spark", "sandbox=false", "check_rows=10"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert code == 2
    assert len(err) == 1 and "engine=spark failed on 'in'" in err[0] and "abc" in err[0], err


def test_spark_submit_master_is_kept(frozen, inputs, tmp_path):
    """``spark-submit --master local[1]`` of a job calling efe.apply's Spark path: efe never overrides the master."""
    pytest.importorskip("pyspark", reason="engine=spark needs the extra: pip install 'efe[spark]'")
    if shutil.which("java") is None:
        pytest.skip("engine=spark needs Java on the PATH")
    from pyspark.find_spark_home import _find_spark_home

    job = tmp_path / "job.py"
    job.write_text("import sys\nfrom efe.apply import main\nsys.exit(main(sys.argv[1:]))\n")
    target = tmp_path / "out.parquet"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    proc = subprocess.run([str(Path(_find_spark_home()) / "bin" / "spark-submit"), "--master", "local[1]",
                           "--conf", "spark.ui.enabled=false", str(job), f"frozen={frozen}",
                           f"input={inputs['parquet']}", f"output={target}", "engine=spark", "sandbox=false"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    printed = proc.stdout + proc.stderr  # spark-submit merges the Python driver's stderr into its stdout
    assert proc.returncode == 0, printed[-3000:]
    assert "engine=spark: master local[1]" in printed  # spark.sparkContext.master, read inside the job
    assert "wrote 3000 rows" in printed


def bad_inputs(inputs: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """Copies of the CSV input with one column missing, renamed, retyped, or one part file empty."""
    first = pd.read_csv(next(inputs.glob("part-0.csv")))
    cases = {"missing": (first.drop(columns=["b"]), r"column 'b' missing from 'part-0.csv'"),
             "renamed": (first.rename(columns={"k": "K"}), r"'k' missing .*'K' looks like a renamed 'k'"),
             "retyped": (first.assign(a="abc"), r"column 'a' in 'part-0.csv' should be numeric .* text such as 'abc'")}
    found = {}
    for name, (frame, message) in cases.items():
        (root / name).mkdir()
        frame.to_csv(root / name / "part-0.csv", index=False)
        found[name] = (root / name, message)
    (root / "empty").mkdir()
    first.to_csv(root / "empty" / "part-0.csv", index=False)
    (root / "empty" / "part-1.csv").write_text("")
    found["empty"] = (root / "empty", r"input file 'part-1.csv' is empty")
    return found


@pytest.mark.parametrize("engine", ["pandas", "dask", "spark"])
def test_every_engine_refuses_a_bad_input_by_name_in_one_line(frozen, inputs, tmp_path, capsys, engine):
    """A missing, renamed or retyped column, an empty file: exit 2, the pandas engine's one-line message."""
    for case, (source, message) in bad_inputs(inputs["csv"], tmp_path).items():
        code = main([f"frozen={frozen}", f"input={source}", f"output={tmp_path / (case + '_out.parquet')}",
                     f"engine={engine}", "sandbox=false"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (case, err)
        assert len(err) == 1 and err[0].startswith("error: "), (case, err)
        assert re.search(message, err[0]), (case, err[0])
        assert not (tmp_path / (case + "_out.parquet")).exists()


def test_dask_splits_a_file_by_blocksize(frozen, inputs, expected, tmp_path):
    """One 3,000-row CSV file read in blocks of 20kB: several partitions, still equal to pandas."""
    pytest.importorskip("dask.dataframe", reason="engine=dask needs the extra: pip install 'efe[dask]'")
    single = tmp_path / "one.csv"
    pd.concat([pd.read_csv(p) for p in sorted(inputs["csv"].glob("part-*.csv"))]).to_csv(single, index=False)
    target = tmp_path / "dask.parquet"
    assert apply(frozen, single, target, "dask", {"sandbox": "false", "blocksize": "20kB", "chunk_rows": "300"}) == 3000
    assert len(list(target.glob("part-*.parquet"))) >= 4
    pd.testing.assert_frame_equal(read_output(target), expected["csv"], check_exact=True)


def test_dask_api_equals_pandas(frozen, inputs, expected, tmp_path):
    """``efe.dask.transform`` over the user's own Dask DataFrame (Parquet row groups as partitions)."""
    dd = pytest.importorskip("dask.dataframe", reason="efe.dask needs the extra: pip install 'efe[dask]'")
    import dask

    rows = pd.concat([pd.read_parquet(p) for p in sorted(inputs["parquet"].glob("part-*.parquet"),
                                                         key=lambda p: int(p.stem.split("-")[1]))])
    rows.to_parquet(tmp_path / "one.parquet", row_group_size=500, index=False)
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.read_parquet(str(tmp_path / "one.parquet"), split_row_groups=True)
        assert ddf.npartitions == 6
        got = efe.dask.transform(ddf, frozen, sandboxed=False, chunk_rows=200)
        pd.testing.assert_frame_equal(got.compute().reset_index(drop=True), expected["parquet"], check_exact=True)
        with pytest.raises(ValueError, match=r"column 'b' missing from the Dask DataFrame"):
            efe.dask.transform(ddf.drop(columns=["b"]), frozen)


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


def test_a_dask_apply_that_fails_past_the_checked_rows_names_column_and_file_and_leaves_nothing(frozen, tmp_path,
                                                                                             capsys):
    """A value that does not fit the schema after the rows checked up front (check_rows): Dask's own error
    names neither; the apply names both, and its output directory is gone (command and API alike)."""
    pytest.importorskip("dask.dataframe", reason="engine=dask needs the extra: pip install 'efe[dask]'")
    rows = table(1500, seed=5)
    bad = rows.astype({"a": object})
    bad.loc[1300, "a"] = "n/a?"
    source = tmp_path / "late.csv"
    bad.to_csv(source, index=False)
    target = tmp_path / "out.parquet"
    assert main([f"frozen={frozen}", f"input={source}", f"output={target}", "engine=dask", "sandbox=false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "column 'a'" in err and "'late.csv'" in err, err
    assert not target.exists() and not list(tmp_path.glob("efe-tmp-*"))
    with pytest.raises(ValueError, match="column 'a' in 'late.csv'"):
        apply(frozen, source, target, "dask", {"sandbox": "false"})
    assert not target.exists()

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for engine in ("pandas", "dask"):
        assert main([f"frozen={frozen}", f"input={empty}", f"output={tmp_path / engine}.parquet",
                     f"engine={engine}", "sandbox=false"]) == 2
        assert "'empty.csv' is empty" in capsys.readouterr().err
