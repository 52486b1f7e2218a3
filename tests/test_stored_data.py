"""Bad stored data never kills a run (issue 28): a wrongly typed line of the cross-run memory store
or a wrongly typed LLM response-cache entry is skipped with a warning naming the file, through
``python -m efe.tab``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from efe.rundir.records import read_lineage
from tests.conftest import ratio_table
from tests.test_tab_run import GOOD_1, efe_tab, only_run

FAST = ("selection.top_k=0", "report.models=[tree]", "evolution.openevolve.evaluator.parallel_evaluations=1")


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "ratio.csv"
    ratio_table(300, seed=3).to_csv(path, index=False)
    return path


def test_a_wrongly_typed_memory_line_is_skipped_with_a_warning_and_the_good_ones_are_reused(tmp_path, small_csv):
    store = tmp_path / "memory.jsonl"
    schema = {"must": {"target": "label"}, "items": ["a=numeric", "b=numeric", "n1=numeric", "n2=numeric"]}
    good = {"fingerprint": "an-earlier-table", "schema": schema, "setting": "tab", "time": 1.0, "run_dir": "x",
            "programs": [{"which": "search best", "sha": "s", "code": GOOD_1, "fitness": 0.6}], "rules": []}
    lines = [{**good, "programs": "notalist"},                        # line 1
             {**good, "programs": [{"code": 5, "fitness": 0.9}]},     # line 2
             {**good, "time": "yesterday"},                          # line 3
             good]                                                   # line 4
    store.write_text("".join(json.dumps(line) + "\n" for line in lines))
    proc = efe_tab(tmp_path, small_csv, "llm=offline", "evolution.iterations=1", f"memory.path={store}",
                   "memory.use=true", *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for number, what in ((1, "'programs' is not a list"), (2, "programs[0].code is not a string"),
                         (3, "'time' is not a number")):
        line = next(l for l in proc.stderr.splitlines() if f"{store} line {number}: " in l)
        assert what in line and line.endswith("; skipped"), line
    assert f"{store} line 4" not in proc.stderr
    assert "memory: 1 stored program(s) of 1 earlier run(s)" in proc.stderr  # the good line is still used


def test_a_wrongly_typed_response_cache_entry_is_a_miss_with_a_warning(tmp_path, small_csv):
    cache = tmp_path / "cache"
    first = efe_tab(tmp_path / "one", small_csv, "llm=offline", "evolution.iterations=2",
                    f"llm.cache_dir={cache}", *FAST)
    assert first.returncode == 0, first.stderr[-3000:]
    entries = sorted(cache.rglob("*.json"))
    assert entries
    for i, entry in enumerate(entries):
        entry.write_text(json.dumps([1, 2] if i % 2 else {"response": 5, "usage": "x"}))
    second = efe_tab(tmp_path / "two", small_csv, "llm=offline", "evolution.iterations=2",
                     f"llm.cache_dir={cache}", *FAST)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "LLM generation failed" not in second.stderr, second.stderr[-3000:]
    assert any(f"response cache entry {entry}" in second.stderr for entry in entries), second.stderr[-3000:]
    lineage = read_lineage(only_run(tmp_path / "two") / "lineage.jsonl")
    assert not [e for e in lineage if e.kind == "no_program"], lineage
    assert len([e for e in lineage if e.kind == "candidate"]) == 2
