"""The system message of an EFE-Time search: contract, rules, fitness, feedback guide, context."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from efe.sandbox.policy import allowed_imports_text
from efe.core.specs import TimeSpec
from efe.time.context import render_context

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "prompts" / "time"


def system_message(spec: TimeSpec, context: Mapping[str, Any], seed_source: str) -> str:
    f, gate = spec.fitness, spec.gate
    return f"""You are an expert in time-series forecasting evolving an invertible normalization program.
A fixed forecaster ({spec.forecaster['name']}) forecasts each series in the space your program
maps it to; its forecasts (median and quantiles) are mapped back with your inverse and scored. Only
the normalization changes, never the forecaster.

## The program contract
```python
{seed_source.strip()}
```
- `fit(y_hist, meta)` gets ONE observed history (1-D float array, may contain NaN) and a metadata
  dict (prediction_length, season, hist_len, n_valid, mean, std, median, min, max, range,
  positive_fraction, zero_fraction, skewness, cv, trend_strength, recent_mean, recent_std). It
  returns a dict of plain data that MUST include "hist_len" (= len(y_hist)).
- `transform(y, state)`: element i of y is at time position i from the start of the history (y is
  the history, or the history extended by later values). Same length, order and NaN positions.
- `inverse_transform(z, state)`: z is a forecast for positions hist_len, hist_len+1, ... (any
  length). Map it back to the original scale. Anything position-dependent (trend, seasonal phase,
  time-varying scale) must use state["hist_len"] to align forecast positions.

## Rules (checked by gates; a violation scores 0 with the reason as feedback)
- Imports only from: {allowed_imports_text()}. No file, network or system access, no eval/exec/open,
  no dunder attributes. Code runs in a sandbox with time and memory limits.
- Length, order and NaN positions preserved; no inf; no new NaN; a non-constant history must not
  become constant; transform of a position must not depend on later values.
- inverse_transform(transform(y)[hist_len:]) must return y on the forecast horizon within
  {gate.round_trip_rtol:g} * max(|y|, 1); the inverse must stay finite
  {int(100 * float(gate.widen))}% beyond the transformed history's range and for any horizon length.
- Do not modify inputs or the state in place.
- A series where your program fails falls back to the identity and counts as harmed.

## Fitness
combined_score = {f.offset} + {f.mase_weight} * (1 - MASE_candidate / MASE_identity)
                 - {f.fallback_weight} * share of windows where the program failed
                 - {f.harm_weight} * max(0, share harmed - share helped)
                 - {f.complexity_weight} * (code lines beyond {f.free_lines}) / 100,
clipped to [0, 1.5]. The identity scores exactly {f.offset}; an invalid program scores 0.
MASE is computed on rolling validation windows of the training part, with the seasonal-naive
in-sample scale of each history.

## Reading the feedback
- `scores`: MASE, WQL and MAE of your program relative to the identity, and the fitness breakdown.
- `series`: how many forecast windows your program helped, harmed, or failed on (by error type).
- `reason`: why an invalid program was rejected. You never see raw values or forecasts.

## Dataset context (training part only, aggregate)
{render_context(context)}
"""
