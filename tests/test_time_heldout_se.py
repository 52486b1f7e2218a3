"""The per-series held-out standard error: a loss far beyond noise counts, a small noisy one does not."""

from __future__ import annotations

import numpy as np

from efe.time.heldout import per_series_gains, significant_losses


def _gains(per_series: dict[str, list[float]]) -> tuple[list[float], list[str]]:
    gains = [g for v in per_series.values() for g in v]
    items = [k for k, v in per_series.items() for _ in v]
    return gains, items


def test_a_loss_beyond_noise_is_significant_and_a_small_noisy_loss_is_not():
    # 3 held-out origins per series, half a horizon apart (overlap 2 -> 1.5 effective windows)
    gains, items = _gains({
        "clear_loss": [-0.50, -0.52, -0.48],      # -65%, tiny spread
        "noisy_small_loss": [0.10, -0.26, 0.00],  # -5.3%: beyond -5% raw, within noise
        "steady_small_loss": [-0.06, -0.06, -0.06],  # -6.2%: its own SD is 0, the pooled one is not
        "gain": [0.20, 0.30, 0.10],
        "unchanged": [0.0, 0.0, 0.0],
    })
    per = per_series_gains(gains, items, overlap=2.0)

    # pooled within-series SD over the changed series, / sqrt(3 / 2)
    changed = [np.array(v) for v in ([-0.50, -0.52, -0.48], [0.10, -0.26, 0.00], [-0.06] * 3, [0.20, 0.30, 0.10])]
    pooled = np.sqrt(sum(((v - v.mean()) ** 2).sum() for v in changed) / sum(len(v) - 1 for v in changed))
    assert np.isclose(per["gain"]["se"], pooled / np.sqrt(1.5))
    assert np.isclose(per["steady_small_loss"]["se"], per["gain"]["se"])
    assert per["unchanged"]["se"] == 0.0 and per["unchanged"]["se_pct"] == 0.0
    assert np.isclose(per["noisy_small_loss"]["pct"], -100 * np.expm1(0.16 / 3))
    assert np.isclose(per["noisy_small_loss"]["se_pct"], 100 * np.exp(0.16 / 3) * per["noisy_small_loss"]["se"])

    raw = [k for k, r in per.items() if r["pct"] < -5.0]
    assert sorted(raw) == ["clear_loss", "noisy_small_loss", "steady_small_loss"]
    # ignoring the SE (z = 0) would count all three; with 2 SE only the clear loss is beyond noise
    assert sorted(significant_losses(per, 5.0, 0.0)) == sorted(raw)
    assert significant_losses(per, 5.0, 2.0) == ["clear_loss"]


def test_the_identity_has_no_uncertainty_and_no_loss():
    gains, items = _gains({"a": [0.0, 0.0, 0.0], "b": [0.0, 0.0]})
    per = per_series_gains(gains, items, overlap=2.0)
    assert all(r["se"] == 0.0 and r["pct"] == 0.0 for r in per.values())
    assert significant_losses(per, 5.0, 2.0) == []
