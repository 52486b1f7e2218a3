"""``python -m efe.package run=<run dir> out=<dir>``: a frozen tabular program, ready to hand over.

Writes the standalone module (``efe.export``), a copy of the frozen program (with its review log),
a pytest suite with sample rows (training rows, labels removed) and their expected outputs,
``package.json`` (input and output schema, versions, hashes) and ``MODEL_CARD.md``
(see ``efe.handover.package``). ``pytest <dir>`` needs only numpy, pandas and pytest. The package
is built beside ``out`` and moved there when complete; a non-empty ``out`` is refused unless
``overwrite=true`` (then it is replaced).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from efe.cli.args import Command, flag, run
from efe.cli.outputs import check_output, staged
from efe.core.config import plain_dict
from efe.frozen.review_log import LOG_NAME
from efe.handover.package import build_package
from efe.rundir.paths import FROZEN

COMMAND = Command(
    "package", "run=<run dir> out=<package dir> [sample_rows=40 ...] [overwrite=true]",
    "Package a run's frozen tabular program: module, frozen copy, tests, package.json, MODEL_CARD.md.",
    required=("run", "out"), text_keys=("run", "out", "module"))


def package(cfg) -> int:
    options = plain_dict(cfg)
    run_dir = Path(str(options["run"])).expanduser()
    out = check_output(str(options["out"]), [run_dir], overwrite=flag(options["overwrite"]), directory=True)
    with staged(out) as target:
        build_package(run_dir, target, options)
    review = "reviewed" if (out / FROZEN / LOG_NAME).exists() else "not reviewed yet"
    print(f"wrote {out} (program {review}; test it with: pytest {out}; review it with: python -m efe.review {out})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, package, argv)


if __name__ == "__main__":
    sys.exit(main())
