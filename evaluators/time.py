"""openevolve evaluator file for EFE-Time.

openevolve executes this file anew for every program (with cascade evaluation), so it stays
thin: the evaluator with its series, windows, baselines, forecaster and sandbox lives in
``evaluators.timeseries.service`` and is cached in ``sys.modules`` across calls.
"""

from evaluators.timeseries.service import evaluate, evaluate_stage1, evaluate_stage2

__all__ = ["evaluate", "evaluate_stage1", "evaluate_stage2"]
