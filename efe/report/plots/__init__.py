"""Plots of a run directory: evolution tree, fitness progress, MAP-Elites grid, held-out forecasts.

Each module draws one figure from the files a run leaves behind (``lineage.jsonl``, ``report.json``,
openevolve checkpoints, ``heldout_examples.json``); :func:`efe.plot.write_plots` calls them all. This
module holds what they share: reading the run and drawing on a figure that is not tied to pyplot (an
Agg canvas of its own, so plotting never changes the process's matplotlib backend).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efe.rundir.records import NO_PROGRAM, LineageEntry, best_valid, read_lineage

log = logging.getLogger("efe.report.plots")

# Island markers; "x" is kept for invalid candidates and "*" for the winner.
ISLAND_MARKERS = ("o", "s", "^", "D", "v", "P", "p", "h", "<", ">", "d", "H", "8")
FITNESS_CMAP = "viridis"
INVALID_COLOR = "#9a9a9a"
PATH_COLOR = "#d62728"


class Skip(Exception):
    """A plot cannot be drawn from this run's files (the message says which input is missing)."""


def island_marker(island: Any) -> str:
    return ISLAND_MARKERS[island % len(ISLAND_MARKERS)] if isinstance(island, int) and island >= 0 else "o"


def island_color(island: Any) -> str:
    import matplotlib  # lazy: matplotlib is slow to import; only drawing needs it

    colors = matplotlib.colormaps["tab10"].colors
    index = island if isinstance(island, int) and island >= 0 else 7
    return matplotlib.colors.to_hex(colors[index % len(colors)])


def new_figure(width: float, height: float):
    """A matplotlib Figure with its own Agg canvas (no pyplot, no global backend)."""
    # lazy: matplotlib is slow to import; only drawing needs it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


@dataclass
class Run:
    """What the plots read from a run directory (every part may be missing on a partial run)."""

    dir: Path
    lineage: list[LineageEntry] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    winner: str | None = None
    ancestry: list[str] = field(default_factory=list)  # winner first, back to its root

    @property
    def programs(self) -> dict[str, LineageEntry]:
        """Lineage entries that are programs, by id (first entry wins)."""
        out: dict[str, LineageEntry] = {}
        for entry in self.lineage:
            if entry.id and entry.kind != NO_PROGRAM:
                out.setdefault(str(entry.id), entry)
        return out

    @property
    def label(self) -> str:
        name = (self.report.get("dataset") or {}).get("name") if isinstance(self.report.get("dataset"), dict) else None
        return str(name or self.dir.parent.name or self.dir.name)

    @property
    def setting(self) -> str:
        """"time" or "tab", from the report or, failing that, from the metrics the lineage holds."""
        if "forecaster" in self.report or "prediction_length" in self.report:
            return "time"
        if any("mase_ratio" in e.metrics for e in self.lineage):
            return "time"
        return "tab"


def load_run(run_dir: Path) -> Run:
    run_dir = Path(run_dir)
    report = read_json(run_dir / "report.json")
    run = Run(dir=run_dir, lineage=read_lineage(run_dir / "lineage.jsonl"),
              report=report if isinstance(report, dict) else {})
    programs = run.programs
    winner = (run.report.get("winner") or {}).get("id") if isinstance(run.report.get("winner"), dict) else None
    if winner is None:  # a run cut short before its report: the best valid program so far
        best = best_valid(programs.values())  # the seed or a candidate: never a migrant's copy
        winner = best.id if best is not None else None
    run.winner = str(winner) if winner is not None else None
    run.ancestry = ancestry(run.winner, programs)
    return run


def ancestry(program_id: str | None, programs: dict[str, LineageEntry]) -> list[str]:
    path: list[str] = []
    seen: set[str] = set()
    while program_id is not None and program_id in programs and program_id not in seen:
        seen.add(program_id)
        path.append(program_id)
        parent = programs[program_id].parent
        program_id = str(parent) if parent is not None else None
    return path
