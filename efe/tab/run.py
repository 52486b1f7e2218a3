"""One EFE-Tab run: load → split → context → spec → search → select → freeze → report (``efe.run.run``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from efe.run import run
from efe.tab.setting import TabSetting


def run_tab(cfg: DictConfig, run_dir: Path, split: tuple | None = None) -> Path:
    return run(TabSetting(split), cfg, run_dir)
