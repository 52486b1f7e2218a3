"""The EFE-Time evaluator registry and openevolve entry points (see ``evaluators.service``)."""

from __future__ import annotations

from evaluators.service import EvaluatorRegistry
from evaluators.timeseries.evaluator import TimeEvaluator

registry = EvaluatorRegistry(TimeEvaluator)
get_evaluator = registry.get
evaluate, evaluate_stage1, evaluate_stage2 = registry.entry_points()
