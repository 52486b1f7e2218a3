"""``python -m efe.plot run=<run dir> [format=png|svg|pdf] [x=iteration|generation]``: draw a run's plots.

Writes into ``<run>/plots/``: the evolution tree (``evolution_tree.png`` and the self-contained,
offline ``evolution_tree.html``), fitness over iterations (``fitness.png``), the MAP-Elites grid of the
latest checkpoint (``map_elites.png``) and, for time-series runs, held-out forecasts before and after
the transform (``forecasts.png``). A plot whose inputs are missing (a partial run) is skipped with a
warning; :func:`write_plots` never raises for that. Keys: ``conf/plot.yaml``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

from efe.cli.args import Command, UsageError, run
from efe.report.plots.write import AXES, FORMATS, write_plots

COMMAND = Command("plot", "run=<run dir> [format=png|svg|pdf] [x=iteration|generation]",
                  "Draw a run's plots into <run>/plots/.", required=("run",), text_keys=("run",))
RUN_MARKERS = ("lineage.jsonl", "report.json", "config.yaml", "spec.json", "evolution")


def plot(cfg) -> int:
    run_dir = Path(str(cfg.run)).expanduser()
    if not run_dir.is_dir():
        raise UsageError(f"run={run_dir}: no such directory")
    if not any((run_dir / marker).exists() for marker in RUN_MARKERS):
        raise UsageError(f"run={run_dir} is not an efe run directory (none of {', '.join(RUN_MARKERS)} there)")
    fmt, axis = str(cfg.format), str(cfg.x)
    if fmt not in FORMATS or axis not in AXES:
        raise UsageError(f"format must be one of {', '.join(FORMATS)} and x one of {', '.join(AXES)} "
                         f"(got format={fmt} x={axis})")
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


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, plot, argv)


if __name__ == "__main__":
    sys.exit(main())
