"""The finalists of a search: the seed plus the best distinct valid candidates of the lineage.

The highest fitness seen during the search is partly luck (the winner's curse), so both
settings re-score these finalists on data the search never scored before freezing one
(``efe.tab.selection``, ``efe.time.selection``).

A search grows programs move by move, so its best program often carries, beside the feature that
pays, a few that the search's folds could not tell from noise. Those extras cost the gain's
estimate on the selection pool twice: they add variance to every paired fold, and a model that
samples features (a forest) splits on them instead of the one that pays. ``lean_first_se`` applies
the one-standard-error rule to the best program: its smallest sub-program in the lineage (new and
dropped columns a subset of the best's) whose search gain lies within that many standard errors of
the best's goes first. Decided from the search alone, so the order stays fixed before the
pool is seen.
"""

from __future__ import annotations

from efe.rundir.records import SEED, LineageEntry


def finalists(lineage: list[LineageEntry], top_k: int, lean_first_se: float = 0.0) -> list[LineageEntry]:
    """The seed plus the ``top_k`` best distinct valid candidates; with ``lean_first_se`` > 0 the first of them
    is the best's leanest sub-program within that many standard errors of its search gain (see module)."""
    seen: set[str | None] = set()
    ranked = sorted((e for e in lineage if e.is_valid_candidate), key=lambda e: -e.score)
    chosen = [e for e in lineage if e.kind == SEED][:1]
    seen.update(e.code_sha256 for e in chosen)
    candidates = [e for e in ranked if e.kind != SEED and e.code_sha256 not in seen]
    if lean_first_se > 0 and candidates:
        lean = leanest_within(candidates[0], candidates, lean_first_se)
        candidates = [lean] + [e for e in candidates if e is not lean]
    for entry in candidates:
        if len(chosen) >= top_k + 1:
            break
        if entry.code_sha256 not in seen:
            seen.add(entry.code_sha256)
            chosen.append(entry)
    return chosen


def changed(entry: LineageEntry) -> frozenset[str]:
    """What a program changes in the table: its new columns and the ones it drops (marked apart)."""
    return frozenset(entry.new_columns) | frozenset(f"-{c}" for c in entry.dropped_columns)


def leanest_within(best: LineageEntry, candidates: list[LineageEntry], n_se: float) -> LineageEntry:
    """The candidate changing the fewest columns, all of them among ``best``'s, whose search gain is at least the
    best's minus ``n_se`` standard errors (the larger of the two programs' SEs: five folds can make the best's
    look small by chance), scored on as many folds (higher search fitness breaks ties); ``best`` itself when
    none is leaner."""
    top, folds, full = _gain(best), best.metrics.get("n_folds"), changed(best)
    eligible = [e for e in candidates
                if changed(e) and changed(e) <= full and e.metrics.get("n_folds") == folds
                and _gain(e) >= top - n_se * max(_se(best), _se(e))]
    return min(eligible + [best], key=lambda e: (len(changed(e)), -e.score))


def _gain(entry: LineageEntry) -> float:
    return float(entry.metrics.get("delta_auc", float("-inf")))


def _se(entry: LineageEntry) -> float:
    return float(entry.metrics.get("delta_auc_se", 0.0))
