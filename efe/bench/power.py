"""Planted signals for the power benchmark (``scripts/bench_power.py``).

A planted table takes the feature columns of a bundled table (rows drawn with replacement, so a
table of any size can be made) and draws a new target from them: a few base columns with modest
weights, plus ``strength`` times one engineered feature (a ratio, a product, a deviation from a
group mean, a token parsed from text). The null version (strength 0) draws the target without it.
The oracle is that engineered feature added by hand, refitted and scored on the same held-out rows
by the same trusted code as efe's frozen program, so "the gain there was to find" is known.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from efe.core.config import conf_section, plain_dict
from efe.core.resources import seed_program
from efe.datasets import bundled
from efe.rundir.records import SEED, LineageEntry, read_lineage
from efe.tab.prepare import prepare_tab_run
from efe.tab.selection import choose, no_harm_failed, select_tab, table_z, with_lower_bounds
from evaluators.tabular.evaluator import TabEvaluator

TARGET = "y"


@dataclass(frozen=True)
class Signal:
    table: str
    base: tuple[str, ...]                       # numeric base columns, each weighted 0.5 (standardised)
    feature: Callable[[pd.DataFrame], pd.Series]  # the planted feature, from the table's own columns
    oracle: str                                 # transform body adding column ``planted`` (fit learns ``state``)
    fit: str = 'return {}'                      # fit body (X, y -> state)
    what: str = ""


def _std(s: pd.Series) -> pd.Series:
    s = pd.to_numeric(s, errors="coerce").astype(float)
    sd = float(s.std()) or 1.0
    return ((s - s.mean()) / sd).fillna(0.0)


def _title(name: pd.Series) -> pd.Series:
    return name.astype(str).str.extract(r",\s*([^.]+)\.", expand=False).fillna("")


SIGNALS: dict[str, Signal] = {
    "titanic_title": Signal(
        "titanic", ("age",),
        lambda X: _title(X["name"]).isin(["Miss", "Master"]).astype(float),
        "T['planted'] = X['name'].astype(str).str.extract(r',\\s*([^.]+)\\.', expand=False)"
        ".isin(['Miss', 'Master']).astype(float)",
        what="unmarried title (Miss/Master) parsed from name"),
    "hmda_ratio": Signal(
        "hmda", ("chist", "mhist"),
        lambda X: X["lvrat"] / X["pirat"].clip(lower=0.05),
        "T['planted'] = X['lvrat'] / X['pirat'].clip(lower=0.05)",
        what="lvrat / pirat"),
    "swiss_product": Signal(
        "swiss_labor", ("age",),
        lambda X: X["income"] * X["education"],
        "T['planted'] = X['income'] * X['education']",
        what="income x education"),
    "swiss_groupdev": Signal(
        "swiss_labor", ("education",),
        lambda X: X["income"] - X.groupby("youngkids")["income"].transform("mean"),
        "T['planted'] = X['income'] - X['youngkids'].map(state['means']).fillna(state['all'])",
        fit="return {'means': X.groupby('youngkids')['income'].mean().to_dict(), 'all': float(X['income'].mean())}",
        what="income minus its mean within youngkids"),
    "swiss_age_square": Signal(
        "swiss_labor", ("education",),
        lambda X: (X["age"] - X["age"].median()) ** 2,
        "T['planted'] = (X['age'] - state['median']) ** 2",
        fit="return {'median': float(X['age'].median())}",
        what="squared distance of age from its median (a U shape a linear model cannot draw)"),
}

ORACLE_TEMPLATE = '''# EVOLVE-BLOCK-START
import numpy as np
import pandas as pd


class FeatureProgram:
    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: pd.Series) -> dict:
        {fit}

    def transform(self, X: pd.DataFrame, state: dict) -> pd.DataFrame:
        T = X.copy()
        {transform}
        return T
# EVOLVE-BLOCK-END


def build_feature_program(seed: int = 0) -> FeatureProgram:
    return FeatureProgram(seed)
'''


def oracle_source(signal: str) -> str:
    s = SIGNALS[signal]
    return ORACLE_TEMPLATE.format(fit=s.fit, transform=s.oracle)


def planted_frames(signal: str, n_train: int, n_test: int, strength: float, seed: int,
                   task: str = "binary") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) frames with target ``y``: ``strength`` 0 is the null (the planted feature plays no part).

    The planted feature is computed on the whole bundled table (a group mean over all its rows), then
    standardised, so its effect is the same for every draw; rows are drawn with replacement.
    """
    s = SIGNALS[signal]
    spec = bundled.TABLES[s.table]
    base = spec.load().drop(columns=[spec.target]).reset_index(drop=True)
    planted = _std(s.feature(base))
    drive = sum(0.5 * _std(base[c]) for c in s.base) + float(strength) * planted
    rng = np.random.default_rng([int(seed), 7919, int(round(strength * 1000)), len(signal)])
    rows = rng.integers(0, len(base), n_train + n_test)
    frame = base.iloc[rows].reset_index(drop=True)
    eta = drive.to_numpy()[rows]
    if task == "binary":
        p = 1.0 / (1.0 + np.exp(-eta))
        frame[TARGET] = np.where(rng.random(len(rows)) < p, "yes", "no")
    elif task == "regression":
        frame[TARGET] = eta + rng.normal(0.0, 1.0, len(rows))
    else:
        raise ValueError(f"unknown task {task!r}: binary or regression")
    return frame.iloc[:n_train].reset_index(drop=True), frame.iloc[n_train:].reset_index(drop=True)


