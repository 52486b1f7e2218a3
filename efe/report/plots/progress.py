"""Fitness over iterations: each island's candidates and running best, and the running best overall."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from efe.rundir.records import MIGRANT, NO_PROGRAM, SEARCHED_KINDS

from efe.report.plots import (
    INVALID_COLOR,
    PATH_COLOR,
    Run,
    Skip,
    island_color,
    island_marker,
    new_figure,
)


def plot_progress(run: Run, out: Path) -> Path | None:
    # lazy: matplotlib is slow to import; only drawing needs it
    from matplotlib.lines import Line2D

    # Migrants are copies of programs already drawn; the seed counts as iteration 0 of island 0.
    entries = [e for e in run.lineage if e.kind in SEARCHED_KINDS and e.fitness is not None
               and e.iteration is not None]
    if not entries:
        raise Skip(f"{run.dir / 'lineage.jsonl'} has no seed or candidate with a fitness")
    entries.sort(key=lambda e: e.iteration)
    fig = new_figure(11, 5.5)
    ax = fig.add_subplot()
    islands = sorted({e.island for e in entries if e.island is not None})
    handles = []
    for island in islands:
        color, marker = island_color(island), island_marker(island)
        own = [e for e in entries if e.island == island]
        good = [e for e in own if not e.invalid]
        if good:
            x = np.array([e.iteration for e in good], float)
            y = np.array([e.fitness for e in good], float)
            ax.plot(x, y, marker=marker, ms=5, lw=0.7, alpha=0.6, color=color)
            ax.step(x, np.maximum.accumulate(y), where="post", lw=1.4, ls="--", color=color)
        handles.append(Line2D([], [], color=color, marker=marker, ms=5, lw=1.4, ls="--",
                              label=f"island {island}: candidates, running best"))
    bad = [e for e in entries if e.invalid]
    if bad:
        ax.scatter([e.iteration for e in bad], [e.fitness for e in bad], marker="x", color=INVALID_COLOR,
                   s=25, zorder=3)
        handles.append(Line2D([], [], marker="x", ls="", color=INVALID_COLOR, label=f"invalid ({len(bad)})"))

    good = [e for e in entries if not e.invalid]
    if good:
        x = np.array([e.iteration for e in good], float)
        best = np.maximum.accumulate(np.array([e.fitness for e in good], float))
        last = max(e.iteration for e in run.lineage if e.iteration is not None)
        ax.step(np.append(x, last), np.append(best, best[-1]), where="post", lw=2.6, color="black", zorder=4)
        handles.append(Line2D([], [], color="black", lw=2.6, label=f"running best overall ({best[-1]:.4f})"))
    winner = run.programs.get(run.winner or "")
    if winner is not None and winner.kind != MIGRANT and winner.fitness is not None:
        ax.scatter([winner.iteration or 0], [winner.fitness], marker="*", s=260, color=PATH_COLOR,
                   edgecolors="black", linewidths=0.6, zorder=5)
        handles.append(Line2D([], [], marker="*", ls="", ms=14, color=PATH_COLOR,
                              label=f"winner {str(run.winner)[:8]}"))
    missing = [e.iteration for e in run.lineage if e.kind == NO_PROGRAM and e.iteration is not None]
    if missing:
        ax.plot(missing, [0.0] * len(missing), ls="", marker="|", ms=14, color=INVALID_COLOR,
                transform=ax.get_xaxis_transform())
        handles.append(Line2D([], [], marker="|", ls="", ms=12, color=INVALID_COLOR,
                              label=f"no program ({len(missing)})"))

    ax.set_xlabel("iteration")
    ax.set_ylabel("fitness (combined_score)")
    ax.grid(alpha=0.3)
    ax.set_title(f"Fitness over iterations — {run.label}", fontsize=12)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.savefig(out, dpi=110)
    return out
