"""``python -m efe.apply``: see :mod:`efe.apply.command` (the engines: :mod:`efe.apply.engines`)."""

import sys

from efe.apply.command import main

if __name__ == "__main__":
    sys.exit(main())
