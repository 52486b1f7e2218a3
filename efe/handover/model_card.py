"""``MODEL_CARD.md``: what a frozen feature program does, how well, how it was found, where it stops.

Written by ``efe.package`` and shown by ``efe.review``. Everything comes from files a run wrote
(manifest, report.json, spec, lineage) plus probes of the program on training rows; no number
is typed in here.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from efe.rundir.records import CANDIDATE, read_lineage
from efe.core.scorer_names import model_label, scorer_phrase
from efe.core.specs import load_spec


def column_inputs(apply: Callable[[pd.DataFrame], pd.DataFrame], sample: pd.DataFrame,
                  expected: pd.DataFrame) -> dict[str, list[str]]:
    """For each output column, the input columns whose values move it (each input shifted by one row)."""
    uses: dict[str, list[str]] = {str(c): [] for c in expected.columns}
    if len(sample) < 2:
        return uses
    for column in sample.columns:
        shifted = sample.copy()
        shifted[column] = np.roll(sample[column].to_numpy(), 1)
        try:
            out = apply(shifted)
        except Exception:  # noqa: BLE001 - a program that cannot take the shifted values depends on them
            for name in uses:
                uses[name].append(str(column))
            continue
        for name in uses:
            if name not in out.columns or not _equal(out[name], expected[name]):
                uses[name].append(str(column))
    return uses


def _equal(a: pd.Series, b: pd.Series) -> bool:
    try:
        pd.testing.assert_series_equal(a, b, check_exact=True, check_names=False)
        return True
    except AssertionError:
        return False


def data_fingerprint(run_dir: Path) -> dict:
    """A content hash of the training part the program was fitted on (values, column names and types)."""
    frame = pd.read_parquet(load_spec(run_dir / "spec.json").train_path)
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return {"sha256": digest.hexdigest(), "rows": int(len(frame)), "columns": int(frame.shape[1]),
            "what": "training part (labels included), held-out rows excluded"}


def describe_column(source: str, name: str) -> str:
    """The program's own words about a column: a comment naming it, else the comment above its first use."""
    lines = source.splitlines()
    comments = [line.strip() for line in lines if line.strip().startswith("#")]
    word = rf"(?<![\w]){re.escape(name)}(?![\w])"
    for text in [c for c in comments if re.search(word + r"\s*:", c)] + [c for c in comments if re.search(word, c)]:
        return re.sub(rf"^#+\s*(-+\s*)?{re.escape(name)}\s*:?\s*", "", text).strip(" #-") or text.lstrip("# ")
    quoted = (f'"{name}"', f"'{name}'")
    for i, line in enumerate(lines):
        if any(q in line for q in quoted) and "=" in line:
            if "#" in line.split("=", 1)[1]:
                return line.split("#", 1)[1].strip()
            above = lines[i - 1].strip() if i else ""
            if above.startswith("#"):
                return above.lstrip("# ").strip()
            return f"computed by `{line.strip()}`"
    return "(the program says nothing about it; see its code)"


def lineage_summary(run_dir: Path, winner_id: Any) -> list[str]:
    """How the program was found: the search's size and the chain of parents from the seed to the winner."""
    entries = read_lineage(run_dir / "lineage.jsonl")
    candidates = [e for e in entries if e.kind == CANDIDATE]
    if not candidates:
        return ["- no lineage recorded"]
    valid = sum(1 for e in candidates if e.valid)
    iterations = max((e.iteration or 0 for e in candidates), default=0)
    islands = len({e.island for e in candidates if e.island is not None})
    lines = [f"- {len(candidates)} candidates over {iterations} iterations on {islands or 1} island(s); "
             f"{valid} passed the validity and leakage gates, {len(candidates) - valid} were rejected."]
    by_id = {e.id: e for e in entries if e.id}
    chain, seen, current = [], set(), by_id.get(winner_id)
    while current is not None and current.id not in seen:
        seen.add(current.id)
        chain.append(current)
        current = by_id.get(current.parent)
    if chain:
        steps = " <- ".join(f"`{str(e.id)[:8]}` (iteration {e.iteration}, fitness "
                            f"{e.fitness if e.fitness is not None else float('nan'):.4f})" for e in chain)
        lines.append(f"- Ancestry of the frozen program, newest first: {steps}.")
    else:
        lines.append("- The frozen program is the seed (identity): no candidate beat it.")
    return lines


def _heldout_lines(manifest: dict, report: dict) -> list[str]:
    rows = report.get("heldout") or manifest.get("heldout") or []
    intervals = {e.get("model"): e for e in (report.get("estimates") or {}).get("heldout", []) or []}
    z = (report.get("estimates") or {}).get("interval_z")
    if not rows:
        return ["Not recorded."]
    metric = manifest.get("metric") or "ROC-AUC"
    gain = manifest.get("gain") or "difference"
    out = [f"| model | {metric} without the program | with it | {gain} | interval of the {gain} |",
           "|---|---|---|---|---|"]
    for r in rows:
        e = intervals.get(r.get("model"))
        if e is not None and e.get("low") is not None and np.isfinite(e.get("low", float("nan"))):
            interval = f"[{e['low']:+.4f}, {e['high']:+.4f}]" + (f" (mean ± {z}·SE)" if z is not None else "")
        else:
            interval = "not reported"
        nan = float("nan")
        out.append(f"| {model_label(r)} | {r.get('auc_no_fe', nan):.4f} | {r.get('auc_efe', nan):.4f} | "
                   f"{r.get('delta', float('nan')):+.4f} | {interval} |")
    notes = [f"- {e['model']}: {e['note']}" for e in intervals.values() if e.get("note")]
    return out + ([""] + notes if notes else [])


