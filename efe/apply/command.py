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
from efe.apply.io import check_input, input_files, option
from efe.cli.args import Command, flag, run
from efe.cli.common import sandbox_mode
from efe.cli.outputs import check_output, staged
from efe.core.config import ConfigError, plain_dict
from efe.core.console import say
from efe.core.specs import SandboxSpec, build
from efe.frozen.freeze import load_frozen
from efe.sandbox import Sandbox
from efe.rundir.paths import frozen_dir_of

COMMAND = Command(
    "apply", "frozen=<frozen dir or run dir> input=<.csv|.parquet file or directory> output=<.parquet|.csv> "
             "[engine=pandas|dask|spark] [key=value ...]",
    "Apply a frozen tabular program to a file, chunk by chunk (pandas) or partition by partition (dask, spark).",
    required=("frozen", "input", "output"),
    text_keys=("frozen", "input", "output", "dask_address", "spark_master"))


def isolation(options: dict) -> str:
    """The isolation the frozen program gets, printed; refused where ``sandbox_limits.require_isolation=true``
    and the kernel gives none (or the sandbox is off)."""
    limits = build(SandboxSpec, options["sandbox_limits"], "sandbox_limits")
    key = "sandbox_limits.require_isolation"
    if not flag(options["sandbox"]):
        if limits.require_isolation:
            raise ConfigError(f"{key}=true, but sandbox=false runs the frozen program in this process")
        mode = "none (sandbox=false: the frozen program runs in this process, trusted)"
    else:
        with Sandbox(limits) as probe:
            mode = sandbox_mode(limits.require_isolation, probe, key, "the frozen program")
    say(f"apply: sandbox isolation: {mode}")
    return mode


def apply_command(cfg) -> int:
    options = plain_dict(cfg)
    engine, overwrite = str(options["engine"]), flag(options["overwrite"])
    frozen = frozen_dir_of(options["frozen"])
    source, output = Path(options["input"]).expanduser(), Path(options["output"]).expanduser()
    check_engine(engine, output, overwrite)
    check_output(output, [source, *input_files(source), frozen], overwrite=overwrite, directory=engine != "pandas")
    # the input refused first (one line, no sandbox started); the engine checks each file again as it reads it
    check_input(source, load_frozen(frozen).manifest.get("input_schema", []), int(option(options, "check_rows")))
    isolation(options)
    with staged(output) as target:
        rows = apply(frozen, source, target, engine, options)
    print(f"wrote {rows} rows to {output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, apply_command, argv)
