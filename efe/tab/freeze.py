"""Freezing an EFE-Tab winner: its state re-learnt on the whole training part, written once to ``frozen/``.

The manifest records what was known when the program was chosen (the search's and the selection
pool's estimates of its gain); the held-out verdict comes after, in ``report.json`` beside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from efe.core.config import required
from efe.core.console import say
from efe.core.specs import TabSpec
from efe.core.task import gain_name, metric_name
from efe.datasets.split import read_train
from efe.frozen.freeze import freeze, input_schema
from efe.setting import Choice
from efe.tab.estimates import estimates
from efe.tab.heldout import HeldoutResult, refit
from efe.rundir.paths import FROZEN
from evaluators.tabular.scorers import make_scorer


@dataclass
class TabFrozen:
    """The frozen winner's refit: its state and the transformed training and held-out parts, for the report."""

    held: HeldoutResult
    fresh_row: dict | None  # the winner's row of the final selection table (None: not re-scored)
    scorer: dict            # the run's scorer as the manifest names it (kind, estimator, parameters)


def freeze_winner(cfg: DictConfig, spec: TabSpec, run_dir: Path, choice: Choice) -> TabFrozen:
    """Refit the winner on the whole training part and write ``frozen/`` (code, state, manifest)."""
    winner, source = choice.winner, choice.source
    X_train, y_train = read_train(spec.train_path, spec.target)
    X_test, _ = read_train(run_dir / "data" / "heldout.parquet", spec.target)
    started = time.monotonic()
    say(f"freeze: fitting the chosen program on the {len(X_train)} training rows and transforming the "
        f"{len(X_test)} held-out rows (sandboxed) ...")
    held = refit(source, X_train, y_train, X_test, spec.sandbox, spec.seed, spec.gate)
    say(f"freeze: done in {time.monotonic() - started:.0f}s; scoring the held-out report ...")
    fresh_row = next((f for f in choice.finalists if f["id"] == winner.id), None)
    scorer = make_scorer(spec.scorer, spec.seed, spec.task).describe()
    claimed = estimates(winner, fresh_row, [], float(required(cfg, "report.interval_z")), spec.scorer["name"])
    freeze(run_dir / FROZEN, "tab", source, held.state, schema=input_schema(X_train),
           output_columns=[str(c) for c in held.test_out.columns],
           extra={"dataset": spec.dataset.name, "target": spec.target,
                  "task": spec.task, "metric": metric_name(spec.task), "gain": gain_name(spec.task),
                  "classes": list(spec.dataset.classes),
                  "output_schema": input_schema(held.test_out),  # engine=spark/dask: the output types
                  "positive_label": spec.dataset.positive_label,
                  "scorer": scorer,
                  "search_fitness": winner.fitness,
                  "search_delta_auc": winner.metrics.get("delta_auc"),
                  "selection": choice.selection.get("verdict"),
                  "estimates": {k: claimed[k] for k in ("interval_z", "frozen_is_identity", "claimed_delta_auc",
                                                        "search", "fresh")},
                  "heldout_report": "report.json (scored after freezing, on rows the search never saw)",
                  "new_columns": list(winner.new_columns),
                  "dropped_columns": list(winner.dropped_columns)})
    return TabFrozen(held, fresh_row, scorer)
