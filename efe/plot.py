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
from typing import Sequence

from efe.report.plots.write import AXES, FORMATS, write_plots

USAGE = "usage: python -m efe.plot run=<run dir> [format=png|svg|pdf] [x=iteration|generation]"
RUN_MARKERS = ("lineage.jsonl", "report.json", "config.yaml", "spec.json", "evolution")


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
