"""From a resolved config to what the evaluator needs: split data on disk and a run spec."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from efe.core.config import plain_dict, required
from efe.core.console import say
from efe.core.task import TASKS
from efe.datasets.checks import CheckLimits, data_warnings
from efe.datasets.split import train_and_heldout, write_table
from efe.datasets.tabular import TabularDataset, load_tabular
from efe.core.specs import TabSpec, build, save_spec
from evaluators.tabular.pools import usable_pool_fraction
from evaluators.tabular.sampling import search_and_pool
from evaluators.tabular.scorers import check_scorer

log = logging.getLogger(__name__)


def prepare_tab_run(cfg: Any, run_dir: str | Path,
                    split: tuple[TabularDataset, TabularDataset] | None = None) -> tuple[TabSpec, TabularDataset, TabularDataset]:
    """Load, split (held-out part kept apart), check, write ``data/train.parquet`` and ``spec.json``.

    The held-out part is ``dataset.test_path`` when given, else a ``split.test_fraction`` split;
    ``split`` gives the (training, held-out) parts directly, e.g. a benchmark's outer fold.
    Data warnings (a leak, an ID, a tiny class) are logged once here, before any search.
    """
    run_dir = Path(run_dir)
    given = str(plain_dict(cfg.dataset).get("task") or "auto") if split is None else split[0].task
    # the run's one scorer, built once now: one that cannot work is refused before any data or search
    scorer = check_scorer(required(cfg, "scorer"), int(cfg.seed), given if given in TASKS else "binary")
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    if split is None:
        dataset_cfg = plain_dict(cfg.dataset)
        started = time.monotonic()
        say(f"loading {dataset_cfg.get('path') or 'dataset=' + str(dataset_cfg.get('name'))} ...")
        dataset = load_tabular(dataset_cfg, int(required(cfg, "checks.min_class_rows")),
                               int(required(cfg, "checks.max_auto_classes")))
        say(f"loaded {len(dataset.y)} rows x {dataset.X.shape[1]} columns in {time.monotonic() - started:.0f}s; "
            "splitting off the held-out part and checking the data ...")
        if dataset_cfg.get("path") and not dataset_cfg.get("name"):
            print(f"note: dataset named '{dataset.name}' after its file; set dataset.name=<name> to name the run "
                  "directory and the report", file=sys.stderr, flush=True)
        train, test, heldout_source = train_and_heldout(dataset, dataset_cfg.get("test_path"),
                                                        float(cfg.split.test_fraction), int(cfg.seed),
                                                        train_path=dataset_cfg.get("path"))
    else:
        train, test = split
        dataset = train
        heldout_source = "given by the caller (an outer fold of a benchmark)"
    if dataset.task != given:  # inferred: the scorer for the task the target asks for
        scorer = check_scorer(required(cfg, "scorer"), int(cfg.seed), dataset.task)
    if dataset.task_note:
        say(dataset.task_note)
    checks = data_warnings(train, CheckLimits.from_mapping(required(cfg, "checks")))
    fraction, too_small = usable_pool_fraction(train.y, float(required(cfg, "selection.pool_fraction") or 0.0),
                                               int(required(cfg, "selection.min_pool_minority_rows")))
    checks += [too_small] if too_small else []
    for warning in checks:
        log.warning("%s: %s", dataset.name, warning)
    say(f"writing the training part ({len(train.y)} rows) and the held-out part ({len(test.y)} rows) ...")
    train_path = run_dir / "data" / "train.parquet"
    write_table(train, train_path)
    write_table(test, run_dir / "data" / "heldout.parquet")
    # where the held-out part came from, for the report; kept out of the spec, which never names it
    (run_dir / "data" / "heldout.json").write_text(json.dumps({"source": heldout_source, "rows": len(test.y)}))
    spec = build(TabSpec, {
        "setting": "tab",
        "run_dir": str(run_dir.resolve()),
        "dataset": {"name": dataset.name, "description": dataset.description,
                    "positive_label": dataset.positive_label, "warnings": _unique(dataset.warnings + test.warnings + checks),
                    "classes": list(dataset.classes), "task_note": dataset.task_note},
        "train_path": str(train_path.resolve()),
        "target": dataset.target,
        "task": dataset.task,
        "seed": int(cfg.seed),
        "scorer": scorer,
        "pools": required(cfg, "pools"),
        "gate": required(cfg, "gate"),
        "fitness": required(cfg, "fitness"),
        "sandbox": required(cfg, "sandbox"),
        "feedback": required(cfg, "feedback"),
        "scoring": required(cfg, "scoring"),
        # training rows kept for the final selection (the evaluator carves them the same way)
        "selection_pool": {"fraction": fraction, "seed": int(cfg.seed) + int(required(cfg, "selection.seed_offset")),
                           "max_rows": required(cfg, "selection.max_pool_rows")},
    })
    save_spec(run_dir / "spec.json", spec)
    return spec, train, test


def search_part(train: TabularDataset, spec: TabSpec) -> TabularDataset:
    """The training rows the search may see (without the selection pool), e.g. for the LLM's context."""
    pool = spec.selection_pool
    kept, search, _ = search_and_pool(train.y, spec.scoring.max_rows, pool.fraction, pool.max_rows, spec.seed,
                                      pool.seed)
    rows = kept[search]
    return dataclasses.replace(train, X=train.X.iloc[rows], y=train.y.iloc[rows])


def _unique(messages: list[str]) -> list[str]:
    return list(dict.fromkeys(messages))
