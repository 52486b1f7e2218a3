"""``python -m efe.tab [overrides]``: evolve a feature program for a table (Hydra app, conf/tab.yaml)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from efe.cli.common import hydra_argv, register_resolvers, run_app

register_resolvers()


@hydra.main(config_path="pkg://efe.conf", config_name="tab", version_base="1.3")
def main(cfg: DictConfig) -> None:
    # lazy: Hydra answers --help and config errors before main runs; a run's imports (openevolve,
    # scikit-learn, the evaluators) load only for a run
    from efe.core.config import ConfigError
    from efe.datasets.tabular import DatasetError
    from efe.core.programs import ProgramContractError
    from efe.tab.run import run_tab
    from evaluators.tabular.scorers import ScorerConfigError

    run_app(cfg, run_tab, (DatasetError, ConfigError, ScorerConfigError, ProgramContractError, FileNotFoundError))


if __name__ == "__main__":
    hydra_argv()  # a description with ';', '=' or ',' works as typed in a shell
    main()
