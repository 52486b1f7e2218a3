"""Held-out series forecast before (identity) and after (program) the transform.

Reads ``<run>/heldout_examples.json``::

    {"horizon": h, "levels": [...],
     "examples": [{"item_id": str, "history": [...], "future": [...h values...],
                   "identity": {"median": [...], "low": [...], "high": [...]},
                   "program":  {"median": [...], "low": [...], "high": [...]}}, ...]}

with low/high the 0.1/0.9 quantiles. One panel per example, at most four.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from efe.report.plots import Run, Skip, new_figure, read_json

MAX_PANELS = 4
STYLES = {"identity": ("#1f77b4", "identity (no transform)"), "program": ("#ff7f0e", "evolved transform")}


def _values(seq) -> np.ndarray:
    if not isinstance(seq, (list, tuple)):
        return np.array([], float)
    return np.array([np.nan if v is None else v for v in seq], dtype=float)


def plot_forecasts(run: Run, out: Path, path: Path | None = None) -> Path | None:
    path = path or run.dir / "heldout_examples.json"
    if not path.exists():
        raise Skip(f"{path} is missing")
    data = read_json(path)
    examples = [e for e in (data or {}).get("examples") or [] if isinstance(e, dict)] if isinstance(data, dict) else []
    if not examples:
        raise Skip(f"{path} holds no examples (or is not JSON)")
    examples = examples[:MAX_PANELS]
    levels = [v for v in data.get("levels") or [] if isinstance(v, (int, float))]
    band = "q0.1–q0.9" if not levels or (0.1 in levels and 0.9 in levels) else f"q{min(levels):g}–q{max(levels):g}"
    cols = 1 if len(examples) == 1 else 2
    rows = -(-len(examples) // cols)
    fig = new_figure(6.2 * cols, 3.6 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, example in zip(axes.flat, examples):
        history, future = _values(example.get("history")), _values(example.get("future"))
        t_hist = np.arange(-len(history), 0)
        ax.plot(t_hist, history, color="black", lw=1.2, label="history")
        if future.size:
            ax.plot(np.arange(len(future)), future, color="black", lw=1.4, ls="--", marker=".", ms=4,
                    label="truth (held out)")
        errors = []
        for name, (color, label) in STYLES.items():
            forecast = example.get(name) or {}
            median = _values(forecast.get("median"))
            if not median.size:
                continue
            t = np.arange(len(median))
            low, high = _values(forecast.get("low")), _values(forecast.get("high"))
            if low.size == median.size and high.size == median.size:
                ax.fill_between(t, low, high, color=color, alpha=0.18, lw=0, label=f"{label} {band}")
            ax.plot(t, median, color=color, lw=1.8, label=f"{label} median")
            n = min(len(median), len(future))
            if n:
                errors.append(f"{name} MAE {np.nanmean(np.abs(median[:n] - future[:n])):.4g}")
        ax.axvline(-0.5, color="#999999", lw=0.8, ls=":")
        ax.set_title(f"{example.get('item_id', '?')}" + (f"  ({', '.join(errors)})" if errors else ""), fontsize=9)
        ax.set_xlabel("time step (0 = first forecast step)")
        ax.set_ylabel("value")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(examples):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), fontsize=8, frameon=False)
    horizon = data.get("horizon")
    fig.suptitle(f"Held-out forecasts before and after the transform — {run.label}"
                 + (f" (horizon {horizon})" if horizon else ""), fontsize=11)
    fig.savefig(out, dpi=110)
    return out


def applies(run: Run) -> bool:
    """Time-series runs (and any run that saved held-out examples)."""
    return run.setting == "time" or (run.dir / "heldout_examples.json").exists()
