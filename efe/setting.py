"""What a setting (tab, time) gives the one run function: its data, prompts, evaluator, selection and report.

``efe.run.run`` names the steps of every run; a ``Setting`` fills in the parts that differ between a
table scored by ROC-AUC and a set of series scored by MASE. Each implementation is a thin object over
the setting's own modules (``efe.<setting>.prepare``, ``.prompts``, ``.selection``, ``.report``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig

from efe.rundir.records import LineageEntry


@dataclass
class Choice:
    """The program to freeze after the final selection, and what the report says about that selection."""

    winner: LineageEntry   # the lineage entry frozen (the search's best, a finalist, or the identity)
    source: str
    selection: dict
    finalists: list[dict] = field(default_factory=list)


class Setting(Protocol):
    name: str  # "tab" | "time": the CLI module efe.<name> and the tracking tag
    seed_program: Path  # the identity program every search starts from
    evaluator_file: Path  # the openevolve evaluator file of this setting
    template_dir: Path  # the prompt templates
    score_names: dict[str, str]  # how the search console names its score (run_search keywords)
    after_search: str  # the console line's tail once the search stops

    def prepare(self, cfg: DictConfig, run_dir: Path) -> tuple[Any, dict, dict]:
        """load → split → context → spec: data, context.json and seed_program.py on disk; (spec, context, steering)."""

    def describe(self, spec: Any, llm: dict, iterations: int) -> tuple[str, str]:
        """What this run is about to do (the first console line) and which LLM back end writes the programs."""

    def system_message(self, spec: Any, context: dict, seed_source: str) -> str:
        """The prompt's system message: the task, the data context, the seed program."""

    def select(self, cfg: DictConfig, spec: Any, run_dir: Path, result: Any, seed_source: str) -> Choice:
        """The final selection on data the search never scored; the identity unless a gain is confirmed."""

    def freeze(self, cfg: DictConfig, spec: Any, run_dir: Path, choice: Choice) -> Any:
        """Refit the chosen program on the whole training part and write ``frozen/``, once; what the report needs of it."""

    def report(self, cfg: DictConfig, spec: Any, run_dir: Path, choice: Choice, frozen: Any, result: Any, llm: dict,
               iterations: int, started: float, memory: dict | None) -> Path:
        """Held-out scoring and report.json/report.md (reads the frozen program, never writes it); report.md's path."""

    def next_steps(self, run_dir: Path) -> list[str]:
        """The last console lines: where the other outputs are and what to run next."""
