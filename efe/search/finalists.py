"""The finalists of a search: the seed plus the best distinct valid candidates of the lineage.

The highest fitness seen during the search is partly luck (the winner's curse), so both
settings re-score these finalists on data the search never scored before freezing one
(``efe.tab.selection``, ``efe.time.selection``).
"""

from __future__ import annotations

from efe.rundir.records import SEED, LineageEntry


def finalists(lineage: list[LineageEntry], top_k: int) -> list[LineageEntry]:
    """The seed plus the ``top_k`` best distinct valid candidates."""
    seen: set[str | None] = set()
    ranked = sorted((e for e in lineage if e.is_valid_candidate), key=lambda e: -e.score)
    chosen = [e for e in lineage if e.kind == SEED][:1]
    seen.update(e.code_sha256 for e in chosen)
    for entry in ranked:
        if len(chosen) >= top_k + 1:
            break
        if entry.code_sha256 not in seen:
            seen.add(entry.code_sha256)
            chosen.append(entry)
    return chosen

