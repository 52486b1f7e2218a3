"""One (dataset, outer fold, method) cell of the tabular benchmark.

Every method is fitted on the fold's training part only and scored on its held-out part by
the same trusted code (``refit_and_score``), with TabPFN (when weights are configured),
LightGBM and a decision tree. LLM-style methods share the LLM back end, cache, ledger and
call budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from efe.cli.common import search_spec
from efe.bench.caafe import run_caafe
from efe.core.config import compose, plain_dict
from efe.datasets.split import write_table
from efe.datasets.tabular import TabularDataset
from efe.llm.client import resolve_backend
from efe.llm.ledger import Ledger
from efe.core.resources import seed_program
from efe.core.specs import SandboxSpec, TabGateSpec, build, replace
from efe.rundir.jsonl import read_jsonl
from efe.tab.context import build_context
from efe.tab.heldout import refit_and_score, scorer_configs
from efe.tab.prepare import prepare_tab_run
from efe.tab.run import run_tab
from evaluators.tabular.scorers import auc, make_scorer

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = seed_program("tab").read_text()
LABEL_FREE = ["log", "ratio", "product", "diff", "missing", "len", "token", "drop", "bin", "freq",
              "group_mean", "group_dev"]

# LLM-FE (Abhyankar et al., 2025) is FunSearch-like: islands of scored programs, prompts with the best
# previous versions, a stateless feature function. Here: openevolve configured that way, label-free programs.
LLMFE_OVERRIDES = [
    "evolution.openevolve.database.num_islands=4",
    "evolution.openevolve.database.feature_dimensions=[diversity]",
    "evolution.openevolve.database.elite_selection_ratio=0.0",
    "evolution.openevolve.database.exploration_ratio=0.0",
    "evolution.openevolve.database.exploitation_ratio=1.0",
    "evolution.openevolve.prompt.num_top_programs=2",
    "evolution.openevolve.prompt.num_diverse_programs=0",
    "gate.label_free_state=true",
    f"proposer.allowed_moves=[{','.join(LABEL_FREE)}]",
]


def load_cells(out: Path) -> tuple[Path, dict[tuple, dict]]:
    """``out/results.jsonl`` and the cells already in it, by (dataset, fold, method): a re-run skips them."""
    results = out / "results.jsonl"
    done = {(cell["dataset"], cell["fold"], cell["method"]): cell for cell in read_jsonl(results, warn=True)}
    return results, done


def _cfg(overrides: list[str]) -> Any:
    return compose("tab", overrides)


def _rows_to_scores(rows: list[dict]) -> dict[str, float]:
    return {r["model"]: r["auc_efe"] for r in rows}


def run_cell(method: str, train: TabularDataset, test: TabularDataset, workdir: Path, *, budget: int,
             overrides: list[str], models: list[str]) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    base = [f"report.models=[{','.join(models)}]", f"evolution.iterations={budget}", *overrides]
    if method == "efe":
        out = _search(train, test, workdir, base)
    elif method == "llmfe":
        out = _search(train, test, workdir, base + LLMFE_OVERRIDES)
    elif method == "caafe":
        if train.task != "binary":
            raise ValueError(f"the CAAFE-style baseline scores binary targets only (AUC and accuracy); "
                             f"'{train.name}' is {train.task}")
        out = _caafe(train, test, workdir, base, budget)
    elif method == "none":
        out = score_program(IDENTITY, train, test, _cfg(base))
        out["claimed_delta_auc"] = 0.0
    elif method == "openfe":
        out = _openfe(train, test, workdir, _cfg(base))
    else:
        raise ValueError(f"unknown method {method!r}")
    out["wall_s"] = time.time() - started
    out.setdefault("llm_calls", 0)
    out.setdefault("llm_cost_usd", 0.0)
    return out


def _search(train, test, workdir: Path, overrides: list[str]) -> dict:
    cfg = _cfg(overrides)
    run_tab(cfg, workdir, split=(train, test))
    report = json.loads((workdir / "report.json").read_text())
    est = report.get("estimates") or {}
    return {"auc": _rows_to_scores(report["heldout"]), "n_new": len(report["winner"]["new_columns"]),
            "n_dropped": len(report["winner"]["dropped_columns"]), "llm_calls": report["search"]["llm_calls"],
            "llm_cost_usd": report["search"]["llm_cost_usd"],
            # what the run claims for the frozen program (selection-pool estimate), and the search's own figure
            "claimed_delta_auc": est.get("claimed_delta_auc", report["winner"]["delta_auc"]),
            "search_delta_auc": report["winner"]["delta_auc"],
            "best_search_delta_auc": max((f["search_delta_auc"] for f in report.get("finalists", [])), default=0.0),
            "frozen_identity": bool(est.get("frozen_is_identity", False)),
            "selection": (report.get("selection") or {}).get("verdict"),
            "search_cost": report.get("search_cost", {})}


def score_program(source: str, train, test, cfg) -> dict:
    """A fixed program refitted on ``train`` and scored held out on ``test`` with cfg's report models."""
    scorer_cfg = plain_dict(cfg.scorer)
    held = refit_and_score(source, train.X, train.y, test.X, test.y,
                           scorer_configs(list(cfg.report.models), scorer_cfg),
                           build(SandboxSpec, plain_dict(cfg.sandbox), "sandbox"), int(cfg.seed),
                           build(TabGateSpec, plain_dict(cfg.gate), "gate"), train.task,
                           int(cfg.report.bootstrap))
    new = [c for c in held.test_out.columns if c not in train.X.columns]
    dropped = [c for c in train.X.columns if c not in held.test_out.columns]
    return {"auc": _rows_to_scores(held.rows), "delta": {r["model"]: r["delta"] for r in held.rows},
            "delta_se": {r["model"]: r.get("delta_se") for r in held.rows},
            "n_new": len(new), "n_dropped": len(dropped)}


