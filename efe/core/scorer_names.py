"""How reports, manifests and model cards name a tabular scorer: kind, estimator import path, parameters."""

from __future__ import annotations

import json
from typing import Any


def scorer_phrase(desc: dict[str, Any] | None, fallback: str = "?") -> str:
    """``linear (sklearn.linear_model.LogisticRegression) with parameters {...}`` from a scorer's ``describe()``."""
    if not desc:
        return fallback
    text = f"{desc.get('kind', fallback)} ({desc.get('estimator', '?')})"
    if desc.get("params"):
        text += f" with parameters {json.dumps(desc['params'], sort_keys=True, default=str)}"
    if desc.get("encoding"):
        text += (f", behind median imputation, standardisation and one-hot encoding learnt on pool A "
                 f"(encoding {json.dumps(desc['encoding'], sort_keys=True, default=str)})")
    return text


def model_label(row: dict[str, Any]) -> str:
    """A held-out table row's model: its kind, and the estimator when the kind alone does not say which."""
    name = str(row.get("model"))
    return f"{name}: {row['estimator']}" if name == "sklearn" and row.get("estimator") else name
