"""``python -m efe.package run=<run dir> out=<dir>``: a frozen tabular program, ready to hand over.

Writes the standalone module (``efe.export``), a copy of the frozen program (with its review log),
a pytest suite with sample rows (training rows, labels removed) and their expected outputs,
``package.json`` (input and output schema, versions, hashes) and ``MODEL_CARD.md``
(see ``efe.handover.package``). ``pytest <dir>`` needs only numpy, pandas and pytest.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from efe.core.config import ConfigError, compose, plain_dict
from efe.frozen.freeze import FrozenProgramError
from efe.handover.package import build_package
from efe.frozen.review_log import LOG_NAME

USAGE = "usage: python -m efe.package run=<run dir> out=<package dir> [sample_rows=40 ...] (conf/package.yaml)"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    try:
        cfg = plain_dict(compose("package", argv))
        if not cfg.get("run") or not cfg.get("out"):
            print(USAGE, file=sys.stderr)
            return 2
        out = build_package(Path(str(cfg["run"])), Path(str(cfg["out"])), cfg)
    except (ConfigError, FrozenProgramError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    review = "reviewed" if (out / "frozen" / LOG_NAME).exists() else "not reviewed yet"
    print(f"wrote {out} (program {review}; test it with: pytest {out}; review it with: python -m efe.review {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
