"""Held-out and transfer evaluation of a frozen normalization: the last windows of each series.

The program is applied unchanged; histories are everything before each held-out window
(the training part plus earlier held-out windows), as in a rolling deployment.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from efe.core.specs import SandboxSpec
from efe.sandbox import Sandbox, SandboxFailure
from evaluators.timeseries.forecasters import make_forecaster
from evaluators.timeseries.pipeline import (
    effective_windows,
    forecast_through,
    log_gains,
    paired_gain,
    score_forecasts,
)
from evaluators.timeseries.windows import cut_windows, history_meta

METRICS = ("mase", "wql", "mae")


def heldout_instances(series: dict[str, np.ndarray], horizon: int, n_windows: int, stride: int | None = None):
    return cut_windows(series, horizon, n_windows, min_history=2, stride=stride)


def evaluate_program(source: str, series: dict[str, np.ndarray], horizon: int, season: int, n_windows: int,
                     forecaster_cfg: dict, levels: Sequence[float], limits: SandboxSpec, seed: int,
                     sandbox: Sandbox | None = None, examples: int = 0, stride: int | None = None) -> dict[str, Any]:
    """Identity vs program on the held-out windows (origins ``stride`` steps apart), for one forecaster."""
    instances = heldout_instances(series, horizon, n_windows, stride)
    forecaster = make_forecaster(forecaster_cfg)
    base_q = forecaster.forecast([i.history for i in instances], horizon, season, levels)
    base = score_forecasts(instances, [base_q[j] for j in range(len(instances))], levels, season)
    metas = [history_meta(i.history, horizon, season) for i in instances]
    own = sandbox is None
    sandbox = sandbox or Sandbox(limits)
    try:
        run = forecast_through(sandbox, limits, source, instances, metas, forecaster, horizon, season, levels, seed)
    finally:
        if own:
            sandbox.close()
    if isinstance(run, SandboxFailure):
        raise RuntimeError(f"the frozen program failed on the held-out windows: {run.reason}")
    quantiles = [q if not fb else base_q[j] for j, (q, fb) in enumerate(zip(run.quantiles, run.fallback))]
    prog = score_forecasts(instances, quantiles, levels, season)
    gains = log_gains(prog["per_instance"], base["per_instance"])
    overlap = horizon / max(1, int(stride or horizon))
    gain, se = paired_gain(gains, overlap)
    items = [i.item_id for i in instances]
    per_series = {k: float(-100.0 * np.expm1(-np.mean([g for g, it in zip(gains, items) if it == k])))
                  for k in dict.fromkeys(items)}
    per_series_se = per_series_gains(gains, items, overlap)
    shown = _examples(instances, [base_q[j] for j in range(len(instances))], quantiles, levels, horizon, examples)
    return {
        "examples": shown,
        "forecaster": forecaster_cfg["name"],
        "n_windows": len(instances),
        "fallback": int(run.fallback.sum()),
        "identity": {m: base[m] for m in METRICS},
        "program": {m: prog[m] for m in METRICS},
        "improvement_pct": {m: (100.0 * (1.0 - prog[m] / base[m]) if base[m] > 0 else 0.0) for m in METRICS},
        "gain": {"log_mase": gain, "se": se, "pct": float(-100.0 * np.expm1(-gain))},
        "per_series_gain_pct": per_series,
        "per_series": per_series_se,
    }


def per_series_gains(gains: Sequence[float], items: Sequence[str], overlap: float = 1.0) -> dict[str, dict]:
    """Each series' held-out change with its standard error, from its own paired windows.

    A series has only a few overlapping held-out origins, whose own SD is unstable (3 origins half a
    horizon apart are worth 1.5 windows), so the within-series SD is pooled over the series the program
    changed (deviations from each series' own mean), and a series' SE is that SD over the square root of
    its effective window count (``effective_windows``, as for every paired gain). A series the program left
    unchanged on every window (the identity) has SE 0 and does not enter the pool. With no within-series
    degree of freedom the SE is unknown and set to |mean|, as in ``paired_gain``. Units: ``log``/``se``
    are log MASE ratios; ``pct`` = 100·(1 − exp(−log)) as everywhere in the report, ``se_pct`` its
    first-order (delta-method) conversion 100·exp(−log)·se.
    """
    g = np.asarray(gains, dtype="float64")
    keys = np.asarray(items, dtype=object)
    groups = {k: g[(keys == k) & np.isfinite(g)] for k in dict.fromkeys(items)}
    changed = [v for v in groups.values() if len(v) and np.any(v != 0.0)]
    dof = sum(len(v) - 1 for v in changed)
    pooled_sd = float(np.sqrt(sum(float(np.sum((v - v.mean()) ** 2)) for v in changed) / dof)) if dof else None
    out = {}
    for k, v in groups.items():
        mean = float(v.mean()) if len(v) else 0.0
        if not len(v) or not np.any(v != 0.0):
            se = 0.0
        elif pooled_sd is None:
            se = abs(mean)
        else:
            se = pooled_sd / float(np.sqrt(max(1.0, effective_windows(len(v), overlap))))
        out[k] = {"log": mean, "se": se, "windows": int(len(v)), "pct": float(-100.0 * np.expm1(-mean)),
                  "se_pct": float(100.0 * np.exp(-mean) * se)}
    return out


def significant_losses(per_series: dict[str, dict], max_loss_pct: float, z: float) -> list[str]:
    """Series whose held-out loss is beyond noise: change + z·SE < −max_loss_pct (in %, see per_series_gains)."""
    return [k for k, r in per_series.items() if r["pct"] + z * r["se_pct"] < -max_loss_pct]


def _examples(instances, base, prog, levels, horizon: int, count: int) -> list[dict]:
    """A few held-out windows, evenly spread over the series, for the forecast plot."""
    if count <= 0 or not instances:
        return []
    levels = list(levels)
    lo = int(np.argmin([abs(q - 0.1) for q in levels]))
    hi = int(np.argmin([abs(q - 0.9) for q in levels]))
    mid = levels.index(0.5)
    picks = sorted(set(np.linspace(0, len(instances) - 1, min(count, len(instances))).round().astype(int).tolist()))

    def band(q: np.ndarray) -> dict:
        return {"median": q[:, mid].tolist(), "low": q[:, lo].tolist(), "high": q[:, hi].tolist()}

    return [{"item_id": instances[j].item_id, "history": instances[j].history[-5 * horizon:].tolist(),
             "future": instances[j].future.tolist(), "identity": band(base[j]), "program": band(prog[j])}
            for j in picks]


def render_table(rows: list[dict]) -> str:
    lines = ["| forecaster | MASE identity | MASE EFE | MASE % | WQL identity | WQL EFE | WQL % | MAE identity | "
             "MAE EFE | MAE % | windows |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r["forecaster"]]
        for m in METRICS:
            cells += [f"{r['identity'][m]:.4f}", f"{r['program'][m]:.4f}", f"{r['improvement_pct'][m]:+.1f}"]
        cells.append(f"{r['n_windows']}" + (f" ({r['fallback']} fell back)" if r["fallback"] else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
