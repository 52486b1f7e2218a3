"""What one candidate evaluation costs, part by part, and what a real run costs (scripts/bench_eval.py).

The profile runs the tabular evaluator in this process on a representative candidate set (the
offline proposer's moves chained from the seed program, as a search would produce them) and
reads the evaluator's cost clock: gates (with their steps inside the sandbox), sandbox overhead
(data transfer, fork, lock-down, encoding), the program's own fit/transform on the folds,
preprocessing, scorer fits, feedback, and the rest (bookkeeping). The ratio "whole evaluation /
scorer fits" is taken from the same evaluations at the same moment, so machine load inflates both
sides alike; the floor next to it is the ratio an evaluator that cost nothing would reach, since
the candidate's own code must run on every fold it is scored on. A run is a real ``python -m efe.tab``
in a child process whose process tree is sampled from /proc for its peak memory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from efe.core.config import compose
from efe.core.resources import seed_program
from efe.tab.context import build_context
from efe.proposer.tab_moves import NoMoveAvailable, propose
from efe.rundir.records import CANDIDATE, read_lineage
from efe.tab.prepare import prepare_tab_run
from evaluators.tabular.costs import PARTS
from evaluators.tabular.evaluator import TabEvaluator

ROOT = Path(__file__).resolve().parents[2]
ROWS = ("gates", "sandbox", "program", "preprocess", "scorer", "feedback", "bookkeeping")


# --------------------------------------------------------------------------- data


def generated_table(rows: int, cols: int, seed: int = 0, task: str = "binary") -> pd.DataFrame:
    """Mixed numeric/categorical columns with some missing values and a binary target ``label``.

    A quarter of the columns are categorical (a few to a few hundred levels); about 5% of the
    cells of every third column are missing. The label depends on a few columns, non-linearly.
    """
    rng = np.random.default_rng(seed)
    n_cat = max(1, cols // 4)
    data: dict[str, Any] = {}
    for j in range(cols - n_cat):
        data[f"num{j}"] = rng.lognormal(0.0, 1.0, rows) if j % 2 else rng.normal(0.0, 1.0, rows)
    for j in range(n_cat):
        levels = np.array([f"c{j}_{k}" for k in range(int(5 * 3 ** (j % 4)))], dtype=object)
        data[f"cat{j}"] = levels[rng.integers(0, len(levels), rows)]
    frame = pd.DataFrame(data)
    for k, col in enumerate(frame.columns):
        if k % 3 == 2:
            frame.loc[rng.random(rows) < 0.05, col] = np.nan
    logit = (np.log1p(np.nan_to_num(frame["num1"].to_numpy(float)))
             - 0.8 * np.nan_to_num(frame["num0"].to_numpy(float))
             + 0.5 * (frame["cat0"].astype(str).str.len().to_numpy() % 2)
             + rng.normal(0.0, 1.0, rows))
    if task == "regression":
        frame["label"] = logit
    elif task == "multiclass":  # three classes of equal size
        frame["label"] = np.array(["low", "middle", "high"])[np.digitize(logit, np.quantile(logit, [1 / 3, 2 / 3]))]
    else:
        frame["label"] = np.where(logit > np.median(logit), "yes", "no")
    return frame


def dataset_overrides(table: str, workdir: Path, rows: int, cols: int, task: str = "auto") -> list[str]:
    """Hydra overrides naming a bundled table, or a generated one written to ``workdir`` (its label binary unless
    ``task`` is multiclass or regression)."""
    if table != "generated":
        return [f"dataset={table}"] + ([f"dataset.task={task}"] if task != "auto" else [])
    kind = task if task != "auto" else "binary"
    suffix = "" if kind == "binary" else f"_{kind}"
    path = workdir / f"generated_{rows}x{cols}{suffix}.parquet"
    if not path.exists():
        generated_table(rows, cols, task=kind).to_parquet(path, index=False)
    return ["dataset=csv", f"dataset.path={path}", "dataset.target=label", f"dataset.task={kind}",
            f"dataset.name=generated_{rows}x{cols}{suffix}"]


# --------------------------------------------------------------------------- candidates


def candidate_set(context: dict, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(description, source) of ``n`` offline-proposer programs, each a step from an earlier one."""
    identity = seed_program("tab").read_text()
    rng = np.random.default_rng(seed)
    pool, out = [identity], []
    for _ in range(n * 3):
        if len(out) >= n:
            break
        parent = pool[int(rng.integers(len(pool)))] if rng.random() < 0.3 else pool[-1]
        try:
            source, description = propose(parent, context, {"valid": True}, rng)
        except NoMoveAvailable:
            continue
        pool.append(source)
        out.append((description, source))
    return out


# --------------------------------------------------------------------------- profile


