"""Final selection: re-score the best candidates on every pool rotation, keep the best mean.

During the search each program is scored on one rotation of the data, so the highest score
seen is partly luck (the winner's curse). The top candidates, and the seed, are re-scored on
all rotations; the best mean fitness is frozen. When nothing beats the seed reliably, the seed
is what gets frozen, and the report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np


def finalists(lineage: list[dict], top_k: int) -> list[dict]:
    """The seed plus the ``top_k`` best distinct valid candidates."""
    seen: set[str] = set()
    ranked = sorted((e for e in lineage if e.get("kind") in ("seed", "candidate")
                     and e.get("metrics", {}).get("valid") == 1.0),
                    key=lambda e: -e["metrics"].get("combined_score", 0.0))
    chosen = [e for e in lineage if e.get("kind") == "seed"][:1]
    seen.update(e["code_sha256"] for e in chosen)
    for entry in ranked:
        if len(chosen) >= top_k + 1:
            break
        if entry["code_sha256"] not in seen:
            seen.add(entry["code_sha256"])
            chosen.append(entry)
    return chosen


def select(lineage: list[dict], run_dir: Path, make_evaluator: Callable[[], Any], top_k: int,
           score_key: str, higher_is_better: bool = True) -> tuple[dict | None, list[dict]]:
    """(the chosen lineage entry, a table of finalists with their per-rotation fitness).

    Ties in mean fitness (the fitness is clipped, so strong programs can tie at the ceiling) are
    broken by the underlying metric ``score_key``.
    """
    entries = finalists(lineage, top_k)
    if not entries:
        return None, []
    evaluator = make_evaluator()
    table = []
    try:
        for entry in entries:
            code = (run_dir / "programs" / f"{entry['code_sha256']}.py").read_text()
            outcomes = [evaluator.stage2(code, rotation=r) for r in range(evaluator.n_rotations)]
            scores = [o.metrics["combined_score"] if o.valid else 0.0 for o in outcomes]
            keys = [o.metrics.get(score_key, np.nan) for o in outcomes]
            table.append({"id": entry["id"], "kind": entry["kind"], "search_fitness": entry["metrics"]["combined_score"],
                          "mean_fitness": float(np.mean(scores)), "min_fitness": float(np.min(scores)),
                          f"mean_{score_key}": float(np.nanmean(keys)), "per_rotation": scores,
                          "valid_everywhere": all(o.valid for o in outcomes)})
    finally:
        evaluator.close()
    sign = 1.0 if higher_is_better else -1.0
    best = max(range(len(table)), key=lambda i: (table[i]["valid_everywhere"], round(table[i]["mean_fitness"], 12),
                                                 sign * table[i][f"mean_{score_key}"]))
    return entries[best], table
