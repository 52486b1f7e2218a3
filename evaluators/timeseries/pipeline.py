"""The forecasting pipeline around a program: transform, forecast, inverse; identity where it fails.

Shared by the search evaluator, the held-out evaluation and transfer to other forecasters, so
all three measure a program in exactly the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from efe.core.specs import SandboxSpec
from efe.sandbox import Sandbox, SandboxFailure, Step
from efe.sandbox import plan as step
from evaluators.timeseries import gates
from evaluators.timeseries.metrics import mae, mase, wql
from evaluators.timeseries.windows import Instance


@dataclass
class Forecasts:
    """Per-instance inverted quantile forecasts (h, L) and which instances fell back to the identity."""
    quantiles: list[np.ndarray]
    fallback: np.ndarray
    errors: dict[str, int]


def forecast_through(sandbox: Sandbox, limits: SandboxSpec, source: str, instances: list[Instance],
                     metas: list[dict], forecaster: Any, horizon: int, season: int, levels: Sequence[float],
                     seed: int) -> Forecasts | SandboxFailure:
    """Fit/transform in the sandbox, forecast here, inverse in the sandbox; identity where it fails."""
    n = len(instances)
    values: dict[str, Any] = {}
    plan: list[Step] = []
    for j, inst in enumerate(instances):
        values[f"y{j}"], values[f"m{j}"] = inst.history, metas[j]
        plan += [step.fit(f"y{j}", f"m{j}", f"s{j}", keep_going=True),
                 step.transform(f"y{j}", f"s{j}", f"z{j}", keep_going=True)]
    first = sandbox.run(source, "time", plan, [s.out for s in plan], values=values, seed=seed,
                             limits=limits)
    if isinstance(first, SandboxFailure):
        return first
    fallback = np.zeros(n, dtype=bool)
    errors: dict[str, int] = {}
    histories = []
    for j, inst in enumerate(instances):
        failure = first.errors.get(f"s{j}") or first.errors.get(f"z{j}")
        z = None
        if failure is None:
            try:
                gates.check_state(first.outputs.get(f"s{j}"), len(inst.history))
                z = gates.check_forward(inst.history, first.outputs.get(f"z{j}"), "a history")
            except gates.GateFailure as exc:
                failure = {"exception": exc.gate}
        if failure is not None:
            fallback[j] = True
            label = failure.get("exception") or failure.get("kind") or "error"
            errors[label] = errors.get(label, 0) + 1
            z = inst.history
        histories.append(np.asarray(z, dtype="float64"))
    q = forecaster.forecast(histories, horizon, season, levels)
    values2: dict[str, Any] = {}
    plan2: list[Step] = []
    for j in range(n):
        if fallback[j]:
            continue
        values2[f"s{j}"] = first.outputs[f"s{j}"]
        for l in range(len(levels)):
            values2[f"q{j}_{l}"] = q[j, :, l]
            plan2.append(step.inverse_transform(f"q{j}_{l}", f"s{j}", f"r{j}_{l}", keep_going=True))
    out: list[np.ndarray] = [q[j] for j in range(n)]
    if plan2:
        second = sandbox.run(source, "time", plan2, [s.out for s in plan2], values=values2,
                                  seed=seed, limits=limits)
        if isinstance(second, SandboxFailure):
            return second
        for j in range(n):
            if fallback[j]:
                continue
            cols = []
            for l in range(len(levels)):
                err = second.errors.get(f"r{j}_{l}")
                try:
                    if err is not None:
                        raise gates.GateFailure(err.get("exception", "inverse"), "inverse failed")
                    cols.append(gates.check_inverse(second.outputs.get(f"r{j}_{l}"), horizon, "a forecast"))
                except gates.GateFailure as exc:
                    fallback[j] = True
                    errors[f"inverse {exc.gate}"] = errors.get(f"inverse {exc.gate}", 0) + 1
                    break
            if not fallback[j]:
                out[j] = np.sort(np.stack(cols, axis=1), axis=1)
    return Forecasts(out, fallback, errors)



def score_forecasts(insts: list[Instance], quantiles: list[np.ndarray], levels: Sequence[float], season: int) -> dict:
    m = list(levels).index(0.5)
    per = np.array([mase(i.future, q[:, m], i.history, season) for i, q in zip(insts, quantiles)])
    return {
        "per_instance": per, "mase": float(np.mean(per)),
        "mae": float(np.mean([mae(i.future, q[:, m]) for i, q in zip(insts, quantiles)])),
        "wql": float(wql([i.future for i in insts], quantiles, list(levels))),
    }


def log_gains(per_program: np.ndarray, per_identity: np.ndarray) -> np.ndarray:
    """Per-window log(MASE identity / MASE program): positive where the program helped, 0 where equal."""
    tiny = 1e-12
    return np.log(np.maximum(np.asarray(per_identity, dtype="float64"), tiny)
                  / np.maximum(np.asarray(per_program, dtype="float64"), tiny))


def effective_windows(n: int, overlap: float = 1.0) -> float:
    """How many independent windows ``n`` paired windows are worth when ``overlap`` of them (horizon /
    stride) share each future point: n / overlap."""
    return n / max(float(overlap), 1.0)


def paired_gain(gains: np.ndarray, overlap: float = 1.0) -> tuple[float, float]:
    """(mean gain, its standard error) over paired windows.

    ``overlap`` >= 1 is how many windows share each future point (horizon / stride): overlapping
    windows are not independent, so the effective count is n / overlap. With one effective window
    the SE is unknown and set to |mean|, so a single window can never carry a confident gain.
    """
    g = np.asarray(gains, dtype="float64")
    g = g[np.isfinite(g)]
    if len(g) == 0:
        return 0.0, 0.0
    mean = float(np.mean(g))
    n_eff = effective_windows(len(g), overlap)
    if len(g) < 2 or n_eff < 2:
        return mean, abs(mean)
    return mean, float(np.std(g, ddof=1) / np.sqrt(n_eff))

