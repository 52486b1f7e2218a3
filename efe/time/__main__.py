"""``python -m efe.time [overrides]``: evolve an invertible normalization for a forecaster (conf/time.yaml)."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from efe.cli_common import register_resolvers, resume_config, say, setup_logging

register_resolvers()


@hydra.main(config_path="../../conf", config_name="time", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from efe.config import ConfigError
    from efe.datasets.timeseries import TimeSeriesError
    from efe.time.run import run_time

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        if cfg.get("resume"):
            cfg = resume_config(cfg, list(HydraConfig.get().overrides.task))
        run_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(run_dir)
        run_time(cfg, run_dir)
    except (TimeSeriesError, ConfigError, FileNotFoundError, ValueError) as exc:
        say(f"error: {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
