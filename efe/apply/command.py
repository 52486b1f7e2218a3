"""``python -m efe.apply frozen=<dir> input=data.csv output=features.parquet [engine=pandas|dask|spark]``.

The engines are :mod:`efe.apply.engines`; this is the command line (keys: ``conf/apply.yaml``).
The output is written beside its path and moved there only when every row was written, so a
failed apply leaves no half-written file or directory; an output that would destroy data (an
input, a run's file, a non-empty directory) is refused (:mod:`efe.cli.outputs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from efe.apply.engines import apply, check_engine
from efe.apply.io import input_files
from efe.cli.args import Command, flag, run
from efe.cli.outputs import check_output, staged
from efe.core.config import plain_dict
from efe.rundir.paths import frozen_dir_of

COMMAND = Command(
    "apply", "frozen=<frozen dir or run dir> input=<.csv|.parquet file or directory> output=<.parquet|.csv> "
             "[engine=pandas|dask|spark] [key=value ...]",
    "Apply a frozen tabular program to a file, chunk by chunk (pandas) or partition by partition (dask, spark).",
    required=("frozen", "input", "output"),
    text_keys=("frozen", "input", "output", "dask_address", "spark_master"))


def apply_command(cfg) -> int:
    options = plain_dict(cfg)
    engine, overwrite = str(options["engine"]), flag(options["overwrite"])
    frozen = frozen_dir_of(options["frozen"])
    source, output = Path(options["input"]).expanduser(), Path(options["output"]).expanduser()
    check_engine(engine, output, overwrite)
    check_output(output, [source, *input_files(source), frozen], overwrite=overwrite, directory=engine != "pandas")
    with staged(output) as target:
        rows = apply(frozen, source, target, engine, options)
    print(f"wrote {rows} rows to {output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, apply_command, argv)
