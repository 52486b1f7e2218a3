"""EFE-Time does no harm: noise freezes the identity; a real multiplicative structure is found and its
held-out gain lies inside the interval the report claims (real short offline runs through the CLI);
a program that helps on average but hurts one series is not frozen (the selection itself)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from efe.bench.time_fixed import STANDARDIZE
from efe.datasets.ts_store import write_series
from efe.core.resources import seed_program
from efe.proposer.time_moves import MANIFEST
from efe.rundir.records import LineageEntry
from efe.time.selection import select_time
from tests.test_time_run import efe, only_run


def write_long_csv(path: Path, series: dict[str, np.ndarray], freq: str = "MS") -> Path:
    frames = [pd.DataFrame({"item_id": k, "timestamp": pd.date_range("2000-01-01", periods=len(v), freq=freq),
                            "target": v}) for k, v in series.items()]
    pd.concat(frames).to_csv(path, index=False)
    return path


def run_on(tmp_path: Path, series: dict[str, np.ndarray], description: str, iterations: int,
           forecaster: list[str] = ("forecaster=theta",), horizon: int = 12, season: int = 12,
           freq: str = "MS", extra: tuple[str, ...] = ()) -> dict:
    csv = write_long_csv(tmp_path / "data.csv", series, freq)
    proc = efe("efe.time", "dataset=long", f"dataset.path={csv}", f"dataset.description='{description}'",
               f"dataset.prediction_length={horizon}", f"dataset.season={season}", *forecaster, "heldout.windows=3",
               "heldout.stride=0.5", "windows.n_windows=4", f"evolution.iterations={iterations}", "evolution.deterministic=true",
               f"runs_root={tmp_path / 'runs'}",
               f"llm.cache_dir={tmp_path / 'cache'}", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path / "runs")
    return {"run": run, "report": json.loads((run / "report.json").read_text()), "md": (run / "report.md").read_text(),
            "frozen": (run / "frozen" / "program.py").read_text()}


def seed_and_candidate(tmp_path: Path, series: dict[str, np.ndarray], candidate: str, confirm: bool,
                       stride: int = 6, selection_windows: int = 4) -> tuple[list[LineageEntry], dict]:
    """A lineage of the identity and one candidate, and the time spec final selection reads (4 selection
    and 2 claim windows, 6 steps apart, theta, the per-series rule at 0.05)."""
    write_series(tmp_path / "train.parquet", series)
    (tmp_path / "programs").mkdir()
    lineage = []
    for kind, source, fitness in (("seed", seed_program("time").read_text(), 0.5), ("candidate", candidate, 1.2)):
        sha = hashlib.sha256(source.encode()).hexdigest()
        (tmp_path / "programs" / f"{sha}.py").write_text(source)
        lineage.append(LineageEntry(kind, id=kind, code_sha256=sha,
                                    metrics={"valid": 1.0, "combined_score": fitness, "gain": 0.0, "mase_ratio": 1.0}))
    spec = {"train_path": str(tmp_path / "train.parquet"), "prediction_length": 12, "season": 12, "seed": 0,
            "forecaster": {"name": "theta"}, "fitness": {}, "sandbox": {}, "freq": "M", "run_dir": None,
            "dataset": {"name": "test", "description": "", "warnings": [], "n_series": len(series)},
            "windows": {"n_windows": 4, "stride": stride, "min_history": 24, "end_offset": 0, "max_history": 120,
                        "max_total": 0, "n_rotations": 3, "min_instances_per_rotation": 10},
            "heldout": {"windows": 1, "stride": 12}, "gate": {},
            "selection": {"windows": selection_windows, "claim_windows": 2, "top_k": 1, "require_gain": True, "confirm": confirm,
                          "min_gain": 0.0, "max_series_loss": 0.05, "interval_z": 2.0}}
    return lineage, spec


def test_noise_around_a_level_freezes_the_identity(tmp_path):
    rng = np.random.default_rng(0)
    series = {f"s{k}": 100.0 + 5.0 * rng.standard_normal(132) for k in range(4)}
    out = run_on(tmp_path, series, "independent noise around a constant level", iterations=6)
    report = out["report"]
    assert report["selection"]["decision"] == "no gain found"
    assert len(report["selection"]["table"]) >= 2  # the identity and at least one candidate were compared
    assert report["winner"]["id"] == next(r["id"] for r in report["selection"]["table"] if r["kind"] == "seed")
    assert "no gain found" in out["md"] and MANIFEST not in out["frozen"]
    assert report["heldout"][0]["improvement_pct"]["mase"] == 0.0


def test_multiplicative_growth_and_season_finds_a_variance_stabilising_program(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(144)
    series = {}
    for k in range(4):
        level = 10.0 * (k + 1) * np.exp(0.03 * t)
        season = 1.0 + 0.35 * np.sin(2 * np.pi * (t + k) / 12)
        series[f"s{k}"] = level * season * np.exp(0.03 * rng.standard_normal(len(t)))
    # 16 iterations: the structure takes two moves (variance, then trend), which 10 did not always reach
    out = run_on(tmp_path, series, "multiplicative growth with a yearly season that grows with the level",
                 iterations=16)
    report = out["report"]
    assert report["selection"]["decision"] == "gain", out["md"][-3000:]
    manifest = next(line for line in out["frozen"].splitlines() if line.strip().startswith(MANIFEST))
    assert "log" in manifest or "boxcox" in manifest, manifest
    lo, hi = report["selection"]["claimed"]["interval"]
    realised = report["heldout"][0]["gain"]["log_mase"]
    assert lo > 0 and lo <= realised <= hi, (lo, realised, hi)


def test_a_program_that_hurts_one_series_is_not_frozen(tmp_path):
    """Standardisation helps five additive-season series a lot; on the one series above 1000 the program
    also adds a wave the forecaster cannot follow, on every window of its history: on the mean it is a
    clear gain, so only the per-series rule keeps it from being frozen. The loss is significant (change +
    2 SE < -5%, the SE of one window from origins spread over the series' history); the raw count is beside it."""
    rng = np.random.default_rng(1)
    t = np.arange(144)
    series = {f"add{k}": 50 + 40 * np.sin(2 * np.pi * (t + k) / 12) + 0.2 * t + rng.standard_normal(len(t))
              for k in range(5)}
    series["big"] = 5000 + 400 * np.sin(2 * np.pi * t / 12) + 2 * t + 10 * rng.standard_normal(len(t))
    lineage, spec = seed_and_candidate(tmp_path, series, BIG_HARM, confirm=False)
    guarded = select_time(lineage, tmp_path, spec)
    row = next(r for r in guarded.table if r["kind"] == "candidate")
    assert row["gain_lcb"] > 0 and row["worst_series"] == "big" and not row["series_ok"], row
    assert row["series_losses_significant"] == ["big"] and row["series_losses_raw"] == 1
    assert guarded.decision == "no gain found" and guarded.chosen.kind == "seed"
    assert guarded.rejected_for_series == 1 and guarded.claimed["gain"] == 0.0
    mean_only = select_time(lineage, tmp_path, {**spec, "selection": {**spec["selection"], "max_series_loss": None}})
    assert mean_only.decision == "gain" and mean_only.chosen.kind == "candidate"
    claimed = mean_only.claimed  # measured on the claim windows, after the choice
    assert "claim windows" in claimed["source"] and claimed["n_windows"] == 2 * len(series)


def wiggling(when: str, comment: str) -> str:
    """Standardisation plus a 3-std wave of period 5 the forecaster cannot follow, where ``when`` holds."""
    return STANDARDIZE.replace('''    def transform(self, y, state):
        return (np.asarray(y, dtype=float) - state["mean"]) / state["std"]

    def inverse_transform(self, z, state):
        return np.asarray(z, dtype=float) * state["std"] + state["mean"]''', f'''    def _wiggle(self, n, state):
        # {comment}: a 3-std wave of period 5 the forecaster cannot follow
        on = 3.0 if {when} else 0.0
        return on * np.sin(2 * np.pi * np.arange(n) / 5 + 1.0)

    def transform(self, y, state):
        y = np.asarray(y, dtype=float)
        return (y - state["mean"]) / state["std"] + self._wiggle(len(y), state)

    def inverse_transform(self, z, state):
        z = np.asarray(z, dtype=float)
        return (z - self._wiggle(len(z), state)) * state["std"] + state["mean"]''')


BIG_HARM = wiggling('state["mean"] > 1000', "on a series above 1000")
LATE_HARM = wiggling('state["hist_len"] >= LATE', "from a history of LATE points on").replace(
    "import numpy as np\n", "import numpy as np\n\nLATE = 124\n", 1)


def test_a_gain_the_claim_windows_do_not_confirm_is_not_frozen(tmp_path):
    """A program that helps on every selection window and hurts on the claim windows (the latest ones,
    longer histories): its selection lower bound is positive, the claim windows say otherwise, and the
    identity is frozen; without selection.confirm the same program would be frozen."""
    rng = np.random.default_rng(2)
    t = np.arange(144)
    series = {f"add{k}": 50 + 40 * np.sin(2 * np.pi * (t + k) / 12) + 0.2 * t + rng.standard_normal(len(t))
              for k in range(4)}
    lineage, spec = seed_and_candidate(tmp_path, series, LATE_HARM, confirm=True)
    guarded = select_time(lineage, tmp_path, spec)
    row = next(r for r in guarded.table if r["kind"] == "candidate")
    assert row["gain_lcb"] > 0 and row["series_ok"], row
    assert guarded.decision == "not confirmed" and guarded.chosen.kind == "seed", (guarded.decision, guarded.claimed)
    assert guarded.unconfirmed["gain"] < 0 and guarded.unconfirmed["n_windows"] == 2 * len(series)
    assert guarded.claimed["gain"] == 0.0
    unguarded = select_time(lineage, tmp_path, {**spec, "selection": {**spec["selection"], "confirm": False}})
    assert unguarded.decision == "gain" and unguarded.chosen.kind == "candidate"
    assert unguarded.claimed["gain"] == guarded.unconfirmed["gain"]
