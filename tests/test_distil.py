"""Final selection's lean variant: the moves of the best program's largest search-gain step, scored on the search
folds and put first by the one-SE rule when they carry the gain."""

from __future__ import annotations

import hashlib
from pathlib import Path

from efe.proposer.tab_moves import Move, parse_moves, render_program
from efe.rundir.records import SEED, LineageEntry, read_lineage
from efe.search.finalists import finalists
from efe.tab.distil import decisive_moves, distil_best
from evaluators.outcome import Outcome
from tests.conftest import IDENTITY_TAB

TITLE = Move("extract", ("name",), ("title", 10))
TE = Move("te_oof", ("name_title_min10",), (5, 1, 10, 50))
LOG, OUTLIER = Move("log", ("fare",)), Move("outlier", ("age",))


def _lineage(run_dir: Path, programs: list[tuple[str, list[Move] | None, float, float]]) -> list[LineageEntry]:
    """(id, moves or None for the seed, search gain, its SE): each the child of the one before."""
    (run_dir / "programs").mkdir(parents=True, exist_ok=True)
    out, parent = [], None
    for i, (name, moves, delta, se) in enumerate(programs):
        source = IDENTITY_TAB if moves is None else render_program(moves)
        sha = hashlib.sha256(source.encode()).hexdigest()
        (run_dir / "programs" / f"{sha}.py").write_text(source)
        new = () if moves is None else tuple(o for m in moves for o in m.outputs())
        out.append(LineageEntry(SEED if moves is None else "candidate", id=name, parent=parent, iteration=i,
                                code_sha256=sha, verdict="valid", new_columns=new,
                                metrics={"valid": 1.0, "combined_score": 0.5 + 5 * (delta - se), "delta_auc": delta,
                                         "delta_auc_se": se, "n_folds": 5.0}))
        parent = name
    return out


def test_the_step_that_carried_the_gain_is_scored_alone_with_the_moves_it_builds_on(tmp_path):
    """Seed -> log (+0.002) -> outlier (+0.001) -> title and its target encoding (+0.030): the lean variant is the
    title with its encoding (the encoding reads the title's column), scored, recorded in the lineage, and tested
    first by the one-SE rule; a second call finds it tried and adds nothing."""
    lineage = _lineage(tmp_path, [("s", None, 0.0, 0.0), ("a", [LOG], 0.002, 0.002), ("b", [LOG, OUTLIER], 0.003, 0.003),
                                  ("c", [LOG, OUTLIER, TITLE, TE], 0.033, 0.008)])
    best = lineage[-1]
    assert decisive_moves(lineage, best, tmp_path) == [TITLE, TE]
    assert decisive_moves(lineage, lineage[1], tmp_path) is None  # one move: nothing leaner
    scored = []

    def evaluate(source: str) -> Outcome:
        scored.append(source)
        return Outcome({"combined_score": 0.62, "valid": 1.0, "delta_auc": 0.031, "delta_auc_se": 0.007, "n_folds": 5.0},
                       columns={"new": ["name_title_min10", "te_oof5_name_title_min10"], "dropped": []})

    (tmp_path / "lineage.jsonl").write_text("")
    entry = distil_best(lineage, tmp_path, evaluate)
    assert entry is not None and entry.role == "distil" and entry.parent == "c" and entry.valid
    assert parse_moves(scored[0]) == [TITLE, TE] and entry.source(tmp_path) == scored[0]
    assert [e.id for e in read_lineage(tmp_path)] == [entry.id]
    assert [e.id for e in finalists(lineage + [entry], 3, 1.0)][:3] == ["s", entry.id, "c"]
    assert distil_best(lineage + [entry], tmp_path, evaluate) is None and len(scored) == 1
    # the same moves evaluated by the search under another rationale (another source hash): not scored again
    (tmp_path / "programs" / f"{entry.code_sha256}.py").unlink()
    (tmp_path / "programs" / "search.py").write_text(render_program([TITLE, TE], "the search's own words"))
    assert distil_best(lineage, tmp_path, evaluate) is None and len(scored) == 1


def test_an_ancestry_without_move_lists_is_left_alone(tmp_path):
    """A best program an LLM wrote (no move manifest) has no steps to read: nothing is scored."""
    lineage = _lineage(tmp_path, [("s", None, 0.0, 0.0), ("a", [LOG, TITLE], 0.03, 0.01)])
    llm = IDENTITY_TAB.replace("return X.copy()", "T = X.copy()\n        T['x2'] = X['fare'] * 2\n        return T")
    sha = hashlib.sha256(llm.encode()).hexdigest()
    (tmp_path / "programs" / f"{sha}.py").write_text(llm)
    lineage[-1] = LineageEntry(**{**lineage[-1].__dict__, "code_sha256": sha})
    assert distil_best(lineage, tmp_path, lambda source: (_ for _ in ()).throw(AssertionError("scored"))) is None
