"""The time-series offline proposer's move library: every chain renders to an exactly invertible program."""

from __future__ import annotations

import ast
import itertools
import json
import warnings

import numpy as np
import pytest

from efe.core import plain
from efe.core.contracts import TIME
from efe.core.programs import contract_problems
from efe.sandbox.policy import find_violations
from efe.proposer.time_moves import (
    GROUP,
    KINDS,
    Move,
    NoMoveAvailable,
    candidate_moves,
    parse_moves,
    propose,
    render_program,
)
from tests.conftest import ROOT

IDENTITY_TIME = (ROOT / "programs" / "time_identity.py").read_text()
RTOL = 1e-4
WIDEN = 0.1

VARIANCE = [None, Move("log"), Move("boxcox")]
TREND = [None, Move("detrend", (1.0,)), Move("detrend", (0.5,)), Move("difference")]
SEASON = [None, Move("seasonal_adjust")]
SCALE = [None, Move("robust_scale"), Move("recent_scale", ("horizon", 2)), Move("recent_scale", ("season", 3)),
         Move("level_anchor")]
CHAINS = [[m for m in combo if m is not None] for combo in itertools.product(VARIANCE, TREND, SEASON, SCALE)]


def make_meta(y: np.ndarray, horizon: int, season: int) -> dict:
    """The metadata fit receives (same keys as the evaluator's)."""
    f = y[np.isfinite(y)]
    n = len(f)
    std = float(np.std(f)) if n else 0.0
    mean = float(np.mean(f)) if n else 0.0
    recent = f[-horizon:]
    return {
        "prediction_length": horizon, "season": season, "hist_len": len(y), "n_valid": n, "mean": mean,
        "std": std, "median": float(np.median(f)) if n else 0.0, "min": float(f.min()) if n else 0.0,
        "max": float(f.max()) if n else 0.0, "range": float(np.ptp(f)) if n else 0.0,
        "positive_fraction": float(np.mean(f > 0)) if n else 0.0,
        "zero_fraction": float(np.mean(f == 0)) if n else 0.0, "skewness": 0.0,
        "cv": std / abs(mean) if mean else 0.0, "trend_strength": 0.0,
        "recent_mean": float(np.mean(recent)) if len(recent) else 0.0,
        "recent_std": float(np.std(recent)) if len(recent) else 0.0,
    }


def make_series() -> dict[str, tuple[np.ndarray, np.ndarray, int, int]]:
    """name -> (history, future, horizon, season)."""
    rng = np.random.default_rng(0)
    out = {}
    t = np.arange(230)
    y = 10 * np.exp(0.02 * t) * (1 + 0.02 * rng.normal(size=len(t)))
    out["exp_growth"] = (y[:200], y[200:], 30, 7)
    t = np.arange(150)
    y = 50 + 10 * np.sin(2 * np.pi * t / 12) + 0.05 * t + rng.normal(0, 1, len(t))
    out["seasonal"] = (y[:132], y[132:], 18, 12)
    y = y.copy() + 20
    y[rng.random(len(y)) < 0.1] = np.nan
    y[131] = np.nan
    y[140] = np.nan  # a missing future value too
    out["with_nan"] = (y[:132], y[132:], 18, 12)
    out["constant"] = (np.full(60, 5.0), np.full(10, 5.0), 10, 7)
    out["short"] = (np.array([3.0, 4.0, 2.5, 5.0, 4.5, 6.0]), np.array([6.5, 5.5, 7.0]), 3, 12)
    walk = np.cumsum(rng.normal(0, 1, 120)) - 5
    out["signed_walk"] = (walk[:100], walk[100:] - 3 * np.arange(20), 20, 1)  # future leaves the range
    sparse = np.full(40, np.nan)
    sparse[[5, 17]] = [2.0, 3.0]
    out["mostly_nan"] = (sparse, np.array([2.5, 3.5, 1.0, 0.0]), 4, 7)
    counts = rng.poisson(0.4, 90).astype(float)
    out["intermittent"] = (counts[:80], counts[80:], 10, 7)
    out["linear"] = (np.arange(50, dtype=float) * 2 + 1, np.arange(50, 60, dtype=float) * 2 + 1, 10, 5)
    return out


SERIES = make_series()


