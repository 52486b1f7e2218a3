"""``python -m efe.plot run=<run dir> [format=png|svg|pdf] [x=iteration|generation]``: draw a run's plots.

Writes into ``<run>/plots/``: the evolution tree (``evolution_tree.png`` and the self-contained,
offline ``evolution_tree.html``), fitness over iterations (``fitness.png``), the MAP-Elites grid of the
latest checkpoint (``map_elites.png``) and, for time-series runs, held-out forecasts before and after
the transform (``forecasts.png``). A plot whose inputs are missing (a partial run) is skipped with a
warning; :func:`write_plots` never raises for that.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from efe.plots import Run, Skip, forecasts, load_run
from efe.plots.grid import plot_grid
from efe.plots.progress import plot_progress
from efe.plots.tree import plot_tree, write_tree_html

log = logging.getLogger("efe.plots")

USAGE = "usage: python -m efe.plot run=<run dir> [format=png|svg|pdf] [x=iteration|generation]"
FORMATS = ("png", "svg", "pdf")
AXES = ("iteration", "generation")
RUN_MARKERS = ("lineage.jsonl", "report.json", "config.yaml", "spec.json", "evolution")


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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    options: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in ("run", "format", "x"):
            print(f"error: unexpected argument {arg!r}\n{USAGE}", file=sys.stderr)
            return 2
        options[key] = value
    if not options.get("run"):
        print(f"error: run=<run dir> is required\n{USAGE}", file=sys.stderr)
        return 2
    run_dir = Path(options["run"]).expanduser()
    if not run_dir.is_dir():
        print(f"error: run={run_dir}: no such directory", file=sys.stderr)
        return 2
    if not any((run_dir / marker).exists() for marker in RUN_MARKERS):
        print(f"error: run={run_dir} is not an efe run directory (none of {', '.join(RUN_MARKERS)} there)",
              file=sys.stderr)
        return 2
    fmt, axis = options.get("format", "png"), options.get("x", "iteration")
    if fmt not in FORMATS or axis not in AXES:
        print(f"error: format must be one of {', '.join(FORMATS)} and x one of {', '.join(AXES)}\n{USAGE}",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    written = write_plots(run_dir, fmt, axis)
    if not written:
        print(f"no plots written for {run_dir} (see the warnings above)", file=sys.stderr)
        return 1
    for title, rel in written.items():
        print(f"{title}: {run_dir / rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
