"""``python -m efe.export``: a frozen tabular program as one self-contained module (see :mod:`efe.frozen.export`)."""

import sys

from efe.frozen.export import main

if __name__ == "__main__":
    sys.exit(main())
