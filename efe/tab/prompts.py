"""The system message of an EFE-Tab search: contract, rules, fitness, feedback guide, context."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from efe.sandbox.policy import allowed_imports_text
from efe.core.specs import TabSpec
from efe.tab.context import PROBLEM_TYPE, render_context

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "prompts" / "tab"


def _model_words(scorer: Mapping[str, Any]) -> str:
    """The scorer as the LLM reads it; a scikit-learn kind also names its estimator and its encoding."""
    if scorer.get("name") in ("linear", "random_forest", "sklearn") and scorer.get("estimator"):
        return (f"{scorer['name']}: {scorer['estimator']}, after median imputation, standardisation and "
                "one-hot encoding of categorical columns")
    return str(scorer["name"])


def system_message(spec: TabSpec, context: Mapping[str, Any], seed_source: str) -> str:
    f, gate = spec.fitness, spec.gate
    penalties = ", ".join(f"-{p} above {t}s" for t, p in f.runtime_penalties)
    clip = f.clip
    task = spec.task
    labels = {"binary": "0/1 labels y (1 = positive class)",
              "multiclass": f"class codes y (0..{max(len(spec.dataset.classes), 3) - 1}, one per class)",
              "regression": "numeric target y (floats)"}[task]
    delta = ("delta is AUC_candidate - AUC_baseline (ROC-AUC of the scorer" if task == "binary" else
             "delta is AUC_candidate - AUC_baseline (macro one-vs-rest ROC-AUC of the scorer" if task == "multiclass"
             else "delta is (RMSE_baseline - RMSE_candidate) / RMSE_baseline (the relative RMSE reduction of the scorer")
    return f"""You are an expert data scientist evolving a feature-engineering program for a tabular
{PROBLEM_TYPE[task]} task. Each program you write is run on held-back data and scored by a fixed
downstream model ({_model_words(spec.scorer)}); only the features change, never the model.

## The program contract
```python
{seed_source.strip()}
```
- `fit(X, y)` receives the fitting pool (pool A): a pandas DataFrame of the original columns and the
  {labels}. It returns a dict of plain data (numbers, strings, lists,
  dicts, numpy arrays, pandas objects): everything transform needs (means, category maps, bin edges,
  target encodings...). No custom classes in the state.
- `transform(X, state)` receives rows WITHOUT labels and the state from fit. It returns a DataFrame
  with the same index and row order. Add new columns; keep original columns unchanged or drop them.
- transform must treat every row on its own: a row's features may depend only on that row and the
  state, never on the other rows of the batch (no X.mean(), rank(), qcut() or groupby() inside
  transform: compute such statistics in fit) and never on the index values.

## Rules (checked by gates; a violation scores 0 with the reason as feedback)
- Imports only from: {allowed_imports_text()}. No file, network, process or system access, no
  eval/exec/open, no dunder attributes. Code runs in a sandbox with time and memory limits.
- Do not modify the input DataFrame or labels in place (work on X.copy()); do not modify state in
  transform.
- Same number of rows and same index; at most {gate.max_column_factor}x the input columns;
  no all-NaN new column; no inf; |values| <= {gate.max_abs_value:g}; guard divisions
  and logs. Unseen categories and missing values must not crash transform.

## Fitness
combined_score = {f.offset} + {f.auc_weight} * (mean_delta - {f.confidence_z} * SE)
                 - {f.complexity_weight} * sqrt((n_new_features + n_dropped_columns) / rows_in_pool_B)
                 - runtime penalty ({penalties}), clipped to [{clip[0]}, {clip[1]}].
The identity program scores exactly {f.offset}; an invalid program scores {f.invalid_score}.
{delta} trained on your transformed pool A and
evaluated on transformed pool B, rows it never saw), measured on the same cross-validation folds of
the training part for every program; mean_delta is its mean over the folds and SE its standard error.
A gain within noise therefore does not raise the fitness: prefer a few strong, well-motivated features
over many weak ones. Programs that cannot beat the best so far on the first folds are not scored on
the rest.

## Reading the feedback
- `scores`: baseline and candidate {'RMSE' if task == 'regression' else 'AUC'}, {'the relative RMSE reduction' if task == 'regression' else 'their difference'} and the fitness breakdown.
- `new_columns` / `dropped_columns`: what your program changed.
- `importance_pool_a`: each column's share of the scorer's own importance (LightGBM: split gain), from
  the scorer trained on your transformed pool A, mean ± SD over the folds (about 0 = unused, a candidate
  to drop); with `feedback.importance=permutation`, `permutation_importance_pool_a`: AUC drop when a
  column is shuffled, from a model trained on your transformed pool A.
- `tree_pool_a`: a depth-3 decision tree on your transformed pool A: which splits matter.
- `reason`: why an invalid program was rejected (gate, exception and program line).

## Dataset context (training part only)
{render_context(context)}
"""