def _limits(manifest: dict, config: dict | None) -> list[str]:
    schema = manifest.get("input_schema", [])
    columns = ", ".join(f"{c['name']} ({c['dtype']})" for c in schema)
    lines = [f"- Expects exactly these input columns and types: {columns}; a missing column is an error.",
             f"- Fitted once on the training part of '{manifest.get('dataset')}'; its statistics (encodings, bins, "
             "shifts) do not follow drift in new data. Re-fit with `efe.load_program(path).set_params(refit=True)`.",
             "- The gain was measured with the scorers listed above only; other models may gain less or nothing."]
    if config:
        raising = [c["column"] for c in config.get("nan_probe", []) if c.get("error")]
        if raising:
            lines.append(f"- Raises an error when any of these columns holds NaN: {', '.join(raising)}.")
        else:
            lines.append("- Accepts NaN in every input column (the behaviour is pinned by the package's tests).")
        lat = config.get("latency", {})
        if lat:
            lines.append(f"- One batch of {lat['batch_rows']} rows took {lat['measured_s']:.4f} s when packaged "
                         f"(test budget {lat['budget_s']:.2f} s).")
    return lines


def render_card(manifest: dict, source: str, report: dict, run_dir: Path | None, config: dict | None) -> str:
    """The model card of the frozen program ``source``; ``config`` (package.json) adds per-column
    inputs, NaN behaviour and latency."""
    new, dropped = manifest.get("new_columns", []), manifest.get("dropped_columns", [])
    inputs = (config or {}).get("column_inputs", {})
    columns = [f"- **{c}**: {describe_column(source, c).rstrip('.')}."
               + (f" Computed from: {', '.join(inputs[c]) or 'no input column (a constant)'}." if c in inputs else "")
               for c in new] or ["- none: the program adds no column"]
    if dropped:
        columns.append(f"- Dropped input columns: {', '.join(dropped)}.")
    search = report.get("search", {})
    winner = report.get("winner", {})
    fingerprint = (config or {}).get("data_fingerprint") or (data_fingerprint(run_dir) if run_dir else None)
    scorer = report.get("search_scorer") or "?"
    spec_scorer = ""
    described = report.get("scorer") or manifest.get("scorer")
    if described:  # kind, estimator import path, parameters
        scorer = scorer_phrase(described, scorer)
    elif run_dir is not None and (run_dir / "spec.json").exists():  # a run from before scorers were described
        params = load_spec(run_dir / "spec.json").scorer["params"]
        spec_scorer = f" with parameters {json.dumps(params)}" if params else ""
    metric = manifest.get("metric") or "ROC-AUC"
    task = manifest.get("task") or "binary"
    gain = manifest.get("gain") or "ΔAUC"
    md = [f"# Model card: feature program for '{manifest.get('dataset')}' (target '{manifest.get('target')}')", "",
          f"Task: {task} ({metric}" + ("; lower is better, the gain is the relative RMSE reduction" if task == "regression"
                                       else "") + ").", "",
          f"Program sha256 `{manifest.get('files', {}).get('program.py', '?')}`, frozen {manifest.get('created')}.", "",
          "## What it adds", "", *columns, "",
          "## Held-out result", "",
          f"{metric} on the held-out part (never seen by the search), each model trained on the training part with "
          "and without the program.", "", *_heldout_lines(manifest, report), "",
          "## Scorer", "",
          f"The search scored programs with **{scorer}**{spec_scorer}: {metric} on pool B after fitting on pool A, "
          f"against the same model on the raw columns. The scorer was fixed for the whole run, never tuned per "
          f"program. Search fitness of the frozen program: "
          f"{manifest.get('search_fitness')}, search {gain}: {manifest.get('search_delta_auc')}.", "",
          "## Data", "",
          (f"Training data fingerprint: sha256 `{fingerprint['sha256']}` over {fingerprint['rows']} rows × "
           f"{fingerprint['columns']} columns ({fingerprint['what']})." if fingerprint else "Not recorded."), "",
          "## How it was found", "",
          f"- LLM back end: {search.get('llm', '?')}; {search.get('iterations_done', '?')} of "
          f"{search.get('iterations', '?')} iterations ({search.get('stop_reason', '?')}); LLM calls "
          f"{search.get('llm_calls', '?')}, cost ${search.get('llm_cost_usd', 0) or 0:.4f}; wall "
          f"{search.get('wall_s', '?')} s.",
          *(lineage_summary(run_dir, winner.get("id")) if run_dir is not None else []), "",
          "## Known limits", "", *_limits(manifest, config), "",
          "## Versions", "",
          ", ".join(f"{k} {v}" for k, v in manifest.get("libraries", {}).items()), ""]
    return "\n".join(md)
