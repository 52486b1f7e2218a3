"""``python -m efe.score <program.py> [overrides]``: gate and score one program by hand.

For a person editing a program: prints the gate verdict, the metrics and the feedback the
LLM would see (rendered by :mod:`efe.report.score`). Uses the same configuration as ``python -m efe.tab``
(``conf/score.yaml`` is ``conf/tab.yaml``).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from typing import Any, Callable, Sequence

from omegaconf import open_dict

from efe.cli.args import Command, run
from efe.cli.common import sandbox_mode
from efe.core.config import ConfigError
from efe.core.errors import EfeError
from efe.core.programs import ProgramContractError, read_program
from efe.report.score import describe
from efe.core.task import metric_name
from efe.tab.prepare import prepare_tab_run
from evaluators.tabular.evaluator import TabEvaluator

COMMAND = Command(
    "score", "<program.py> [dataset=<name> | dataset=csv dataset.path=<file> dataset.target=<column> "
             "[dataset.test_path=<file>]] [scorer=lightgbm|tree|tabpfn|linear|random_forest|sklearn] [key=value ...]",
    "Gate and score one tabular feature program, with the settings of a tabular run.",
    required=("program",), positional="program")


def score_program(path: str, cfg: Any, say: Callable[[str], None] = print) -> Any:
    """The evaluation outcome of the tabular program at ``path`` under ``cfg`` (conf/score.yaml)."""
    program = read_program(path)
    if program.setting != "tab":
        raise ProgramContractError(f"'{path}' is a {program.setting} program; efe.score scores tabular feature programs")
    with tempfile.TemporaryDirectory(prefix="efe-score-") as tmp:
        try:
            spec, train, _ = prepare_tab_run(cfg, tmp)
            say(f"dataset {spec.dataset.name}: {len(train.X)} training rows x {train.X.shape[1]} features "
                f"(held-out part set aside); scorer {spec.scorer['name']}")
            evaluator = TabEvaluator(spec)
            try:  # before the program runs: the isolation it gets, or a refusal (sandbox.require_isolation=true)
                say(f"sandbox isolation: {sandbox_mode(spec.sandbox.require_isolation, evaluator.sandbox)}")
            except BaseException:
                evaluator.close()
                raise
        except ValueError as exc:  # the evaluators check their settings with plain ValueErrors
            if isinstance(exc, EfeError):
                raise
            raise ConfigError(str(exc)) from exc
        if len(evaluator.selection_rows):
            say(f"scored on the {len(evaluator.search_rows)} rows a search scores (a run keeps the other "
                f"{len(evaluator.selection_rows)} for its final selection; selection.pool_fraction=0 uses all)")
        try:
            outcome = evaluator.evaluate(program.text)
            outcome.task = spec.task  # what the printed metric is
            return outcome
        finally:
            evaluator.close()


def score(cfg) -> int:
    with open_dict(cfg):
        program = str(cfg.pop("program"))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    outcome = score_program(program, cfg)
    task = getattr(outcome, "task", "binary")
    print(describe(outcome, "AUC" if task == "binary" else metric_name(task),
                   "delta" if task != "regression" else "relative RMSE reduction"))
    return 0 if outcome.valid else 1


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, score, argv)


if __name__ == "__main__":
    sys.exit(main())
