"""``python -m efe.export run=<run dir> out=feature_program.py``: a frozen tabular program as one module.

The module needs only numpy and pandas (see :mod:`efe.frozen.export`); keys: ``conf/export.yaml``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from efe.cli.args import Command, UsageError, flag, run
from efe.cli.outputs import check_output
from efe.frozen.export import write_module
from efe.rundir.paths import frozen_dir_of

COMMAND = Command(
    "export", "run=<run dir or frozen dir> out=feature_program.py [sidecar=auto|true|false] [overwrite=true]",
    "Write a frozen tabular program as one self-contained module (numpy and pandas only).",
    required=("out",), text_keys=("run", "frozen", "out"))


def export(cfg) -> int:
    source = cfg.run or cfg.frozen
    if not source:
        raise UsageError(f"run= (or frozen=) is required ({COMMAND.usage_line()}; -h lists the keys)")
    frozen_dir = frozen_dir_of(str(source))
    sidecar = str(cfg.sidecar).lower()
    if sidecar not in ("auto", "true", "false"):
        raise UsageError(f"sidecar={cfg.sidecar}: choose auto, true or false")
    out = check_output(str(cfg.out), [source, frozen_dir], overwrite=flag(cfg.overwrite))
    check_output(Path(out).with_suffix(".state.json"), [source, frozen_dir], overwrite=flag(cfg.overwrite))
    written = write_module(frozen_dir, Path(out), sidecar)
    print("wrote " + " and ".join(str(p) for p in written))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, export, argv)


if __name__ == "__main__":
    sys.exit(main())
