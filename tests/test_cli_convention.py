"""One command-line convention for the commands that are not Hydra apps, and no output path that destroys data.

Every command answers ``-h`` the same way (usage and its keys on stdout, exit 0) and refuses an
unknown key with one line naming it (exit 2); every command that writes refuses an output that is
one of its inputs, a file of an efe run directory, or a non-empty directory, unless overwrite=true.
All through the command line, as a user types it.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from efe.frozen.freeze import freeze, input_schema, instantiate
from tests.conftest import ROOT, tab_program

COMMANDS = ("apply", "export", "package", "plot", "review", "score", "traces", "transfer")
PROGRAM = tab_program("out = X.copy()\nout['ratio'] = X['a'] / X['b']\nreturn out")


def efe(command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"efe.{command}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_and_an_unknown_key_are_answered_the_same_way_by_every_command(command, capsys):
    proc = efe(command, "-h")  # the real command line, once per command
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m efe.{command} ")
    assert f"defaults from conf/{command}.yaml" in proc.stdout and proc.stderr == ""
    keys = [line.split("=", 1)[0].strip() for line in proc.stdout.splitlines()[3:]]
    assert keys and all(keys)
    # the same parser in-process (a second interpreter start per command added ~5 s and nothing else)
    capsys.readouterr()
    status = importlib.import_module(f"efe.{command}").main(["no_such_key=1"])
    captured = capsys.readouterr()
    line = one_error_line(subprocess.CompletedProcess([], status, captured.out, captured.err))
    assert "unknown key 'no_such_key'" in line and f"efe.{command}" in line
    assert f"allowed: {keys[0]}" in line or f", {keys[0]}" in line  # the allowed keys are named


@pytest.fixture(scope="module")
def frozen(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"a": rng.lognormal(0, 1, 200), "b": rng.lognormal(0, 1, 200)})
    program = instantiate(PROGRAM, "build_feature_program")
    state = program.fit(train, None)
    out = program.transform(train, state)
    return freeze(tmp_path_factory.mktemp("run") / "frozen", "tab", PROGRAM, state, schema=input_schema(train),
                  output_columns=list(out.columns), extra={"output_schema": input_schema(out)})


@pytest.fixture()
def csv(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path / "rows.csv"
    pd.DataFrame({"a": rng.lognormal(0, 1, 60), "b": rng.lognormal(0, 1, 60)}).to_csv(path, index=False)
    return path


def a_run(directory: Path, lineage: str = '{"id": "s", "kind": "seed", "metrics": {}}\n') -> Path:
    """A run directory as efe.traces reads it (a seed in the lineage, no proposals)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lineage.jsonl").write_text(lineage)
    (directory / "proposals.jsonl").write_text("")
    return directory


def test_apply_refuses_to_write_over_its_input_even_with_overwrite(frozen, csv, tmp_path):
    before = csv.read_bytes()
    for extra in ((), ("overwrite=true",)):
        line = one_error_line(efe("apply", f"frozen={frozen}", f"input={csv}", f"output={csv}", *extra))
        assert f"output '{csv}' is the input" in line
    assert csv.read_bytes() == before
    parts = tmp_path / "parts"   # a directory of parts: each part is an input, and so is the directory
    parts.mkdir()
    (parts / "part-0.csv").write_bytes(before)
    line = one_error_line(efe("apply", f"frozen={frozen}", f"input={parts}", f"output={parts / 'part-0.csv'}",
                              "overwrite=true"))
    assert "is the input" in line
    line = one_error_line(efe("apply", f"frozen={frozen}", f"input={parts}", f"output={tmp_path}", "engine=dask",
                              "overwrite=true"))
    assert f"output '{tmp_path}' holds the input" in line
    assert (parts / "part-0.csv").read_bytes() == before


def test_apply_refuses_a_file_of_a_run_and_a_non_empty_directory(frozen, csv, tmp_path):
    run = a_run(tmp_path / "other_run")
    line = one_error_line(efe("apply", f"frozen={frozen}", f"input={csv}", f"output={run / 'lineage.jsonl'}"))
    assert "is a file of the efe run directory" in line and "overwrite=true" in line
    assert (run / "lineage.jsonl").read_text().startswith('{"id": "s"')
    full = tmp_path / "features.parquet"
    full.mkdir()
    (full / "mine.txt").write_text("keep me")
    line = one_error_line(efe("apply", f"frozen={frozen}", f"input={csv}", f"output={full}", "engine=dask",
                              "sandbox=false"))
    assert "is a directory that is not empty" in line
    assert (full / "mine.txt").read_text() == "keep me"


