"""Held-out and transfer evaluation of a frozen normalization: the last windows of each series.

The program is applied unchanged; histories are everything before each held-out window
(the training part plus earlier held-out windows), as in a rolling deployment.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from efe.core.specs import SandboxSpec
from efe.frozen.sandboxed import shared_sandbox
from efe.sandbox import Sandbox, SandboxFailure
from evaluators.timeseries.forecasters import make_forecaster
from evaluators.timeseries.pipeline import (
    effective_windows,
    forecast_through,
    log_gains,
    paired_gain,
    score_forecasts,
)
from evaluators.timeseries.windows import cut_windows, history_meta, spread_windows

METRICS = ("mase", "wql", "mae")


def heldout_instances(series: dict[str, np.ndarray], horizon: int, n_windows: int, stride: int | None = None):
    return cut_windows(series, horizon, n_windows, min_history=2, stride=stride)


def _paired(source: str, instances: list, horizon: int, season: int, forecaster: Any, levels: Sequence[float],
            limits: SandboxSpec, seed: int, sandbox: Sandbox):
    """Identity and program forecasts of the same instances: (identity quantiles, program quantiles, fallback)."""
    base_q = forecaster.forecast([i.history for i in instances], horizon, season, levels)
    metas = [history_meta(i.history, horizon, season) for i in instances]
    run = forecast_through(sandbox, limits, source, instances, metas, forecaster, horizon, season, levels, seed)
    if isinstance(run, SandboxFailure):
        raise RuntimeError(f"the frozen program failed on the held-out windows: {run.reason}")
    base = [base_q[j] for j in range(len(instances))]
    quantiles = [q if not fb else base[j] for j, (q, fb) in enumerate(zip(run.quantiles, run.fallback))]
    return base, quantiles, run.fallback


def spread_gains(source: str, series: dict[str, np.ndarray], horizon: int, season: int, n_origins: int,
                 min_history: int, forecaster_cfg: dict, levels: Sequence[float], limits: SandboxSpec, seed: int,
                 sandbox: Sandbox | None = None) -> dict[str, np.ndarray]:
    """Each series' per-window log MASE gains at ``n_origins`` origins spread over its whole history
    (``spread_windows``): what a per-series SE is estimated from (see ``per_series_gains``)."""
    instances = spread_windows(series, horizon, n_origins, min_history)
    if not instances:
        return {}
    base, prog, _ = _paired(source, instances, horizon, season, make_forecaster(forecaster_cfg), levels,
                            limits, seed, sandbox or shared_sandbox(limits))
    gains = log_gains(score_forecasts(instances, prog, levels, season)["per_instance"],
                      score_forecasts(instances, base, levels, season)["per_instance"])
    items = [i.item_id for i in instances]
    return {k: gains[[j for j, it in enumerate(items) if it == k]] for k in dict.fromkeys(items)}


def evaluate_program(source: str, series: dict[str, np.ndarray], horizon: int, season: int, n_windows: int,
                     forecaster_cfg: dict, levels: Sequence[float], limits: SandboxSpec, seed: int,
                     sandbox: Sandbox | None = None, examples: int = 0, stride: int | None = None,
                     se_origins: int = 0, prior_dof: float = 2.0, min_history: int | None = None) -> dict[str, Any]:
    """Identity vs program on the held-out windows (origins ``stride`` steps apart), for one forecaster.

    With ``se_origins``, each series' SE comes from that many origins spread over its whole history
    (``spread_gains``, histories of at least ``min_history`` points, default two horizons); without, from
    the held-out windows themselves (neighbouring origins: optimistic).
    """
    instances = heldout_instances(series, horizon, n_windows, stride)
    forecaster = make_forecaster(forecaster_cfg)
    sandbox = sandbox or shared_sandbox(limits)  # the run's process already has one (its isolation probe)
    base_q, quantiles, fallback = _paired(source, instances, horizon, season, forecaster, levels, limits, seed,
                                          sandbox)
    spread = (spread_gains(source, series, horizon, season, se_origins,
                           2 * horizon if min_history is None else min_history, forecaster_cfg, levels, limits,
                           seed, sandbox) if se_origins else None)
    base = score_forecasts(instances, base_q, levels, season)
    prog = score_forecasts(instances, quantiles, levels, season)
    gains = log_gains(prog["per_instance"], base["per_instance"])
    overlap = horizon / max(1, int(stride or horizon))
    gain, se = paired_gain(gains, overlap)
    items = [i.item_id for i in instances]
    per_series = {k: float(-100.0 * np.expm1(-np.mean([g for g, it in zip(gains, items) if it == k])))
                  for k in dict.fromkeys(items)}
    per_series_se = per_series_gains(gains, items, overlap, spread, prior_dof)
    shown = _examples(instances, base_q, quantiles, levels, horizon, examples)
    return {
        "examples": shown,
        "forecaster": forecaster_cfg["name"],
        "n_windows": len(instances),
        "fallback": int(np.sum(fallback)),
        "identity": {m: base[m] for m in METRICS},
        "program": {m: prog[m] for m in METRICS},
        "improvement_pct": {m: (100.0 * (1.0 - prog[m] / base[m]) if base[m] > 0 else 0.0) for m in METRICS},
        "gain": {"log_mase": gain, "se": se, "pct": float(-100.0 * np.expm1(-gain))},
        "per_series_gain_pct": per_series,
        "per_series": per_series_se,
        "se_source": (f"{se_origins} origins spread over each series' history" if spread is not None
                      else "the held-out windows (neighbouring origins)"),
    }


def _pooled_sd(groups: list[np.ndarray]) -> tuple[float | None, int]:
    """Within-group SD pooled over groups (deviations from each group's own mean), and its degrees of freedom."""
    dof = sum(len(v) - 1 for v in groups if len(v))
    if not dof:
        return None, 0
    return float(np.sqrt(sum(float(np.sum((v - v.mean()) ** 2)) for v in groups if len(v)) / dof)), dof


def per_series_gains(gains: Sequence[float], items: Sequence[str], overlap: float = 1.0,
                     spread: dict[str, np.ndarray] | None = None, prior_dof: float = 2.0) -> dict[str, dict]:
    """Each series' change over its paired windows, with its standard error.

    The SE is the SD of one window's log MASE gain over the square root of the series' effective window
    count (``effective_windows``: overlapping windows count as n / overlap). Where that SD comes from:

    - with ``spread`` (each series' gains at origins spread over its whole history, ``spread_gains``):
      the series' own SD there, shrunk towards the SD pooled over all changed series, the pool weighted as
      ``prior_dof`` windows: (dof·sd² + prior_dof·pooled²) / (dof + prior_dof). Neighbouring windows
      share most of their history and state, so their spread understates how much a window varies;
    - without: the SD of the judged windows themselves, pooled over the series the program changed
      (a few overlapping origins have an unstable SD of their own).

    A series the program left unchanged on every window (the identity) has SE 0 and does not enter a
    pool. With no degree of freedom the SE is unknown and set to |mean|, as in ``paired_gain``. Units:
    ``log``/``se`` are log MASE ratios; ``pct`` = 100·(1 − exp(−log)) as everywhere in the report,
    ``se_pct`` its first-order (delta-method) conversion 100·exp(−log)·se.
    """
    g = np.asarray(gains, dtype="float64")
    keys = np.asarray(items, dtype=object)
    groups = {k: g[(keys == k) & np.isfinite(g)] for k in dict.fromkeys(items)}
    if spread is not None:
        sd_of = {k: np.asarray(v, dtype="float64")[np.isfinite(v)] for k, v in spread.items()}
        pooled, _ = _pooled_sd([v for v in sd_of.values() if np.any(v != 0.0)])
    else:
        pooled, _ = _pooled_sd([v for v in groups.values() if len(v) and np.any(v != 0.0)])
    out = {}
    for k, v in groups.items():
        mean = float(v.mean()) if len(v) else 0.0
        own = sd_of.get(k, np.zeros(0)) if spread is not None else np.zeros(0)
        if not len(v) or (not np.any(v != 0.0) and not np.any(own != 0.0)):
            sd = 0.0
        elif spread is not None and (len(own) > 1 or pooled is not None):
            dof = max(len(own) - 1, 0)
            own_var = float(np.var(own, ddof=1)) if dof else 0.0
            weight = float(prior_dof) if pooled is not None else 0.0
            sd = float(np.sqrt((dof * own_var + weight * (pooled or 0.0) ** 2) / max(dof + weight, 1e-12)))
        elif spread is None and pooled is not None:
            sd = pooled
        else:
            sd = None
        n_eff = max(1.0, effective_windows(len(v), overlap))
        se = abs(mean) if sd is None else sd / float(np.sqrt(n_eff))
        out[k] = {"log": mean, "se": se, "windows": int(len(v)), "effective_windows": float(n_eff),
                  "pct": float(-100.0 * np.expm1(-mean)), "se_pct": float(100.0 * np.exp(-mean) * se)}
    return out


def significant_losses(per_series: dict[str, dict], max_loss_pct: float, z: float) -> list[str]:
    """Series whose loss is beyond noise: change + z·SE < −max_loss_pct.

    Judged on the log scale the SE lives on (the upper end of the change's interval, log + z·se,
    converted to %, is below −max_loss_pct): for small changes this is the % change + z·se_pct, and
    it stays right for large ones, where the first-order % SE would balloon.
    """
    bound = -float(np.log1p(max_loss_pct / 100.0))
    return [k for k, r in per_series.items() if r["log"] + z * r["se"] < bound]


def raw_losses(per_series: dict[str, dict], max_loss_pct: float) -> list[str]:
    """Series whose change is below −max_loss_pct, noise or not (shown beside the significant ones)."""
    return [k for k, r in per_series.items() if r["pct"] < -max_loss_pct]


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