@dataclass
class Profile:
    table: str
    rows: int
    columns: int
    n_folds: int
    parts: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in ROWS})
    walls: list[float] = field(default_factory=list)
    fits: list[int] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    empty_calls: list[float] = field(default_factory=list)  # seconds of sandbox calls with an empty plan
    load: str = ""

    @property
    def ratio(self) -> float:
        scorer = sum(self.parts["scorer"])
        return sum(self.walls) / scorer if scorer else float("nan")

    @property
    def floor(self) -> float:
        """The ratio if everything but the scorer fits and the program's own fold calls cost nothing."""
        scorer = sum(self.parts["scorer"])
        return (scorer + sum(self.parts["program"])) / scorer if scorer else float("nan")

    @property
    def sandboxed_floor(self) -> float:
        """The floor plus one sandbox call with an empty plan per candidate: fork and lock-down at least once."""
        scorer = sum(self.parts["scorer"])
        if not scorer or not self.empty_calls:
            return float("nan")
        return self.floor + len(self.walls) * float(np.median(self.empty_calls)) / scorer

    def lines(self) -> list[str]:
        n = max(len(self.walls), 1)
        wall = sum(self.walls) / n
        fits = sum(self.fits)
        per_fit = sum(self.parts["scorer"]) / fits if fits else float("nan")
        valid = sum(v == "valid" for v in self.verdicts)
        out = [f"{self.table}: {self.rows} training rows x {self.columns} columns, K={self.n_folds} folds, "
               f"{len(self.walls)} candidates ({valid} valid), {fits} scorer fits "
               f"({1000 * per_fit:.0f} ms each), load average {self.load}",
               f"  {'part':<12} {'ms/candidate':>13} {'share':>7}"]
        for part in ROWS:
            ms = 1000 * sum(self.parts[part]) / n
            out.append(f"  {part:<12} {ms:13.1f} {100 * ms / (1000 * wall) if wall else 0:6.1f}%")
        out.append(f"  {'whole':<12} {1000 * wall:13.1f}")
        out.append(f"  ratio whole evaluation / scorer fits = {self.ratio:.2f}")
        out.append(f"  floor (scorer fits + the program's own fold calls) / scorer fits = {self.floor:.2f}")
        if self.empty_calls:
            out.append(f"  one sandbox call with an empty plan (fork, lock-down): median "
                       f"{1000 * float(np.median(self.empty_calls)):.1f} ms of {len(self.empty_calls)}; "
                       f"floor with one such call per candidate = {self.sandboxed_floor:.2f}")
        return out


def profile_table(table: str, workdir: Path, n_candidates: int, rows: int = 2000, cols: int = 20,
                  overrides: list[str] | None = None, task: str = "auto") -> Profile:
    """Evaluate the candidate set on ``table`` and split each evaluation's time by part."""
    run_dir = workdir / f"profile_{table}"
    cfg = compose("tab", dataset_overrides(table, workdir, rows, cols, task) + list(overrides or []))
    spec, train, _ = prepare_tab_run(cfg, run_dir)
    context = build_context(train, seed=int(cfg.seed))
    candidates = candidate_set(context, n_candidates)
    ev = TabEvaluator(spec)
    try:
        ev.evaluate(seed_program("tab").read_text())  # baselines cached, the cascade's best = identity
        ev.evaluate(candidates[0][1])  # warm: lazy imports, first-call paths
        profile = Profile(table, len(train.y), train.X.shape[1], ev.folds.n_folds, load=_load())
        for _, source in candidates:
            ev.clock.take()
            started = time.perf_counter()
            outcome = ev.evaluate(source)
            wall = time.perf_counter() - started
            seconds, fits = ev.clock.take()
            profile.walls.append(wall)
            profile.fits.append(fits)
            profile.verdicts.append(outcome.verdict)
            for part in PARTS:
                profile.parts[part].append(seconds[part])
            profile.parts["bookkeeping"].append(wall - sum(seconds.values()))
        profile.empty_calls = _empty_calls(ev, len(candidates) * 2)
    finally:
        ev.close()
    return profile


def _empty_calls(ev: TabEvaluator, n: int) -> list[float]:
    """Seconds of ``n`` sandbox calls that run no step of the identity: what isolating a program costs at least."""
    identity = seed_program("tab").read_text()
    seconds = []
    for _ in range(n):
        started = time.perf_counter()
        ev.sandbox.run(identity, "tab", [], [], limits=ev.limits)
        seconds.append(time.perf_counter() - started)
        time.sleep(0.02)  # like the scoring between two real calls: the worker reaps the last child meanwhile
    return seconds


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- a real run