def load(source: str):
    assert find_violations(ast.parse(source)) == []
    assert contract_problems(source, TIME) == []
    namespace: dict = {}
    exec(compile(source, "<program>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["build_transform_program"](0)


def check_program(program, name: str) -> np.ndarray:
    """The evaluator's stage-1 contract, in process; returns the transformed history."""
    hist, future, horizon, season = SERIES[name]
    meta = make_meta(hist, horizon, season)
    hist_before, meta_before = hist.copy(), json.dumps(meta)
    state = program.fit(hist, meta)
    assert isinstance(state, dict) and state["hist_len"] == len(hist)
    json.dumps(state)  # plain python numbers, lists and dicts
    state = plain.roundtrip(state)  # what the sandbox boundary and freezing hand back
    frozen = plain.encode(state)

    z = np.asarray(program.transform(hist, state), dtype=float)
    assert z.shape == hist.shape
    assert np.array_equal(np.isnan(z), np.isnan(hist)), "NaN positions changed"
    assert not np.isinf(z).any()
    fz, fy = z[np.isfinite(z)], hist[np.isfinite(hist)]
    if len(fy) > 1 and np.ptp(fy) > 0:
        assert np.ptp(fz) > 1e-12 * max(1.0, np.max(np.abs(fz))), "history collapsed to a constant"

    ext = np.concatenate([hist, future])
    zx = np.asarray(program.transform(ext, state), dtype=float)
    assert np.array_equal(np.isnan(zx), np.isnan(ext)) and not np.isinf(zx).any()
    assert np.allclose(zx[: len(hist)], z, rtol=1e-9, atol=1e-12, equal_nan=True), "look-ahead"
    back = np.asarray(program.inverse_transform(zx[len(hist):], state), dtype=float)
    assert back.shape == future.shape
    ok = np.isfinite(future)
    err = np.abs(back[ok] - future[ok])
    assert (err <= RTOL * np.maximum(np.abs(future[ok]), 1.0)).all(), f"round trip: max error {err.max():.3g}"

    lo, hi = (float(np.min(fz)), float(np.max(fz))) if len(fz) else (0.0, 0.0)
    span = hi - lo
    for n in (1, 7, 50):
        for w in (np.linspace(lo - WIDEN * span, hi + WIDEN * span, n),
                  np.linspace(hi + WIDEN * span, lo - WIDEN * span, n)):
            w_before = w.copy()
            r = np.asarray(program.inverse_transform(w, state), dtype=float)
            assert r.shape == (n,) and np.isfinite(r).all(), f"inverse not finite on a {n}-step widened range"
            assert np.array_equal(w, w_before)
    assert np.array_equal(hist, hist_before, equal_nan=True) and json.dumps(meta) == meta_before
    assert plain.encode(state) == frozen, "transform or inverse_transform changed the state"
    return z


def chain_id(chain: list[Move]) -> str:
    return "+".join(m.describe() for m in chain) or "identity"


@pytest.mark.parametrize("chain", CHAINS, ids=chain_id)
def test_every_chain_satisfies_the_contract_on_every_series(chain):
    source = render_program(chain, "test")
    assert parse_moves(source) == chain
    program = load(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (log of 0, empty means, overflow) either
        for name in SERIES:
            check_program(program, name)


def test_every_kind_is_covered():
    assert {m.kind for chain in CHAINS for m in chain} == set(KINDS)


def test_log_detrend_straightens_exponential_growth():
    hist = SERIES["exp_growth"][0]
    t = np.arange(len(hist))

    def curvature(x):  # size of the quadratic part of the fit, relative to the residual spread
        c2 = np.polyfit(t, x, 2)[0]
        return abs(c2) * len(x) ** 2 / np.std(x - np.polyval(np.polyfit(t, x, 2), t))

    program = load(render_program([Move("log"), Move("detrend", (1.0,))]))
    z = program.transform(hist, program.fit(hist, make_meta(hist, 30, 7)))
    assert curvature(z) < 0.05 * curvature(hist)
    assert abs(np.polyfit(t, z, 1)[0]) * len(z) < 0.5 * np.std(z)  # no trend left
    assert np.std(z[:50]) == pytest.approx(np.std(z[-50:]), rel=0.5)  # variance stabilised


def test_seasonal_adjust_removes_the_profile_and_skips_short_histories():
    hist, _, horizon, season = SERIES["seasonal"]
    program = load(render_program([Move("seasonal_adjust")]))
    state = program.fit(hist, make_meta(hist, horizon, season))
    assert state["steps"][0]["period"] == 12
    z = program.transform(hist, state)
    assert np.std(z - 0.05 * np.arange(len(z))) < 0.3 * np.std(hist - 0.05 * np.arange(len(hist)))
    short = SERIES["short"][0]
    assert program.fit(short, make_meta(short, 3, 12))["steps"][0]["period"] == 0


def test_degenerate_histories_fall_back_to_identity_steps():
    lin = SERIES["linear"][0]
    state = load(render_program([Move("detrend", (1.0,))])).fit(lin, make_meta(lin, 10, 5))
    assert state["steps"][0]["slope"] == 0.0  # removing the fit would flatten the history
    const = SERIES["constant"][0]
    state = load(render_program([Move("robust_scale"), Move("boxcox")])).fit(const, make_meta(const, 10, 7))
    assert state["steps"][0]["scale"] == 1.0 and state["steps"][1]["lambda"] == 1.0


def test_render_parse_roundtrip_and_bad_manifests():
    chain = [Move("boxcox"), Move("detrend", (0.5,)), Move("recent_scale", ("season", 3))]
    assert parse_moves(render_program(chain)) == chain
    assert parse_moves(IDENTITY_TIME) is None
    assert parse_moves('# efe-moves: [["nope", []]]') is None
    assert parse_moves("# efe-moves: not json") is None
    with pytest.raises(ValueError):
        render_program([Move("detrend", (2.0,))])
    with pytest.raises(ValueError):
        render_program([Move("recent_scale", ("weeks", 2))])


def context(**over) -> dict:
    base = {"name": "t", "freq": "D", "prediction_length": 14, "season": 7, "n_series": 20,
            "length": {"min": 100, "median": 200, "max": 400}, "positive_fraction": 0.5, "zero_fraction": 0.0,
            "median_cv": 0.3, "median_trend_strength": 0.2, "median_seasonal_strength": 0.2,
            "has_missing": False, "description": ""}
    base.update(over)
    return base


def weights(ctx: dict, feedback: dict | None = None) -> dict[Move, float]:
    return dict(candidate_moves(ctx, feedback))


def test_context_drives_the_weights():
    growth = weights(context(positive_fraction=1.0, median_trend_strength=0.9, median_cv=1.5))
    flat = weights(context(positive_fraction=0.1, median_trend_strength=0.0, median_cv=0.1))
    assert growth[Move("log")] > 2 * flat[Move("log")]
    assert growth[Move("detrend", (1.0,))] > 3 * flat[Move("detrend", (1.0,))]
    top = sorted(growth, key=growth.get, reverse=True)[:3]
    assert Move("log") in top and Move("detrend", (1.0,)) in top
    seasonal = weights(context(median_seasonal_strength=0.9))
    assert max(seasonal, key=seasonal.get) == Move("seasonal_adjust")
    assert Move("seasonal_adjust") not in weights(context(length={"min": 8, "median": 10, "max": 12}))
    assert Move("seasonal_adjust") not in weights(context(season=1))
    finite = weights(context(), {"valid": False, "reason": "inverse_transform is not finite on a forecast"})
    assert finite[Move("log")] < 0.5 * weights(context())[Move("log")]


def test_propose_is_deterministic_and_changes_the_parent():
    ctx = context(positive_fraction=1.0, median_trend_strength=0.8, median_seasonal_strength=0.6)
    a = propose(IDENTITY_TIME, ctx, {}, np.random.default_rng(3))
    b = propose(IDENTITY_TIME, ctx, {}, np.random.default_rng(3))
    assert a == b
    assert len(parse_moves(a[0])) == 1
    parent = render_program([Move("log"), Move("detrend", (1.0,)), Move("robust_scale")])
    for seed in range(30):
        for fb in ({}, {"valid": True, "mase_ratio": 0.9}, {"valid": True, "mase_ratio": 1.3, "harm_rate": 0.7}):
            source, description = propose(parent, ctx, fb, np.random.default_rng(seed))
            moves = parse_moves(source)
            assert moves is not None and moves != parse_moves(parent) and description
            assert len({GROUP[m.kind] for m in moves}) == len(moves) <= 4


def test_invalid_parent_drops_the_last_move():
    parent = render_program([Move("boxcox"), Move("difference"), Move("level_anchor")])
    fb = {"valid": False, "reason": "round trip failed"}
    source, description = propose(parent, context(), fb, np.random.default_rng(0))
    assert parse_moves(source) == [Move("boxcox"), Move("difference")]
    assert "invalid" in description


def test_worse_parent_is_pruned_more_often():
    parent = render_program([Move("log"), Move("detrend", (1.0,))])
    ctx = context()

    def shrink_rate(fb):
        return np.mean([len(parse_moves(propose(parent, ctx, fb, np.random.default_rng(s))[0])) <= 2
                        for s in range(200)])

    assert shrink_rate({"valid": True, "mase_ratio": 1.4}) > shrink_rate({"valid": True, "mase_ratio": 0.8}) + 0.15


def test_random_walk_of_proposals_stays_valid():
    ctx = context(positive_fraction=0.8, median_trend_strength=0.5, median_seasonal_strength=0.5, season=12)
    rng = np.random.default_rng(7)
    source = IDENTITY_TIME
    for _ in range(25):
        source, _ = propose(source, ctx, {"valid": True, "mase_ratio": float(rng.uniform(0.8, 1.2))}, rng)
        program = load(source)
        for name in ("seasonal", "with_nan", "signed_walk"):
            check_program(program, name)


def test_no_move_available_is_typed():
    assert issubclass(NoMoveAvailable, ValueError)
