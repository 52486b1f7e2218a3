"""Parallel iterations propose before their siblings are evaluated: the second proposal of a program
still in flight is a duplicate, across processes, and a resume forgets what was in flight."""

from __future__ import annotations

import multiprocessing as mp

from efe.llm.novelty import NoveltyIndex, clear_claims

PROGRAM = "# efe-moves: [[\"log\", []]]\nclass P:\n    pass\n"
SAME_MOVES = "# efe-moves: [[\"log\", []]]\nclass Q:\n    x = 1\n"
OTHER = "# efe-moves: [[\"detrend\", [1.0]]]\nclass R:\n    pass\n"


def _claim_in_child(run_dir: str, code: str, sha: str, out) -> None:
    out.put(NoveltyIndex(run_dir).claim(code, sha))


def test_a_program_in_flight_is_claimed_once_across_processes(tmp_path):
    first = NoveltyIndex(tmp_path)
    assert first.duplicate_of(PROGRAM) is None and first.claim(PROGRAM, "a" * 64) is None
    queue = mp.get_context("spawn").Queue()
    child = mp.get_context("spawn").Process(target=_claim_in_child, args=(str(tmp_path), SAME_MOVES, "b" * 64, queue))
    child.start()
    child.join(60)
    assert queue.get(timeout=5) == "a" * 64          # same move list, still in flight: a duplicate
    assert NoveltyIndex(tmp_path).claim(OTHER, "c" * 64) is None
    assert NoveltyIndex(tmp_path).claim(PROGRAM, "a" * 64) == "a" * 64   # even the exact program, twice
    clear_claims(tmp_path)
    assert NoveltyIndex(tmp_path).claim(SAME_MOVES, "b" * 64) is None


def test_a_refused_claim_holds_nothing(tmp_path):
    index = NoveltyIndex(tmp_path)
    assert index.claim(PROGRAM, "a" * 64) is None
    # same move list as PROGRAM (refused), so its new source key must not stay claimed
    assert index.claim(SAME_MOVES, "b" * 64) == "a" * 64
    same_source_other_manifest = SAME_MOVES.replace('"log"', '"boxcox"')
    assert index.claim(same_source_other_manifest, "d" * 64) is None
