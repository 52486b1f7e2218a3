"""Files that ship with the package: the Hydra configuration, the seed programs, the evaluator files.

Found with importlib.resources, so an installed wheel works from any directory as well as a
checkout (where ``efe.conf`` and ``efe.seed_programs`` map to ``conf/`` and ``programs/``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def conf_dir() -> Path:
    """The directory holding ``tab.yaml``, ``time.yaml`` and the config groups."""
    return Path(str(files("efe.conf")))


def seed_program(setting: str) -> Path:
    """The identity program a search of ``setting`` ('tab' or 'time') starts from."""
    return Path(str(files("efe.seed_programs").joinpath(f"{setting}_identity.py")))


def evaluator_file(setting: str) -> Path:
    """The thin evaluator file openevolve loads by path for ``setting``."""
    return Path(str(files("evaluators").joinpath(f"{setting}.py")))
