"""``python -m efe.time [overrides]``: evolve an invertible normalization for a forecaster (conf/time.yaml)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from efe.cli.common import hydra_argv, register_resolvers, run_app

register_resolvers()


@hydra.main(config_path="pkg://efe.conf", config_name="time", version_base="1.3")
def main(cfg: DictConfig) -> None:
    # lazy: Hydra answers --help and config errors before main runs; a run's imports (openevolve,
    # scikit-learn, the evaluators) load only for a run
    from efe.core.config import ConfigError
    from efe.datasets.timeseries import TimeSeriesError
    from efe.time.run import run_time

    run_app(cfg, run_time, (TimeSeriesError, ConfigError, FileNotFoundError, ValueError))


if __name__ == "__main__":
    hydra_argv()  # a description with ';', '=' or ',' works as typed in a shell
    main()
