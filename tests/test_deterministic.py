"""``evolution.deterministic=true``: the same command with the same seed gives the same lineage (program
hashes and ids, in order) and the same frozen program, for a table and for a set of series; the report
says so. The two runs of each pair run at the same time, so they also compete for the machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from efe.rundir.records import read_lineage
from efe.search.openevolve_adapter import OrderedIdSet
from tests.conftest import NO_PLOTS, ROOT, ratio_table

TIME = ["efe.time", "dataset=synthetic_exp", "dataset.n_series=6", "dataset.length=100", "dataset.prediction_length=12",
        "windows.n_rotations=1", "forecaster=seasonal_naive"]


def tab_command(tmp_path: Path) -> list[str]:
    csv = tmp_path / "ratio.csv"
    ratio_table(400, seed=1).to_csv(csv, index=False)
    return ["efe.tab", "dataset=csv", f"dataset.path={csv}", "dataset.target=label", "scorer=tree",
            "report.models=[tree]", "llm=offline", NO_PLOTS]


def run_twice(tmp_path: Path, command: list[str], iterations: int) -> list[Path]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("EFE_LLM_API_BASE", None)

    def one(i: int) -> Path:
        root = tmp_path / f"run{i}"
        proc = subprocess.run([sys.executable, "-m", *command, f"evolution.iterations={iterations}",
                               "evolution.deterministic=true", "seed=7", f"runs_root={root}",
                               f"llm.cache_dir={tmp_path / f'cache{i}'}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs = list(root.glob("*/*/*"))
        assert len(runs) == 1, runs
        return runs[0]

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, (1, 2)))


def assert_same_run(first: Path, second: Path, iterations: int) -> None:
    a, b = read_lineage(first / "lineage.jsonl"), read_lineage(second / "lineage.jsonl")
    assert sum(e.kind == "candidate" for e in a) >= iterations - 1  # a search happened (at most one duplicate)
    assert [(e.kind, e.id, e.code_sha256, e.iteration) for e in a] == \
        [(e.kind, e.id, e.code_sha256, e.iteration) for e in b]
    assert (first / "frozen" / "program.py").read_bytes() == (second / "frozen" / "program.py").read_bytes()
    for run in (first, second):
        search = json.loads((run / "report.json").read_text())["search"]
        assert search["deterministic"] is True
        assert "- Deterministic: yes" in (run / "report.md").read_text()


def test_two_tab_runs_with_the_same_seed_give_the_same_lineage_and_frozen_program(tmp_path):
    assert_same_run(*run_twice(tmp_path, tab_command(tmp_path), iterations=4), iterations=4)


def test_two_time_runs_with_the_same_seed_give_the_same_lineage_and_frozen_program(tmp_path):
    assert_same_run(*run_twice(tmp_path, TIME, iterations=4), iterations=4)


def test_ordered_id_set_iterates_in_insertion_order_whatever_the_hashes():
    ids = OrderedIdSet(["c", "a"])
    ids.add("b")
    ids.add("a")
    ids.discard("c")
    assert list(ids) == ["a", "b"] and "b" in ids and len(ids) == 2
    assert list(ids - {"a"}) == ["b"] and isinstance(ids.copy(), OrderedIdSet)
    ids.intersection_update({"b", "z"})
    assert list(ids) == ["b"]


def test_deterministic_needs_the_local_executor_and_a_boolean():
    from omegaconf import OmegaConf

    from efe.cli.common import executor_settings
    from efe.core.config import ConfigError

    def settings(kind, deterministic):
        return executor_settings(OmegaConf.create({"evolution": {"executor": kind, "deterministic": deterministic},
                                                   "executor": {}}))

    assert settings("local", True)["deterministic"] is True and settings("ray", False)["deterministic"] is False
    with pytest.raises(ConfigError, match="needs evolution.executor=local"):
        settings("ray", True)
    with pytest.raises(ConfigError, match="true or false"):
        settings("local", "sometimes")
