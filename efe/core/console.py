"""The run's console: one line at a time on stderr, so stdout stays free for what a command prints as output."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