def test_dask_apply_replaces_only_when_asked_and_a_failure_leaves_nothing_behind(frozen, csv, tmp_path):
    pytest.importorskip("dask.dataframe", reason="engine=dask needs the extra: pip install 'efe[dask]'")
    out = tmp_path / "features.parquet"
    out.mkdir()
    (out / "old.parquet").write_text("an earlier output")
    proc = efe("apply", f"frozen={frozen}", f"input={csv}", f"output={out}", "engine=dask", "sandbox=false",
               "overwrite=true")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "old.parquet").exists() and len(pd.read_parquet(out)) == 60

    parts = tmp_path / "parts"
    parts.mkdir()
    rows = pd.read_csv(csv)
    rows.head(30).to_csv(parts / "part-0.csv", index=False)
    rows.tail(30).assign(b="high").to_csv(parts / "part-1.csv", index=False)  # the second partition fails
    fresh = tmp_path / "fresh.parquet"
    line = one_error_line(efe("apply", f"frozen={frozen}", f"input={parts}", f"output={fresh}", "engine=dask",
                              "sandbox=false"))
    assert "'high'" in line
    assert not fresh.exists()
    proc = efe("apply", f"frozen={frozen}", f"input={parts}", f"output={out}", "engine=dask", "sandbox=false",
               "overwrite=true")
    assert proc.returncode == 2 and len(pd.read_parquet(out)) == 60  # the earlier output is untouched
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("efe-")) == []


def test_traces_refuses_to_replace_a_runs_lineage(tmp_path):
    run = a_run(tmp_path / "run")
    lineage = (run / "lineage.jsonl").read_text()
    for extra in ((), ("overwrite=true",)):
        line = one_error_line(efe("traces", f"run={run}", "format=reward", f"out={run / 'lineage.jsonl'}", *extra))
        assert f"is the input '{run / 'lineage.jsonl'}'" in line
    other = a_run(tmp_path / "other")
    line = one_error_line(efe("traces", f"run={run}", "format=reward", f"out={other / 'lineage.jsonl'}"))
    assert "is a file of the efe run directory" in line
    assert (run / "lineage.jsonl").read_text() == lineage == (other / "lineage.jsonl").read_text()
    proc = efe("traces", f"run={run}", "format=reward", f"out={other / 'lineage.jsonl'}", "overwrite=true")
    assert proc.returncode == 0, proc.stderr
    assert (other / "lineage.jsonl").read_text() == ""   # asked for: zero records from a run without proposals


def test_export_and_package_refuse_what_they_would_destroy(frozen, tmp_path):
    for extra in ((), ("overwrite=true",)):
        line = one_error_line(efe("export", f"run={frozen}", f"out={frozen / 'program.py'}", *extra))
        assert "lies inside the frozen program directory" in line
    other = a_run(tmp_path / "other")
    (other / "report.json").write_text("{}")
    line = one_error_line(efe("export", f"run={frozen}", f"out={other / 'report.json'}"))
    assert "is a file of the efe run directory" in line and (other / "report.json").read_text() == "{}"
    line = one_error_line(efe("export", f"run={frozen}", f"out={other}", "overwrite=true"))
    assert "is a directory; give a file path" in line
    proc = efe("export", f"run={frozen}", f"out={other / 'report.json'}", "overwrite=true")
    assert proc.returncode == 0, proc.stderr
    assert "def transform(X" in (other / "report.json").read_text()

    package = tmp_path / "package"
    package.mkdir()
    (package / "notes.txt").write_text("mine")
    line = one_error_line(efe("package", f"run={frozen.parent}", f"out={package}"))
    assert "is a directory that is not empty" in line and (package / "notes.txt").read_text() == "mine"
    for out in (frozen.parent, frozen.parent.parent):
        line = one_error_line(efe("package", f"run={frozen.parent}", f"out={out}", "overwrite=true"))
        assert f"output '{out}' {'is' if out == frozen.parent else 'holds'} the input" in line
    assert json.loads((frozen / "manifest.json").read_text())["setting"] == "tab"
