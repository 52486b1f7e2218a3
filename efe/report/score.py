"""The outcome of one program gated and scored by hand (``python -m efe.score``), as text."""

from __future__ import annotations

from typing import Any


def describe(outcome: Any, metric: str = "AUC", gain: str = "delta") -> str:
    """The verdict, the metrics and the feedback the LLM would see (``metric``: the task's metric, e.g. RMSE;
    ``gain``: what the delta is, e.g. the relative RMSE reduction)."""
    m = outcome.metrics
    verdict = "valid" if outcome.valid else f"INVALID at {outcome.stage}: {outcome.reason}"
    lines = [f"verdict: {verdict}", f"fitness: {m['combined_score']:.4f}",
             f"{metric} (mean of {int(m['n_folds'])} paired folds): baseline {m['auc_base']:.4f}  "
             f"candidate {m['auc_candidate']:.4f}  {gain} {m['delta_auc']:+.4f} ± {m['delta_auc_se']:.4f} (SE)",
             f"features: {int(m['generated_feature_count'])} new, {int(m['dropped_feature_count'])} dropped"]
    for key, value in outcome.artifacts.items():
        if key in ("verdict",):
            continue
        text = str(value)
        lines.append(f"--- {key}\n{text}" if "\n" in text else f"{key}: {text}")
    return "\n".join(lines)
