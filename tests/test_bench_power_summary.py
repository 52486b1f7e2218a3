"""The power benchmark's table: what it counts as captured, detected and falsely frozen."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_power", ROOT / "scripts" / "bench_power.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cell(strength: float, oracle: float, realised: float, se: float | None, frozen: bool, **extra) -> dict:
    return {"label": "default", "task": "regression", "scorer": "random_forest", "rows": 5000, "seed": 0,
            "strength": strength, "oracle": oracle, "realised": realised, "realised_se": se,
            "frozen_identity": not frozen, "min_detectable": 0.01, **extra}


def test_a_null_freeze_with_a_held_out_gain_is_counted_but_not_as_false(bench):
    """Three null tables: the identity, a freeze that gains +0.006 ± 0.0015 held out (a real gain for the model:
    the null's target still depends on its base columns) and one at +0.001 ± 0.002 (false); the replayed design
    froze the first null with no held-out SE recorded, which counts as false."""
    cells = [cell(1.0, 0.02, 0.018, 0.0001, True), cell(1.0, 0.03, 0.0, 0.0, False),
             cell(0.0, -0.001, 0.0, 0.001, False, replay={"maxt": {"frozen_identity": False, "realised": 0.009}}),
             cell(0.0, 0.001, 0.006, 0.0015, True), cell(0.0, 0.0, 0.001, 0.002, True)]
    rows, table = bench.summarise(cells)
    run = next(r for r in rows if r["design"] == "default")
    assert run["captured"] == pytest.approx(0.018 / 0.05) and run["detected"] == 1
    assert (run["null_freezes"], run["false_freezes"], run["null_runs"]) == (2, 1, 3)
    assert "| 2/3 (1) |" in table
    maxt = next(r for r in rows if r["design"] == "default/replay:maxt")
    assert (maxt["null_freezes"], maxt["false_freezes"]) == (1, 1)
    assert not bench.heldout_gain({"realised": 0.004, "realised_se": float("nan")})
