"""Every plot a run's files allow, drawn into ``<run>/plots/`` (``python -m efe.plot`` and the reports call it)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from omegaconf import OmegaConf

from efe.report.plots import Run, Skip, forecasts, load_run
from efe.report.plots.grid import plot_grid
from efe.report.plots.progress import plot_progress
from efe.report.plots.tree import plot_tree, write_tree_html

log = logging.getLogger("efe.report.plots")

FORMATS = ("png", "svg", "pdf")
AXES = ("iteration", "generation")


def _jobs(run: Run, fmt: str, axis: str) -> list[tuple[str, str, Callable[[Path], Path]]]:
    """(title, file name, drawer) for every plot that applies to this run."""
    jobs = [
        ("Evolution tree", f"evolution_tree.{fmt}", lambda p: plot_tree(run, p, axis)),
        ("Evolution tree (interactive)", "evolution_tree.html", lambda p: write_tree_html(run, p, axis)),
        ("Fitness over iterations", f"fitness.{fmt}", lambda p: plot_progress(run, p)),
        ("MAP-Elites grid", f"map_elites.{fmt}", lambda p: plot_grid(run, p)),
    ]
    if forecasts.applies(run):
        jobs.append(("Held-out forecasts", f"forecasts.{fmt}", lambda p: forecasts.plot_forecasts(run, p)))
    return jobs


def plots_at_the_end(cfg: Any, run_dir: Path) -> dict[str, str]:
    """The figures a finished run draws, unless ``report.plots=false`` (efe.plot draws them later);
    a run started before the key existed draws them, as it did then."""
    if not OmegaConf.select(cfg, "report.plots", default=True):
        return {}
    return write_plots(run_dir)


def write_plots(run_dir: Path, fmt: str = "png", axis: str = "iteration") -> dict[str, str]:
    """Draw every plot the run's files allow into <run_dir>/plots/; returns {title: path relative to run_dir}.

    A plot whose inputs are missing or unreadable is skipped with a logged warning; this function
    does not raise for a partial or broken run (only for a bad ``fmt`` or ``axis``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}")
    if axis not in AXES:
        raise ValueError(f"x={axis!r}: expected one of {', '.join(AXES)}")
    run_dir = Path(run_dir)
    written: dict[str, str] = {}
    try:
        run = load_run(run_dir)
        jobs = _jobs(run, fmt, axis)
        if not run.lineage:
            log.warning("%s is missing or empty: no tree or fitness plot", run_dir / "lineage.jsonl")
    except Exception as exc:  # noqa: BLE001 - plots are a by-product; a run must still finish
        log.warning("plots skipped: could not read %s (%s: %s)", run_dir, type(exc).__name__, exc)
        return written
    for title, name, draw in jobs:
        try:
            (run_dir / "plots").mkdir(parents=True, exist_ok=True)
            path = draw(run_dir / "plots" / name)
        except Skip as why:
            if run.lineage or title == "Held-out forecasts":
                log.warning("%s plot skipped: %s", title, why)
            continue
        except Exception as exc:  # noqa: BLE001
            log.warning("%s plot skipped: %s: %s", title, type(exc).__name__, exc, exc_info=True)
            continue
        written[title] = Path(path).relative_to(run_dir).as_posix()
    return written


