"""The cascade's reference point: the best fully scored fitness of the run so far.

openevolve evaluates programs in several worker processes, each with its own evaluator, so the
best is kept in a small JSON file in the run directory that every evaluator reads and raises
under a file lock. The evaluator does not know a program's island, so the reference is the
run's best (a candidate that cannot beat it on its first folds is not worth all folds). Without
a run directory (``efe.score``, tests) the best lives in this process only.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from efe.rundir.atomic import atomic_write_text


class SharedBest:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._local: float | None = None

    def read(self) -> float | None:
        if self.path is None:
            return self._local
        try:
            return float(json.loads(self.path.read_text())["fitness"])
        except (OSError, ValueError, KeyError, TypeError):
            return self._local

    def offer(self, fitness: float) -> None:
        """Raise the best to ``fitness`` if it is higher (atomic across processes)."""
        if self._local is None or fitness > self._local:
            self._local = fitness
        if self.path is None:
            return
        lock = self.path.with_suffix(".lock")
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                current = self.read()
                if current is None or fitness > current:
                    atomic_write_text(self.path, json.dumps({"fitness": fitness}))
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