def _caafe(train, test, workdir: Path, overrides: list[str], budget: int) -> dict:
    cfg = _cfg(overrides)
    spec, train_part, _ = prepare_tab_run(cfg, workdir, (train, test))
    context = build_context(train_part, seed=int(cfg.seed))
    (workdir / "context.json").write_text(json.dumps(context))
    (workdir / "seed_program.py").write_text(IDENTITY)
    llm = plain_dict(cfg.llm)
    llm["backend"] = resolve_backend(llm)
    # CAAFE's loop asks the LLM directly: no proposer roles, no memory, no search executor
    spec = replace(spec, run_dir=str(workdir),
                   search=search_spec(cfg, workdir, llm, {"roles": {}, "memory": {}}, "as configured (sandbox.*)"))
    result = run_caafe(spec, context, IDENTITY, budget)
    (workdir / "caafe_history.json").write_text(json.dumps(result.history, indent=1))
    (workdir / "program.py").write_text(result.source)
    out = score_program(result.source, train, test, cfg)
    out["claimed_delta_auc"] = float(sum(a["delta_auc"] for a in result.accepted))  # its CV gains, summed
    totals = Ledger(workdir, llm.get("prices")).totals()
    out.update({"llm_calls": totals.calls, "llm_cost_usd": totals.cost_usd})
    return out


def _openfe(train, test, workdir: Path, cfg) -> dict:
    target = train.target
    write_table(train, workdir / "fold_train.parquet")
    write_table(test, workdir / "fold_test.parquet")
    runner = ROOT / "scripts" / "openfe_runner.py"
    proc = subprocess.run([sys.executable, str(runner), "--train", str(workdir / "fold_train.parquet"),
                           "--test", str(workdir / "fold_test.parquet"), "--target", target,
                           "--out", str(workdir / "openfe"), "--n-jobs", "1", "--seed", str(int(cfg.seed))],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"OpenFE failed: {proc.stderr[-1500:]}")
    Tt = pd.read_parquet(workdir / "openfe" / "train.parquet")
    Tv = pd.read_parquet(workdir / "openfe" / "test.parquet")
    info = json.loads((workdir / "openfe" / "features.json").read_text())
    scores = {}
    for model_cfg in scorer_configs(list(cfg.report.models), plain_dict(cfg.scorer)):
        try:
            scorer = make_scorer(model_cfg, int(cfg.seed), train.task)
        except ValueError:
            continue
        scores[model_cfg["name"]] = auc(scorer, Tt, train.y, Tv, test.y)
    return {"auc": scores, "n_new": int(info.get("count", Tt.shape[1] - train.X.shape[1])), "n_dropped": 0}
