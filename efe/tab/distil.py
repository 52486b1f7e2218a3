"""A lean variant of the search's best program, scored on the search folds before final selection.

The offline proposer grows a program move by move, and the move that pays is often added late, to a
parent already carrying moves the search could not tell from noise (on a forest, an outlier flag, a
within-group rank and a count beside `lvrat / pirat`). Those extras blur the gain's estimate on the
selection pool, and no program holding the paying move alone may exist in the lineage for the
one-SE rule (``efe.search.finalists``) to put first. So, before final selection, the best program's
ancestry is read back: the step whose search gain rose most names the moves that carried it, and the
program of those moves alone (with the moves they build on) is scored on the search folds like any
candidate and added to the lineage (role ``distil``). The one-SE rule then decides whether it goes
first. Programs without a move manifest (an LLM's) are left as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from efe.core.programs import code_hash
from efe.proposer.tab import TriedPrograms
from efe.proposer.tab_moves import Move, parse_moves, render_program
from efe.rundir.records import CANDIDATE, SEED, LineageEntry, best_valid
from efe.search.lineage import LineageRecorder

ROLE = "distil"


def decisive_moves(lineage: list[LineageEntry], best: LineageEntry, run_dir: Path) -> list[Move] | None:
    """The best program's moves added at the ancestral step whose search gain rose most, with the moves they
    read from; None when that is all of its moves, or its ancestry has no move lists."""
    by_id = {e.id: e for e in lineage if e.is_program and e.id}
    moves = _moves(best, run_dir)
    if not moves or len(moves) < 2:
        return None
    jumps: list[tuple[float, list[Move]]] = []
    child, after = best, moves
    while child.parent and child.parent in by_id and child.kind != SEED:
        parent = by_id[child.parent]
        before = _moves(parent, run_dir)  # each program read once: the parent's moves are the next step's child's
        if before is None:
            return None
        added = [m for m in after if m not in before]
        gain = child.metrics.get("delta_auc"), parent.metrics.get("delta_auc") if parent.kind != SEED else 0.0
        if added and None not in gain:
            jumps.append((float(gain[0]) - float(gain[1]), added))
        child, after = parent, before
    if not jumps:
        return None
    _, added = max(jumps, key=lambda j: j[0])
    kept = _with_inputs([m for m in moves if m in added], moves)
    return kept if kept and len(kept) < len(moves) else None


def _moves(entry: LineageEntry, run_dir: Path) -> list[Move] | None:
    if entry.kind == SEED:
        return []
    try:
        return parse_moves(entry.source(run_dir))
    except OSError:
        return None


def _with_inputs(chosen: list[Move], moves: list[Move]) -> list[Move]:
    """``chosen`` plus every move of ``moves`` whose output one of them reads, in the program's order."""
    need = set(chosen)
    writers = {o: m for m in moves for o in m.outputs()}
    frontier = list(chosen)
    while frontier:
        for column in frontier.pop().columns:
            writer = writers.get(column)
            if writer is not None and writer not in need:
                need.add(writer)
                frontier.append(writer)
    return [m for m in moves if m in need]


def distil_best(lineage: list[LineageEntry], run_dir: Path, evaluate: Callable[[str], Any],
                say: Callable[[str], None] = lambda _: None) -> LineageEntry | None:
    """Score the lean variant of the best valid candidate with ``evaluate`` (the search's own scoring) and add it
    to the run's lineage; the new entry, or None when there is nothing leaner to try or it was tried already."""
    best = best_valid(e for e in lineage if e.kind != SEED)
    if best is None:
        return None
    moves = decisive_moves(lineage, best, run_dir)
    if moves is None:
        return None
    if TriedPrograms(run_dir).refresh()(moves):
        return None  # the search evaluated these moves already (whatever its program's comments say)
    source = render_program(moves, f"distilled from {best.id}: the moves of its largest search-gain step")
    sha = code_hash(source)
    say(f"final selection: scoring a lean variant of the search's best ({len(moves)} of its moves) on the search folds")
    outcome = evaluate(source)
    metrics = {k: float(v) for k, v in outcome.metrics.items() if isinstance(v, (int, float))}
    columns = getattr(outcome, "columns", {}) or {}
    entry = LineageEntry(CANDIDATE, id=f"distil-{sha[:12]}", parent=best.id, island=best.island,
                         iteration=max((e.iteration or 0) for e in lineage) + 1, generation=(best.generation or 0) + 1,
                         metrics=metrics, verdict=outcome.verdict, reason=outcome.reason, stage=outcome.stage,
                         new_columns=tuple(columns.get("new", ())), dropped_columns=tuple(columns.get("dropped", ())),
                         runtime_s=outcome.runtime_s, code_sha256=sha, role=ROLE)
    LineageRecorder(run_dir / "lineage.jsonl", run_dir / "outcomes").record(entry, source)
    return entry