def read_run_report(run_dir: Path, model: str) -> dict:
    """What a finished ``efe.tab`` run froze and what it realised held out with ``model``."""
    report = json.loads((Path(run_dir) / "report.json").read_text())
    est = report.get("estimates") or {}
    sel = report.get("selection") or {}
    held = {r["model"]: r for r in report.get("heldout", [])}
    row = held.get(model, {})
    return {"frozen_identity": bool(est.get("frozen_is_identity", False)),
            "realised": float(row.get("delta", float("nan"))),
            "realised_se": float(row.get("delta_se", float("nan"))),
            "claimed": float(est.get("claimed_delta_auc", 0.0)),
            "verdict": sel.get("verdict"), "design": sel.get("design"),
            "min_detectable": sel.get("min_detectable_delta"),
            "pool_rows": sel.get("pool_rows"),
            "best_search_delta_auc": max((f.get("search_delta_auc", 0.0) for f in report.get("finalists", [])),
                                         default=0.0),
            "n_new": len((report.get("winner") or {}).get("new_columns", []))}


def run_efe_tab(train_csv: Path, test_csv: Path, run_dir: Path, overrides: list[str],
                timeout_s: float = 7200) -> subprocess.CompletedProcess:
    """A real ``python -m efe.tab`` run on the planted files (the test file is the held-out part)."""
    cmd = [sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={train_csv}",
           f"dataset.test_path={test_csv}", f"dataset.target={TARGET}", "dataset.name=planted",
           f"hydra.run.dir={run_dir}", "memory.use=false", "memory.save=false", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)


def replay_choice(run_dir: Path, design: str) -> str | None:
    """The finalist id another selection design would have frozen on this run's pool estimates (None: identity).

    ``design`` is a ``selection.multiplicity`` value, optionally with a one-test z: ``sequential@1.645``.

    The same decision as the run's own (``efe.tab.selection.choose``), with the design's z; a no-harm check the
    run recorded as failed still rules a finalist out, one it never ran counts as passed.
    """
    report = json.loads((Path(run_dir) / "report.json").read_text())
    table, sel = report.get("finalists") or [], report.get("selection") or {}
    if not table:
        return None
    multiplicity, _, z_single = design.partition("@")
    # a report written before a design's settings existed replays it with conf's defaults; maxt needs the
    # finalists' per-fold pool gains, which older reports lack (it then tests at the one-test z)
    fresh = {**conf_section("tab", "selection"), **sel, "multiplicity": multiplicity, "require_gain": True,
             "confidence_z_single": float(z_single or sel.get("confidence_z_single", 2.0)), "seed": sel.get("seed", 0)}
    fresh["confidence_z"], fresh["confidence_z_later"] = table_z(table, fresh)
    rows = with_lower_bounds(table, fresh)
    i, _, _ = choose(rows, fresh,
                     lambda i: any(no_harm_failed(v) for v in (rows[i].get("no_harm") or {}).values()))
    return None if i is None else rows[i]["id"]


def program_of(run_dir: Path, entry_id: str) -> str:
    """The source of the lineage entry ``entry_id`` of a run."""
    entry = next(e for e in read_lineage(Path(run_dir)) if e.id == entry_id)
    return entry.source(run_dir)


def confirm_oracle(train, test, cfg, run_dir: Path) -> dict:
    """The confirmation step alone: the oracle program as the search's only finalist, through the run's own
    final selection (``cfg``'s ``selection`` section) on a fresh run directory. Whether it is confirmed on the
    pool measures the selection design's power (planted) or false-freeze rate (null), search aside."""

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec, _, _ = prepare_tab_run(cfg, run_dir, (train, test))
    signal = json.loads((run_dir.parent / "signal.json").read_text())["signal"]
    (run_dir / "programs").mkdir(exist_ok=True)
    lineage = []
    for i, (kind, source, score) in enumerate([(SEED, seed_program("tab").read_text(), 0.5),
                                              ("candidate", oracle_source(signal), 0.6)]):
        sha = hashlib.sha256(source.encode()).hexdigest()
        (run_dir / "programs" / f"{sha}.py").write_text(source)
        lineage.append(LineageEntry(kind, id=kind, iteration=i, code_sha256=sha, verdict="valid",
                                    metrics={"valid": 1.0, "combined_score": score}))
    sel = plain_dict(cfg.selection)
    chosen, table, summary = select_tab(lineage, run_dir, lambda scorer=None: TabEvaluator(spec), 1, sel,
                                        int(cfg.seed), [])
    row = next(r for r in table if r["kind"] != SEED)
    return {"confirmed": chosen is not None and chosen.kind != SEED, "pool_delta": row["fresh_delta_auc"],
            "pool_se": row["fresh_delta_auc_se"], "z": summary["confidence_z"], "pool_rows": summary.get("pool_rows")}
