"""The live progress line, and the watchdog that stops the search when the LLM budget is spent, the LLM
endpoint keeps failing, or evaluations keep losing their Ray workers (the circuit breakers)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, TextIO

from efe.llm.ledger import LLM_FAILURE_PREFIX, Ledger
from efe.rundir.records import CANDIDATE, MIGRANT, SEED, LineageEntry
from efe.search.status import INFRA_FAILURE_PREFIX
from evaluators.ray_executor import INFRASTRUCTURE


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    def __init__(self, total: int, ledger: Ledger, *, score_label: str = "ΔAUC", score_key: str = "delta_auc",
                 start_iteration: int = 0, stream: TextIO | None = None, interval_s: float = 1.0,
                 score_format: str = "+.4f", max_llm_failures: int | None = None,
                 max_infra_failures: int | None = None) -> None:
        self.total = total
        self.ledger = ledger
        self.max_llm_failures = max_llm_failures
        self.max_infra_failures = max_infra_failures
        self.infra_in_row = self.infra = 0  # evaluations lost to the executor: in a row, in all
        self.score_label, self.score_key, self.score_format = score_label, score_key, score_format
        self.start_iteration = start_iteration
        self.stream = stream or sys.stderr
        self.interval = interval_s
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.done_iterations: set[int] = set()
        self.valid = self.evaluated = 0
        self.duplicates = 0   # iterations whose proposal repeated an evaluated program (novelty check)
        self.judged = 0       # iterations whose proposal the judge turned down
        self.best_score = None
        self.best_delta = None
        self._stop_cb: Callable[[str], None] | None = None
        self.stop_reason: str | None = None
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_print = 0.0

    def on_entry(self, entry: LineageEntry) -> None:
        if entry.kind in (SEED, MIGRANT):
            if entry.kind == SEED:
                self._score(entry)
            return
        if entry.iteration is not None:
            self.done_iterations.add(entry.iteration)
        # rejections are kept off the console (efe.search.openevolve_adapter): the line counts them
        self.duplicates += int(entry.duplicate)
        self.judged += int(entry.verdict == "judge_rejected")
        if entry.kind == CANDIDATE:
            self.evaluated += 1
            self.valid += int(entry.valid)
            self._score(entry)
            lost = entry.verdict == INFRASTRUCTURE
            self.infra += int(lost)
            self.infra_in_row = self.infra_in_row + 1 if lost else 0
            if lost and self.max_infra_failures and self.infra_in_row >= int(self.max_infra_failures):
                self.request_stop(f"{INFRA_FAILURE_PREFIX}: {self.infra_in_row} evaluations in a row lost "
                                  f"their Ray worker; last: {entry.reason}")
        reason = entry.reason or ""
        if any(s in reason for s in ("exhausted", "cap reached", LLM_FAILURE_PREFIX)):
            self.request_stop(reason.split(": ", 1)[-1])
        self.render()

    def all_lost(self) -> str | None:
        """Why to call the search stopped by infrastructure failures when every evaluation of this
        session lost its Ray worker (too few to trip the breaker), or None."""
        if self.evaluated and self.infra == self.evaluated:
            return f"{INFRA_FAILURE_PREFIX}: all {self.infra} evaluation(s) of the search lost their Ray worker"
        return None

    def _score(self, entry: LineageEntry) -> None:
        if entry.valid and (self.best_score is None or entry.score > self.best_score):
            self.best_score = entry.score
            self.best_delta = entry.metrics.get(self.score_key)

    def line(self) -> str:
        done = len(self.done_iterations)
        elapsed = time.monotonic() - self.started
        remaining = max(self.total - self.start_iteration - done, 0)
        eta = _clock(elapsed / done * remaining) if done else "?"
        totals = self.ledger.totals()
        valid_rate = f"{100 * self.valid / self.evaluated:.0f}%" if self.evaluated else "-"
        best = f"{self.best_score:.4f}" if self.best_score is not None else "-"
        delta = format(self.best_delta, self.score_format) if isinstance(self.best_delta, (int, float)) else "-"
        rejected = (f"{self.duplicates} duplicates rejected | " if self.duplicates else "") \
            + (f"{self.judged} rejected by the judge | " if self.judged else "")
        return (f"iter {self.start_iteration + done}/{self.total} | best {best} ({self.score_label} {delta}) | "
                f"valid {valid_rate} | {rejected}LLM {totals.calls} calls (+{totals.cached} cached) ${totals.cost_usd:.4f} | "
                f"{_clock(elapsed)} elapsed, ETA {eta}")

    def render(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_print < (self.interval if self.tty else 5.0):
            return
        self._last_print = now
        text = self.line()
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    # ------------------------------------------------------------ watchdog
    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            if self._stop_cb is not None:
                self._stop_cb(reason)

    def start(self, stop_cb: Callable[[str], None]) -> None:
        self._stop_cb = stop_cb
        self._thread = threading.Thread(target=self._watch, name="efe-progress", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._halt.wait(self.interval):
            reason = self.ledger.exhausted() or self.ledger.failing(self.max_llm_failures)
            if reason:
                self.request_stop(reason)
            if self.tty:
                self.render()

    def close(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.render(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
