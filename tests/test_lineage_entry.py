"""LineageEntry: the one typed reading of a lineage.jsonl line (round trip, older files, torn lines, answers)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from efe.rundir.records import LineageEntry, best_valid, read_lineage
from efe.search.finalists import finalists
from efe.search.lineage import LineageRecorder, rewind_lineage

# The keys, in order, that the recorder has always written (before LineageEntry existed).
CANDIDATE_KEYS = ["kind", "id", "parent", "island", "iteration", "generation", "metrics", "verdict", "reason", "stage",
                  "new_columns", "dropped_columns", "runtime_s", "code_sha256", "changes", "role", "time"]
NO_PROGRAM_KEYS = ["kind", "id", "parent", "island", "iteration", "metrics", "verdict", "reason", "role", "time"]

# A line as an early efe wrote it: no role, stage, runtime, generation or time; a key this version does not know.
OLD_LINE = {"kind": "candidate", "id": "old-1", "parent": "seed-1", "island": 0, "iteration": 3,
            "metrics": {"combined_score": 0.61, "valid": 1.0, "delta_auc": 0.01}, "verdict": "valid", "reason": "",
            "new_columns": ["a_over_b"], "dropped_columns": [], "code_sha256": "abc", "note": "hand-added"}


def candidate(**over) -> LineageEntry:
    fields = dict(kind="candidate", id="c1", parent="s1", island=1, iteration=2, generation=1,
                  metrics={"combined_score": 0.7, "valid": 1.0}, verdict="valid", reason="", stage=None,
                  new_columns=("x_log",), dropped_columns=(), runtime_s=0.25, code_sha256="c1sha", changes=None,
                  role="unary", time=1.5)
    return LineageEntry(**{**fields, **over})


def test_round_trip_keeps_the_line_format():
    entry = candidate(plan="log the skewed column")
    line = json.loads(json.dumps(entry.to_dict()))
    assert list(line) == CANDIDATE_KEYS[:-2] + ["plan", "role", "time"]
    assert line["new_columns"] == ["x_log"] and line["stage"] is None
    assert LineageEntry.from_dict(line) == entry
    assert list(candidate().to_dict()) == CANDIDATE_KEYS  # no plan: no key, as before
    lost = LineageEntry("no_program", iteration=4, metrics={"combined_score": 0.0, "valid": 0.0}, verdict="lost",
                        reason="in flight", time=2.0)
    assert list(lost.to_dict()) == NO_PROGRAM_KEYS
    rejected = LineageEntry.from_dict({**lost.to_dict(), "verdict": "judge_rejected", "code_sha256": "r"})
    assert list(rejected.to_dict()) == NO_PROGRAM_KEYS[:-2] + ["code_sha256", "role", "time"]


def test_the_answers_modules_ask():
    seed = candidate(kind="seed", id="s1", parent=None, metrics={"combined_score": 0.5, "valid": 1.0}, code_sha256="s")
    good, bad = candidate(), candidate(id="c2", metrics={"combined_score": 0.0, "valid": 0.0}, code_sha256="c2sha")
    migrant = candidate(kind="migrant", id="m1", metrics={"combined_score": 0.9, "valid": 1.0}, code_sha256="m")
    skipped = LineageEntry("no_program", iteration=5, metrics={"combined_score": 0.0, "valid": 0.0},
                           verdict="duplicate_rejected", code_sha256="c1sha")
    assert good.is_valid_candidate and seed.is_valid_candidate and not migrant.is_valid_candidate
    assert bad.invalid and not bad.is_valid_candidate and not skipped.invalid and not skipped.valid
    assert skipped.rejected and skipped.duplicate and not skipped.is_program and migrant.is_program
    assert good.fitness == 0.7 and good.gain_over(seed.score) == pytest.approx(0.2) and good.gain_over(None) is None
    nan = candidate(metrics={"combined_score": float("nan"), "valid": 1.0})
    assert nan.fitness is None and nan.score == 0.0 and LineageEntry("seed").fitness is None
    lineage = [seed, good, bad, migrant, skipped]
    assert best_valid(lineage) is good  # the migrant's copy is not the search's own result
    assert [e.id for e in finalists(lineage, 3)] == ["s1", "c1"]
    with pytest.raises(ValueError, match="names no program source"):
        LineageEntry("no_program").program_file("run")


def test_reading_an_old_line_a_current_line_and_a_torn_last_line(tmp_path):
    path = tmp_path / "lineage.jsonl"
    current = candidate()
    path.write_text(json.dumps(OLD_LINE) + "\n" + json.dumps(current.to_dict()) + "\n"
                    + '["not an object"]\n' + '{"kind": "candidate", "id": "torn')
    old, new = read_lineage(tmp_path)  # the run directory or the file itself
    assert new == current and read_lineage(path) == [old, new]
    assert (old.role, old.stage, old.runtime_s, old.generation, old.time) == (None, None, None, None, None)
    assert old.extra == {"note": "hand-added"} and old.to_dict()["note"] == "hand-added"
    assert old.is_valid_candidate and old.fitness == 0.61 and old.new_columns == ("a_over_b",)
    assert read_lineage(tmp_path / "missing.jsonl") == []


def test_rewind_keeps_old_lines_as_written_and_the_recorder_writes_the_old_format(tmp_path):
    path = tmp_path / "lineage.jsonl"
    old_text = json.dumps(OLD_LINE)
    path.write_text(old_text + "\n" + json.dumps({**OLD_LINE, "id": "late", "iteration": 9}) + "\n")
    assert rewind_lineage(path, 4) == (1, False)
    lines = path.read_text().splitlines()
    assert lines[0] == old_text  # untouched, not re-serialised
    lost = [LineageEntry.from_dict(json.loads(line)) for line in lines[1:]]
    assert [e.iteration for e in lost] == [1, 2, 4] and all(e.verdict == "lost" for e in lost)
    assert all(list(json.loads(line)) == NO_PROGRAM_KEYS for line in lines[1:])

    seen = []
    recorder = LineageRecorder(tmp_path / "run" / "lineage.jsonl", tmp_path / "outcomes", on_entry=seen.append)
    recorder.set_iteration(1)
    program = SimpleNamespace(id="p1", parent_id="s", generation=1, code="def f():\n    pass\n",
                              metrics={"combined_score": 0.6, "valid": 1.0, "label": "text"}, metadata={})
    assert recorder.admit(program, island=0)
    recorder.no_program(2, "LLM timeout")
    written = [json.loads(line) for line in (tmp_path / "run" / "lineage.jsonl").read_text().splitlines()]
    assert [list(d) for d in written] == [CANDIDATE_KEYS, NO_PROGRAM_KEYS]
    assert written[0]["metrics"] == {"combined_score": 0.6, "valid": 1.0} and written[0]["verdict"] == "valid"
    assert [e.to_dict() for e in seen] == written and read_lineage(tmp_path / "run") == seen
    assert seen[0].source(tmp_path / "run") == program.code
