"""``python -m efe.score <program.py> [overrides]``: gate and score one program by hand.

For a person editing a program: prints the gate verdict, the metrics and the feedback the
LLM would see. Uses the same configuration as ``python -m efe.tab`` (``conf/tab.yaml``).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from typing import Sequence

from efe.cli.common import shell_overrides
from efe.core.config import ConfigError, compose
from efe.datasets.tabular import DatasetError
from efe.core.programs import ProgramContractError, read_program
from efe.tab.prepare import prepare_tab_run
from evaluators.tabular.evaluator import TabEvaluator

USAGE = ("usage: python -m efe.score <program.py> [dataset=<name> | dataset=csv dataset.path=<file> "
         "dataset.target=<column> [dataset.test_path=<file>]] [scorer=lightgbm|tree|tabpfn|linear|random_forest|sklearn] [key=value ...]")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    paths = [a for a in argv if "=" not in a and not a.startswith("-")]
    if len(paths) != 1 or any(a in ("-h", "--help") for a in argv):
        print(USAGE, file=sys.stderr)
        return 2
    overrides = [a for a in argv if a not in paths]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        program = read_program(paths[0])
        if program.setting != "tab":
            raise ProgramContractError(f"'{paths[0]}' is a {program.setting} program; efe.score "
                                       "scores tabular feature programs")
        cfg = compose("score", shell_overrides(overrides))
        with tempfile.TemporaryDirectory(prefix="efe-score-") as tmp:
            spec, train, _ = prepare_tab_run(cfg, tmp)
            print(f"dataset {spec.dataset.name}: {len(train.X)} training rows x "
                  f"{train.X.shape[1]} features (held-out part set aside); scorer {spec.scorer['name']}")
            evaluator = TabEvaluator(spec)
            if len(evaluator.selection_rows):
                print(f"scored on the {len(evaluator.search_rows)} rows a search scores (a run keeps the other "
                      f"{len(evaluator.selection_rows)} for its final selection; selection.pool_fraction=0 uses all)")
            try:
                outcome = evaluator.evaluate(program.text)
            finally:
                evaluator.close()
    except (ProgramContractError, ConfigError, DatasetError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_outcome(outcome)
    return 0 if outcome.valid else 1


def _print_outcome(outcome) -> None:
    m = outcome.metrics
    verdict = "valid" if outcome.valid else f"INVALID at {outcome.stage}: {outcome.reason}"
    print(f"verdict: {verdict}")
    print(f"fitness: {m['combined_score']:.4f}")
    print(f"AUC (mean of {int(m['n_folds'])} paired folds): baseline {m['auc_base']:.4f}  "
          f"candidate {m['auc_candidate']:.4f}  delta {m['delta_auc']:+.4f} ± {m['delta_auc_se']:.4f} (SE)")
    print(f"features: {int(m['generated_feature_count'])} new, {int(m['dropped_feature_count'])} dropped")
    for key, value in outcome.artifacts.items():
        if key in ("verdict",):
            continue
        text = str(value)
        if "\n" in text:
            print(f"--- {key}\n{text}")
        else:
            print(f"{key}: {text}")


if __name__ == "__main__":
    sys.exit(main())
