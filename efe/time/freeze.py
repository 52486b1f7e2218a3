"""Freezing an EFE-Time winner, written once to ``frozen/``.

A time-series program is fitted on each history at forecast time, so its frozen state is empty;
the manifest records the run's forecaster, horizon and season, and what the search claimed. The
held-out verdict comes after, in ``report.json`` beside it.
"""

from __future__ import annotations

from pathlib import Path

from efe.core.specs import TimeSpec
from efe.frozen.freeze import freeze
from efe.setting import Choice
from efe.rundir.paths import FROZEN


def freeze_winner(spec: TimeSpec, run_dir: Path, choice: Choice) -> Path:
    """Write ``frozen/`` (code, empty state, manifest); its path."""
    winner = choice.winner
    return freeze(run_dir / FROZEN, "time", choice.source, {}, extra={
        "dataset": spec.dataset.name, "freq": spec.freq, "prediction_length": spec.prediction_length,
        "season": spec.season, "forecaster": spec.forecaster["name"],
        "search_fitness": winner.fitness,
        "search_mase_ratio": winner.metrics.get("mase_ratio"),
        "selection": choice.selection.get("decision"),
        "heldout_report": "report.json (scored after freezing, on windows the search never saw)",
        "note": "time-series programs are fitted on each history at forecast time; the frozen state is empty",
    })
