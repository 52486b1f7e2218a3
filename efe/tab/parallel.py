"""Independent scorings after the search, spread over the cores as the search's evaluations are.

Final selection re-scores every finalist on fresh folds, and the held-out report fits each report
model with and without the winner's features: independent jobs. They run in threads: the work
is in LightGBM/scikit-learn fits (which release the GIL) and in sandbox child processes, and
threads share the training data instead of copying it into more processes (memory on large
tables). Each thread re-scores with an evaluator of its own (its own sandbox worker).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, Sequence, TypeVar

from efe.core.console import say

T = TypeVar("T")
R = TypeVar("R")


def worker_count(setting: Any) -> int:
    """``selection.workers``: a number, or null for the number of cores."""
    return max(1, int(setting)) if setting else max(1, os.cpu_count() or 1)


def map_parallel(fn: Callable[[T], R], items: Sequence[T], workers: int, label: str = "") -> list[R]:
    """``[fn(x) for x in items]`` on ``workers`` threads, in order; a progress line per finished job."""
    items = list(items)
    out: list[Any] = [None] * len(items)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items) or 1))) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for done, future in enumerate(as_completed(futures), start=1):
            out[futures[future]] = future.result()
            if label:
                say(f"{label}: {done}/{len(items)} done ({time.monotonic() - started:.0f}s)")
    return out


class Prescored:
    """Fresh-fold outcomes scored up front in parallel, answered like ``evaluator.score_fresh``."""

    def __init__(self, outcomes: dict[tuple, Any], make_evaluator: Callable[[], Any],
                 selection_rows: Sequence[int] = (), search_rows: Sequence[int] = ()) -> None:
        self.outcomes = outcomes
        self.make_evaluator = make_evaluator
        self.selection_rows = selection_rows  # the evaluators' selection pool (empty: none)
        self.search_rows = search_rows  # ... and the rows the search scored

    def score_fresh(self, source: str, n_folds: int, n_repeats: int, seed: int) -> Any:
        key = (source, n_folds, n_repeats, seed)
        if key not in self.outcomes:  # not scored up front: score it now
            evaluator = self.make_evaluator()
            try:
                self.outcomes[key] = evaluator.score_fresh(source, n_folds, n_repeats, seed)
            finally:
                evaluator.close()
        return self.outcomes[key]

    def close(self) -> None:
        pass


def prescored(make_evaluator: Callable[[], Any], sources: Sequence[str], fresh: dict, workers: int) -> Prescored:
    """Every program's outcome on the fresh folds (``evaluator.score_fresh``), ``workers`` at a time."""
    local = threading.local()
    made: list[Any] = []
    lock = threading.Lock()
    settings = (fresh["n_folds"], fresh["n_repeats"], fresh["seed"])

    def one(source: str) -> Any:
        evaluator = getattr(local, "evaluator", None)
        if evaluator is None:
            evaluator = local.evaluator = make_evaluator()
            with lock:
                made.append(evaluator)
        return evaluator.score_fresh(source, *settings)

    unique = list(dict.fromkeys(sources))
    try:
        outcomes = map_parallel(one, unique, workers, "final selection: finalists re-scored")
        rows = getattr(made[0], "selection_rows", ()) if made else ()
        searched = getattr(made[0], "search_rows", ()) if made else ()
    finally:
        for evaluator in made:
            evaluator.close()
    return Prescored({(source, *settings): outcome for source, outcome in zip(unique, outcomes)}, make_evaluator,
                     rows, searched)
