"""``python -m efe.traces``: a run's proposals and verdicts as fine-tuning data (see :mod:`efe.report.traces`)."""

import sys

from efe.report.traces import main

if __name__ == "__main__":
    sys.exit(main())
