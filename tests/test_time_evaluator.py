"""EFE-Time evaluation: gates reject bad transforms with the right reason; scoring is exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from efe.datasets.synthetic import SyntheticExpParams, generate
from efe.datasets.ts_store import write_series
from efe.proposer.time_moves import Move, render_program
from evaluators.timeseries.evaluator import TimeEvaluator
from tests.conftest import ROOT

IDENTITY = (ROOT / "programs" / "time_identity.py").read_text()


def time_program(fit: str = "return {'hist_len': int(len(y_hist))}",
                 transform: str = "return np.asarray(y, dtype=float).copy()",
                 inverse: str = "return np.asarray(z, dtype=float).copy()") -> str:
    ind = lambda s: "\n".join("        " + l for l in s.strip().splitlines())
    return f'''
# EVOLVE-BLOCK-START
import numpy as np


class TransformProgram:
    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, y_hist, meta):
{ind(fit)}

    def transform(self, y, state):
{ind(transform)}

    def inverse_transform(self, z, state):
{ind(inverse)}
# EVOLVE-BLOCK-END


def build_transform_program(seed=0):
    return TransformProgram(seed)
'''


def spec_for(tmp: Path, forecaster: str = "seasonal_naive", n_series: int = 12) -> dict:
    series = generate(SyntheticExpParams(n_series=n_series, length=96), seed=3)
    write_series(tmp / "train.parquet", series)
    return {
        "setting": "time", "seed": 0, "train_path": str(tmp / "train.parquet"), "prediction_length": 12,
        "season": 1, "forecaster": {"name": forecaster, "params": {}}, "freq": "D", "run_dir": None,
        "dataset": {"name": "synthetic", "description": "", "warnings": [], "n_series": n_series},
        "windows": {"n_windows": 3, "min_history": 24, "n_rotations": 1, "stride": 12, "end_offset": 0,
                    "max_history": 96, "max_total": 0, "min_instances_per_rotation": 10},
        "heldout": {"windows": 1, "stride": 12},
        "selection": {"windows": 0, "claim_windows": 0, "top_k": 0, "require_gain": True, "confirm": True,
                      "min_gain": 0.0,
                      "max_series_loss": None, "interval_z": 2.0},
        "gate": {"sample_series": 3}, "fitness": {}, "sandbox": {"timeout_s": 30, "memory_mb": 1024, "cpu_s": 60},
    }


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    ev = TimeEvaluator(spec_for(tmp_path_factory.mktemp("ts")))
    yield ev
    ev.close()


def test_identity_scores_exactly_half(evaluator):
    outcome = evaluator.evaluate(IDENTITY)
    assert outcome.valid, outcome.reason
    assert outcome.metrics["combined_score"] == 0.5
    assert outcome.metrics["mase_ratio"] == 1.0 and outcome.metrics["fallback_rate"] == 0.0


def test_log_and_detrend_beats_identity_on_exponential_growth(evaluator):
    outcome = evaluator.evaluate(render_program([Move("log"), Move("detrend", (1.0,))]))
    assert outcome.valid, outcome.reason
    assert outcome.metrics["mase_ratio"] < 0.9
    assert outcome.metrics["combined_score"] > 0.5
    assert "helped" in outcome.artifacts["series"]


BAD = {
    "length": time_program(transform="return np.asarray(y, dtype=float)[1:]"),
    "new_nan": time_program(transform="z = np.asarray(y, dtype=float).copy()\nz[0] = np.nan\nreturn z"),
    "infinite_value": time_program(transform="z = np.asarray(y, dtype=float).copy()\nz[-1] = np.inf\nreturn z"),
    "collapsed": time_program(transform="return np.zeros(len(y)) + 1.0"),
    "state": time_program(fit="return {'mean': float(np.nanmean(y_hist))}"),
    "round_trip": time_program(inverse="return np.asarray(z, dtype=float) * 2.0"),
    "inverse_not_finite": time_program(
        transform="return np.log(np.asarray(y, dtype=float))",
        inverse="z = np.asarray(z, dtype=float)\nreturn np.where(z > np.log(state['top']), np.nan, np.exp(z))",
        fit="return {'hist_len': int(len(y_hist)), 'top': float(np.nanmax(y_hist)) * 1.02}"),
    "inverse_length": time_program(inverse="return np.asarray(z, dtype=float)[:12]"),
    "lookahead": time_program(transform="y = np.asarray(y, dtype=float)\nreturn y / np.nanmax(y)",
                              inverse="return np.asarray(z, dtype=float) * state['top']",
                              fit="return {'hist_len': int(len(y_hist)), 'top': float(np.nanmax(y_hist))}"),
    "mutated": time_program(transform="y[0] = y[0] + 1.0\nreturn np.asarray(y, dtype=float).copy()"),
}


@pytest.mark.parametrize("gate", sorted(BAD))
def test_gates_reject_bad_transforms_with_the_right_reason(evaluator, gate):
    outcome = evaluator.evaluate(BAD[gate])
    assert outcome.verdict == f"invalid:gate:{gate}", (outcome.verdict, outcome.reason)
    assert outcome.metrics["combined_score"] == 0.0 and "combined_score" in outcome.metrics
    assert outcome.reason


def test_a_transform_that_changes_the_fitted_state_is_caught_by_its_fingerprint(evaluator):
    """The state's fingerprints after fit and after transform/inverse differ (the one mutation check)."""
    program = time_program(transform="state['calls'] = state.get('calls', 0) + 1\nreturn np.asarray(y, dtype=float).copy()")
    outcome = evaluator.evaluate(program)
    assert outcome.verdict == "invalid:gate:mutated" and "the fitted state" in outcome.reason, outcome.reason


def test_a_series_that_raises_falls_back_and_counts_as_harmed(evaluator):
    program = time_program(transform=(
        "y = np.asarray(y, dtype=float)\n"
        "if np.nanmax(y) > 300:\n"
        "    raise ValueError('too large')\n"
        "return y.copy()"))
    outcome = evaluator.stage2(program)
    assert outcome.valid
    assert 0 < outcome.metrics["fallback_rate"] < 1
    assert outcome.metrics["harm_rate"] >= outcome.metrics["fallback_rate"]
    assert outcome.metrics["combined_score"] < 0.5
    assert "ValueError" in outcome.artifacts["series"] and "too large" not in outcome.artifacts["series"]


def test_artifacts_carry_no_series_values(evaluator):
    outcome = evaluator.evaluate(render_program([Move("log")]))
    text = " ".join(outcome.artifacts.values())
    history = evaluator.instances[0].history
    assert not any(f"{v:.2f}" in text for v in history[:20] if v > 10)


def test_chronos2_scores_through_tiny_checkpoint(tmp_path):
    from tests.helpers.tiny_chronos import build_tiny_chronos2

    spec = spec_for(tmp_path, n_series=4)
    spec["forecaster"] = {"name": "chronos2", "model_path": str(build_tiny_chronos2(tmp_path / "c2")), "params": {}}
    ev = TimeEvaluator(spec)
    try:
        outcome = ev.evaluate(IDENTITY)
        assert outcome.valid and outcome.metrics["combined_score"] == 0.5
        other = ev.evaluate(render_program([Move("log")]))
        assert other.valid and other.metrics["mase_ratio"] != 1.0
    finally:
        ev.close()
