"""openevolve evaluator file for EFE-Tab.

openevolve executes this file anew for every program (with cascade evaluation), so it stays
thin: the evaluator with its data, pools, baselines and sandbox lives in
``evaluators.tabular.service`` and is cached in ``sys.modules`` across calls.
"""

from evaluators.tabular.service import evaluate, evaluate_stage1, evaluate_stage2

__all__ = ["evaluate", "evaluate_stage1", "evaluate_stage2"]
