"""Where the time of an evaluation goes, by part: the profile behind ``scripts/bench_eval.py``.

The evaluator charges each part of its work to a clock (gates, sandbox overhead, the program's
own fit/transform, preprocessing, scorer fits, feedback); whatever an evaluation spends outside
these parts is bookkeeping. Reading the clock costs nothing measurable, so it is always on.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator

PARTS = ("gates", "sandbox", "program", "preprocess", "scorer", "feedback")


class CostClock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.scorer_fits = 0

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += max(float(seconds), 0.0)

    def take(self) -> tuple[dict[str, float], int]:
        """(seconds per part, scorer fits) since the last call, and start again from zero."""
        seconds, fits = {p: self.seconds.get(p, 0.0) for p in PARTS}, self.scorer_fits
        self.seconds, self.scorer_fits = defaultdict(float), 0
        return seconds, fits


@contextmanager
def charged(clock: CostClock | None, name: str) -> Iterator[None]:
    """``clock.part(name)``, or nothing when no clock is given (scoring outside an evaluation)."""
    if clock is None:
        yield
    else:
        with clock.part(name):
            yield
