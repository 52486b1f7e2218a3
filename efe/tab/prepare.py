"""From a resolved config to what the evaluator needs: split data on disk and a run spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from efe.config import plain_dict
from efe.datasets.split import outer_split, write_table
from efe.datasets.tabular import TabularDataset, load_tabular
from efe.runspec import write_spec


def prepare_tab_run(cfg: Any, run_dir: str | Path,
                    split: tuple[TabularDataset, TabularDataset] | None = None) -> tuple[dict, TabularDataset, TabularDataset]:
    """Load, split (held-out part kept apart), write ``data/train.parquet`` and ``spec.json``.

    ``split`` gives the (training, held-out) parts directly, e.g. a benchmark's outer fold.
    """
    run_dir = Path(run_dir)
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    if split is None:
        dataset = load_tabular(plain_dict(cfg.dataset))
        train, test = outer_split(dataset, float(cfg.split.test_fraction), int(cfg.seed))
    else:
        train, test = split
        dataset = train
    train_path = run_dir / "data" / "train.parquet"
    write_table(train, train_path)
    write_table(test, run_dir / "data" / "heldout.parquet")
    spec = {
        "setting": "tab",
        "run_dir": str(run_dir.resolve()),
        "dataset": {"name": dataset.name, "description": dataset.description,
                    "positive_label": dataset.positive_label, "warnings": dataset.warnings},
        "train_path": str(train_path.resolve()),
        "target": dataset.target,
        "seed": int(cfg.seed),
        "scorer": plain_dict(cfg.scorer),
        "pools": plain_dict(cfg.pools),
        "gate": plain_dict(cfg.gate),
        "fitness": plain_dict(cfg.fitness),
        "sandbox": plain_dict(cfg.sandbox),
        "feedback": plain_dict(cfg.feedback),
    }
    write_spec(run_dir / "spec.json", spec)
    return spec, train, test
