"""``python -m efe.traces run=<dir> [run=<dir> ...] format=sft|preference|reward out=<file.jsonl>``.

A run's proposals and verdicts as fine-tuning data (see :mod:`efe.report.traces`); keys:
``conf/traces.yaml``, and ``run=`` as often as there are runs to merge.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from efe.cli.args import Command, flag, run
from efe.cli.outputs import check_output, staged
from efe.core.config import plain_dict
from efe.report.traces import build_traces, write_traces
from efe.rundir.proposals import PROPOSALS_FILE

COMMAND = Command(
    "traces", "run=<run dir> [run=<run dir> ...] format=sft|preference|reward out=<file.jsonl> "
              "[preference.min_margin=0.0 ...]",
    "Write a run's evaluated proposals as fine-tuning data (SFT, preference pairs, rewards).",
    required=("run", "out"), repeatable=("run",), text_keys=("out",))


def traces(cfg) -> int:
    options = plain_dict(cfg)
    runs = [Path(r).expanduser() for r in options["run"]]
    records, counts = build_traces(runs, str(options["format"]), options)
    read = [run / name for run in runs for name in ("lineage.jsonl", PROPOSALS_FILE, "report.json")]
    out = check_output(str(options["out"]), [*runs, *read], overwrite=flag(options["overwrite"]))
    with staged(out) as target:
        write_traces(records, target)
    note = f"; {counts['without_prompt']} candidates had no recorded prompt" if counts["without_prompt"] else ""
    print(f"wrote {len(records)} {options['format']} records from {counts['examples']} evaluated proposals in "
          f"{counts['runs']} run(s) to {out}{note}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, traces, argv)


if __name__ == "__main__":
    sys.exit(main())
