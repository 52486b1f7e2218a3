"""The EFE-Tab evaluator registry and openevolve entry points (see ``evaluators.service``)."""

from __future__ import annotations

from evaluators.service import EvaluatorRegistry
from evaluators.tabular.evaluator import TabEvaluator

registry = EvaluatorRegistry(TabEvaluator)
get_evaluator = registry.get
evaluate, evaluate_stage1, evaluate_stage2 = registry.entry_points()
