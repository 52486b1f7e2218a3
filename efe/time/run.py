"""One EFE-Time run: load → split → context → spec → search → select → freeze → held-out report (``efe.run.run``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from efe.run import run
from efe.time.prepare import prepare_time_run
from efe.time.setting import TimeSetting

__all__ = ["prepare_time_run", "run_time"]  # prepare_time_run: kept importable from here


def run_time(cfg: DictConfig, run_dir: Path) -> Path:
    return run(TimeSetting(), cfg, run_dir)
