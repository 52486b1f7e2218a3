"""Plots of a run directory (``efe.plot``) on real run directories from the CLIs.

The runs come from ``python -m efe.tab`` / ``python -m efe.time``: an existing one under /tmp when the
machine has it, else a small one made here with the offline proposer (about 8 s each).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from efe.plot import main
from efe.report.plots.write import write_plots
from efe.report.plots import load_run
from efe.rundir.records import read_lineage
from efe.report.plots.grid import latest_checkpoint
from efe.report.plots.tree import layout
from tests.conftest import ROOT

EXISTING = {"tab": ["/tmp/efe-int/tab/hmda/*", "/tmp/efe-default/tab/titanic/*"],
            "time": ["/tmp/efe-time2/time/synthetic_exp/*"]}
# selection.top_k=0: freeze the search's best as is (no final check that may keep the identity); the
# search scores all training rows and ranks by the mean gain (the paper's fitness), so that in 8
# iterations some candidate beats the identity and the winner has an ancestry to draw
FRESH = {"tab": ["dataset=hmda", "evolution.iterations=8", "report.models=[tree]", "selection.top_k=0",
                 "selection.pool_fraction=0", "fitness.confidence_z=0"],
         "time": ["dataset=synthetic_exp", "dataset.n_series=8", "dataset.length=100",
                  "dataset.prediction_length=12", "windows.n_rotations=1", "forecaster=seasonal_naive",
                  "evolution.iterations=8"]}
PNG = b"\x89PNG\r\n\x1a\n"


def _real_run(setting: str, factory) -> Path:
    for pattern in EXISTING[setting]:
        for found in sorted(Path("/").glob(pattern.lstrip("/")), reverse=True):
            if (found / "lineage.jsonl").exists() and (found / "report.json").exists() and latest_checkpoint(found):
                return found
    root = factory.mktemp(f"{setting}-runs")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("EFE_LLM_API_BASE", None)
    proc = subprocess.run([sys.executable, "-m", f"efe.{setting}", *FRESH[setting], "llm=offline",
                           "evolution.openevolve.checkpoint_interval=4", f"runs_root={root}",
                           f"llm.cache_dir={root / 'cache'}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list((root / setting).glob("*/*"))
    return run


@pytest.fixture(scope="module")
def tab_source(tmp_path_factory) -> Path:
    return _real_run("tab", tmp_path_factory)


@pytest.fixture(scope="module")
def time_source(tmp_path_factory) -> Path:
    return _real_run("time", tmp_path_factory)


def copy_run(source: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(source, run, ignore=shutil.ignore_patterns("plots", "data", "llm_claims"))
    return run


def assert_files(run: Path, written: dict[str, str], titles: set[str]) -> None:
    assert set(written) == titles, written
    for title, rel in written.items():
        path = run / rel
        assert path.parent == run / "plots" and path.stat().st_size > 1024, (title, path)
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG


def assert_offline_html(run: Path, winner: str) -> str:
    page = (run / "plots" / "evolution_tree.html").read_text()
    assert "<svg" in page and winner in page and "<title>" in page
    outside = re.findall(r"(?:https?:)?//[\w.-]+", page.replace('xmlns="http://www.w3.org/2000/svg"', ""))
    assert not outside, outside  # no CDN, no network: opens offline
    assert "<script src" not in page and "<link" not in page
    return page


def test_tabular_run_gets_tree_html_progress_and_grid(tab_source, tmp_path):
    run = copy_run(tab_source, tmp_path)
    written = write_plots(run)
    assert_files(run, written, {"Evolution tree", "Evolution tree (interactive)", "Fitness over iterations",
                                "MAP-Elites grid"})
    winner = json.loads((run / "report.json").read_text())["winner"]["id"]
    page = assert_offline_html(run, winner)
    lineage = read_lineage(run / "lineage.jsonl")
    assert page.count('class="node') >= len([e for e in lineage if e.id])
    assert "edge path" in page  # the winner's ancestry is drawn


def test_winner_ancestry_reaches_the_seed_and_grid_uses_the_latest_checkpoint(tab_source, tmp_path):
    run = load_run(copy_run(tab_source, tmp_path))
    programs = run.programs
    assert run.ancestry[0] == run.winner
    assert programs[run.ancestry[-1]].kind == "seed"
    for child, parent in zip(run.ancestry, run.ancestry[1:]):
        assert programs[child].parent == parent
    numbers = [int(p.name.split("_")[1]) for p in (run.dir / "evolution" / "checkpoints").glob("checkpoint_*")]
    assert latest_checkpoint(run.dir).name == f"checkpoint_{max(numbers)}"
    meta = json.loads((latest_checkpoint(run.dir) / "metadata.json").read_text())
    assert all(re.fullmatch(r"\d+(-\d+)*", key) for cells in meta["island_feature_maps"] for key in cells)


def test_invalid_candidates_migrants_and_failed_iterations_are_marked(tab_source, tmp_path):
    run_dir = copy_run(tab_source, tmp_path)
    lineage = read_lineage(run_dir / "lineage.jsonl")
    winner = json.loads((run_dir / "report.json").read_text())["winner"]["id"]
    last = max(e.iteration for e in lineage)
    seed = next(e for e in lineage if e.kind == "seed")
    extra = [  # shapes exactly as efe.search.lineage writes them
        {"kind": "candidate", "id": "bad-1", "parent": winner, "island": 1, "iteration": last + 1, "generation": 9,
         "metrics": {"combined_score": 0.0, "valid": 0.0}, "verdict": "invalid:gate:batch_dependence",
         "reason": "transform of the whole sample differs from transform of its parts <col 'x'>"},
        {"kind": "no_program", "id": None, "parent": None, "island": None, "iteration": last + 2,
         "metrics": {"combined_score": 0.0, "valid": 0.0}, "verdict": "no_program", "reason": "LLM timeout"},
        {"kind": "migrant", "id": "mig-1", "parent": winner, "island": 2, "iteration": 0, "generation": 3,
         "metrics": dict(seed.metrics), "verdict": "valid", "reason": ""},
    ]
    with open(run_dir / "lineage.jsonl", "a") as fh:
        fh.write("".join(json.dumps(e) + "\n" for e in extra))
    run = load_run(run_dir)
    lay = layout(run)
    assert lay.nodes["bad-1"].invalid and not lay.nodes[winner].invalid
    assert lay.nodes["mig-1"].migrant and lay.nodes["mig-1"].x == last + 2  # arrives when it is logged
    assert [x for x, _ in lay.no_program] == [last + 2]
    written = write_plots(run_dir)
    assert {"Evolution tree", "Evolution tree (interactive)", "Fitness over iterations"} <= set(written)
    page = assert_offline_html(run_dir, winner)
    assert 'class="node invalid"' in page and 'class="node migrant"' in page and "no program" in page
    assert "&lt;col &#x27;x&#x27;&gt;" in page  # reasons are escaped in the tooltips


def test_time_run_draws_heldout_forecasts(time_source, tmp_path):
    run = copy_run(time_source, tmp_path)
    rng = np.random.default_rng(0)
    h = 6
    examples = []
    for k in range(5):  # more than four: only four panels
        series = np.exp(0.05 * np.arange(6 * h)) * (k + 1) + rng.normal(0, 0.1, 6 * h)
        history, future = series[:5 * h], series[5 * h:]
        naive = np.full(h, history[-1])
        examples.append({"item_id": f"item_{k}", "history": history.tolist(), "future": future.tolist(),
                         "identity": {"median": naive.tolist(), "low": (naive - 1).tolist(),
                                      "high": (naive + 1).tolist()},
                         "program": {"median": future.tolist(), "low": (future - 0.5).tolist(),
                                     "high": (future + 0.5).tolist()}})
    examples[0]["history"][2] = None  # a missing value in the history
    (run / "heldout_examples.json").write_text(json.dumps({"horizon": h, "levels": [0.1, 0.5, 0.9],
                                                           "examples": examples}))
    written = write_plots(run)
    assert_files(run, written, {"Evolution tree", "Evolution tree (interactive)", "Fitness over iterations",
                                "MAP-Elites grid", "Held-out forecasts"})
    assert written["Held-out forecasts"] == "plots/forecasts.png"


def test_partial_run_skips_what_is_missing_with_a_warning(tab_source, tmp_path, caplog):
    run = copy_run(tab_source, tmp_path)
    (run / "report.json").unlink()
    shutil.rmtree(run / "evolution")
    with open(run / "lineage.jsonl", "a") as fh:
        fh.write('{"kind": "candidate", "id": "torn')  # a run killed mid-write
    with caplog.at_level(logging.WARNING, logger="efe.report.plots"):
        written = write_plots(run)
    assert set(written) == {"Evolution tree", "Evolution tree (interactive)", "Fitness over iterations"}
    assert "MAP-Elites grid plot skipped" in caplog.text
    best = load_run(run)
    scores = {e.id: e.metrics["combined_score"] for e in read_lineage(run / "lineage.jsonl")
              if e.verdict == "valid" and e.kind != "migrant"}
    assert scores[best.winner] == max(scores.values())  # no report: the best valid program

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text("seed: 0\n")
    assert write_plots(empty) == {}


def test_cli(tab_source, tmp_path, capsys):
    run = copy_run(tab_source, tmp_path)
    assert main([f"run={run}", "format=svg", "x=generation"]) == 0
    assert (run / "plots" / "evolution_tree.svg").stat().st_size > 1024
    assert "Evolution tree" in capsys.readouterr().out
    assert main([f"run={tmp_path / 'nowhere'}"]) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "not-a-run").mkdir()
    assert main([f"run={tmp_path / 'not-a-run'}"]) == 2
    assert "not an efe run directory" in capsys.readouterr().err
    assert main([str(run)]) == 2 and main([]) == 2 and main([f"run={run}", "format=jpg"]) == 2
