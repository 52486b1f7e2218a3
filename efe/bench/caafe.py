"""CAAFE-style greedy feature engineering (Hollmann et al., 2023) on efe's infrastructure.

One feature block per LLM call, added to the program accepted so far; the candidate must pass
efe's gates, then it is kept only if the mean of its ROC-AUC and accuracy gains over repeated
cross-validation of the training part is above zero. Errors and rejections are fed back to the
next call. The prompt carries the dataset description, column names, dtypes, missing rates and
sample rows, as CAAFE's does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from efe.bench.cv import cv_scores, splits
from efe.llm.client import EfeLLM
from efe.llm.ledger import BudgetExhausted
from efe.core.programs import extract_code
from efe.sandbox import SandboxFailure
from efe.core.specs import TabSpec
from evaluators.tabular.evaluator import TabEvaluator
from evaluators.tabular.scorers import make_scorer

log = logging.getLogger(__name__)


@dataclass
class CaafeResult:
    source: str
    accepted: list[dict] = field(default_factory=list)
    calls: int = 0
    history: list[dict] = field(default_factory=list)


class _Model:
    name = "caafe"
    system_message = ""


def caafe_prompt(context: dict, current: str, feedback: str) -> str:
    columns = []
    for name, info in context["columns"].items():
        samples = info.get("examples") or list((info.get("top_values") or {}).keys())[:5]
        if not samples and info["kind"] == "numeric":
            samples = [info.get("min"), info.get("median"), info.get("max")]
        columns.append(f"{name} ({info['dtype']}): NaN-freq [{100 * (info.get('missing_rate') or 0):.1f}%], "
                       f"Samples {samples}")
    return (
        f"Dataset description: {context.get('description') or context['name']}\n"
        f"Target: '{context['target']}' (binary, positive class {context['positive_label']!r})\n"
        "Columns (true dtypes):\n" + "\n".join(columns) + "\n"
        f"Sample rows: {json.dumps(context['sample_rows'][:3], default=str)}\n\n"
        "Add ONE new block of features to the current program (keep the blocks already there). The block is "
        "kept only if it improves the mean of ROC-AUC and accuracy over repeated cross-validation; explain in a "
        "comment why it should help.\n\n"
        f"{feedback}\n"
        "# Current Program\n```python\n" + current.strip() + "\n```\n"
    )


def run_caafe(spec: TabSpec, context: dict, seed_source: str, calls: int, *, folds: int = 3, repeats: int = 1
              ) -> CaafeResult:
    """Greedy loop on the training part named by ``spec``; ``spec`` also configures the LLM.

    CAAFE judges a block by ROC-AUC and accuracy together: binary targets only."""
    if spec.task != "binary":
        raise ValueError(f"the CAAFE-style baseline scores binary targets only; this table is {spec.task}")
    evaluator = TabEvaluator(spec)
    limits = spec.sandbox
    scorer = make_scorer(spec.scorer, spec.seed)
    llm = EfeLLM(_Model(), spec)
    X, y = evaluator.X, evaluator.y
    cv = splits(y, folds, repeats, spec.seed)
    result = CaafeResult(seed_source)
    sandbox = evaluator.sandbox
    try:
        current = cv_scores(seed_source, X, y, cv, scorer, sandbox, limits)
        feedback = ""
        for call in range(calls):
            prompt = caafe_prompt(context, result.source, feedback)
            try:
                text = asyncio.run(llm.generate_with_context(
                    "You are an expert data scientist doing feature engineering with pandas.",
                    [{"role": "user", "content": prompt}]))
            except BudgetExhausted:
                break
            except Exception as exc:  # noqa: BLE001 - an LLM failure costs one call
                feedback = f"### last_attempt\n```\nthe last call failed: {exc}\n```\n"
                result.calls += 1
                continue
            result.calls += 1
            code = extract_code(text)
            if code is None:
                feedback = "### last_attempt\n```\nno ```python block in the answer\n```\n"
                continue
            gate = evaluator.stage1(code)
            if not gate.valid:
                feedback = f"### last_attempt\n```\n{gate.reason}\n```\n"
                result.history.append({"call": call, "kept": False, "reason": gate.reason})
                continue
            scores = cv_scores(code, X, y, cv, scorer, sandbox, limits)
            if isinstance(scores, SandboxFailure):
                feedback = f"### last_attempt\n```\n{scores.reason}\n```\n"
                result.history.append({"call": call, "kept": False, "reason": scores.reason})
                continue
            d_auc = float((scores.auc - current.auc).mean())
            d_acc = float((scores.accuracy - current.accuracy).mean())
            gain = (d_auc + d_acc) / 2
            kept = gain > 0
            result.history.append({"call": call, "kept": kept, "delta_auc": d_auc, "delta_accuracy": d_acc})
            if kept:
                result.source, current = code, scores
                result.accepted.append({"call": call, "delta_auc": d_auc, "delta_accuracy": d_acc})
                feedback = (f"### last_attempt\n```\nlast block kept: CV delta {d_auc:+.4f} AUC, {d_acc:+.4f} accuracy\n```\n")
            else:
                feedback = (f"### last_attempt\n```\nlast block rejected (CV delta {d_auc:+.4f} AUC, {d_acc:+.4f} "
                            "accuracy); it was removed\n```\n")
    finally:
        evaluator.close()
    return result