class TreeMemory:
    """Peak of the RSS summed over a process and all its descendants, sampled from /proc."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        self.pid, self.interval = pid, interval_s
        self.peak_bytes = 0
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._halt.set()
        self._thread.join()

    def _loop(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._halt.is_set():
            self.peak_bytes = max(self.peak_bytes, sum(_rss_pages(p) for p in _tree(self.pid)) * page)
            self._halt.wait(self.interval)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_pages(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class RunCost:
    wall_s: float
    search_s: float
    after_search_s: float
    candidates: int
    peak_bytes: int
    progress_lines: int
    returncode: int
    run_dir: str
    load_before: str
    load_after: str
    phases: list[tuple[str, float]] = field(default_factory=list)  # (phase, seconds), in run order
    first_line_s: float = float("nan")  # seconds until the run printed anything

    @property
    def per_minute(self) -> float:
        return 60.0 * self.candidates / self.search_s if self.search_s else float("nan")

    def lines(self) -> list[str]:
        return [f"  wall {self.wall_s:.0f} s: search {self.search_s:.0f} s, after the search {self.after_search_s:.0f} s "
                f"(final selection, refit, held-out report)",
                f"  {self.candidates} candidates, {self.per_minute:.1f} candidates per minute of search",
                f"  peak memory of the run's processes (RSS summed over the tree): {self.peak_bytes / 2**30:.2f} GiB",
                f"  progress/status lines printed: {self.progress_lines}; exit code {self.returncode}",
                f"  load average before {self.load_before}, after {self.load_after}; run directory {self.run_dir}",
                f"  first console line after {self.first_line_s:.1f} s; phases:"] + [
                f"    {name:<42s} {seconds:7.1f} s" for name, seconds in self.phases]


_SEARCH_DONE = re.compile(r"^search \w+ \(")
# The console line that starts each phase of a tab run (efe/run.py, efe/tab/prepare.py, efe/tab/freeze.py).
PHASES = (("loading the table", re.compile(r"^loading ")),
          ("split, data checks, context, spec", re.compile(r"^loaded ")),
          ("search (seed first, then the iterations)", re.compile(r"^search: scoring the seed")),
          ("final selection", re.compile(r"^search \w+ \(")),
          ("freeze (refit on the whole training part)", re.compile(r"^freeze: fitting")),
          ("held-out report, memory, tracking", re.compile(r"^freeze: done")),
          ("end", re.compile(r"^Done in ")))


def phase_times(marks: list[tuple[str, float]], wall: float) -> list[tuple[str, float]]:
    """Seconds spent in each phase, from the time each phase's first console line appeared."""
    ends = [t for _, t in marks[1:]] + [wall]
    return [(name, end - t) for (name, t), end in zip(marks, ends) if name != "end"]


def run_cost(table: str, workdir: Path, iterations: int, rows: int = 2000, cols: int = 20,
             overrides: list[str] | None = None, log=print, task: str = "auto") -> RunCost:
    """A real ``python -m efe.tab`` run: wall time, search vs. after-search time, peak memory."""
    run_dir = workdir / f"run_{table}_{rows}x{cols}_{iterations}"
    args = [sys.executable, "-m", "efe.tab", *dataset_overrides(table, workdir, rows, cols, task),
            f"evolution.iterations={iterations}", "llm=offline", f"hydra.run.dir={run_dir}",
            *list(overrides or [])]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    load_before = _load()
    started = time.monotonic()
    marks: dict[str, float] = {}
    phase_marks: list[tuple[str, float]] = [("start-up (imports, sandbox probe)", 0.0)]
    first_line = float("nan")
    lines = 0
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    with TreeMemory(proc.pid) as memory:
        for line in proc.stdout:
            lines += 1
            now = time.monotonic() - started
            text = line.rstrip()
            first_line = now if lines == 1 else first_line
            seen = {name for name, _ in phase_marks}
            for name, pattern in PHASES:
                if name not in seen and pattern.match(text):
                    phase_marks.append((name, now))
                    break
            if text.startswith("run directory:"):
                marks.setdefault("search_start", now)
            if _SEARCH_DONE.match(text):
                marks.setdefault("search_end", now)
            log(f"  [{now:6.0f}s] {text}")
        proc.wait()
    wall = time.monotonic() - started
    candidates = sum(1 for e in read_lineage(run_dir / "lineage.jsonl") if e.kind == CANDIDATE)  # missing: 0
    search_s = marks.get("search_end", wall) - marks.get("search_start", 0.0)
    return RunCost(wall, search_s, wall - marks.get("search_end", wall), candidates, memory.peak_bytes, lines,
                   proc.returncode, str(run_dir), load_before, _load(), phase_times(phase_marks, wall), first_line)


def scratch_dir(path: str | None) -> Path:
    out = Path(path) if path else Path(tempfile.mkdtemp(prefix="efe-bench-eval-"))
    out.mkdir(parents=True, exist_ok=True)
    return out
