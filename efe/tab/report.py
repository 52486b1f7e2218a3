"""``report.md`` and ``report.json``: the held-out table, the winner's source and its features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from efe.llm.judge import summary_line


def write_report(run_dir: Path, data: dict[str, Any]) -> tuple[Path, Path]:
    json_path = run_dir / "report.json"
    json_path.write_text(json.dumps(data, indent=2, default=str))
    md_path = run_dir / "report.md"
    md_path.write_text(render_markdown(data))
    return md_path, json_path


def render_markdown(d: dict[str, Any]) -> str:
    s = d["search"]
    w = d["winner"]
    lines = [
        f"# EFE-Tab report: {d['dataset']['name']}",
        "",
        f"- Target: `{d['dataset']['target']}` (positive class {d['dataset']['positive_label']!r}); "
        f"{d['dataset']['train_rows']} training rows, {d['dataset']['heldout_rows']} held-out rows "
        f"(never seen by the search), {d['dataset']['n_features']} input features.",
        f"- Search scorer: {d['search_scorer']}; LLM: {s['llm']}; {s['iterations_done']} of {s['iterations']} "
        f"iterations; stopped: {s['stop_reason']}.",
        f"- Candidates: {s['candidates']} ({s['valid']} valid, {s['invalid']} invalid, {s['no_program']} without a "
        f"program); LLM calls {s['llm_calls']} (+{s['llm_cached']} cached), cost ${s['llm_cost_usd']:.4f}.",
        *summary_line(s.get("judge")),
        f"- Winner: `{w['id']}` from iteration {w['iteration']}, search fitness {w['fitness']:.4f} "
        f"(ΔAUC on pool B {w['delta_auc']:+.4f}).",
        "",
        "## Held-out ROC-AUC",
        "",
        "| model | no feature engineering | EFE program | Δ |",
        "|---|---|---|---|",
    ]
    for row in d["heldout"]:
        lines.append(f"| {row['model']} | {row['auc_no_fe']:.4f} | {row['auc_efe']:.4f} | {row['delta']:+.4f} |")
    for name, why in d.get("heldout_skipped", {}).items():
        lines.append(f"| {name} | skipped: {why} | | |")
    if d.get("finalists"):
        lines += ["", "## Final selection", "",
                  "The seed and the best candidates of the search, re-scored on every pool rotation; the best mean "
                  "fitness is frozen (one rotation's score is partly luck).", "",
                  "| program | search fitness | mean fitness (all rotations) | worst rotation | mean ΔAUC |",
                  "|---|---|---|---|---|"]
        for f in d["finalists"]:
            mark = " **(frozen)**" if f["id"] == w["id"] else ""
            lines.append(f"| `{str(f['id'])[:8]}` ({f['kind']}){mark} | {f['search_fitness']:.4f} | "
                         f"{f['mean_fitness']:.4f} | {f['min_fitness']:.4f} | {f['mean_delta_auc']:+.4f} |")
    lines += [
        "",
        "## Features",
        "",
        f"- New ({len(w['new_columns'])}): {', '.join(f'`{c}`' for c in w['new_columns']) or 'none'}",
        f"- Dropped ({len(w['dropped_columns'])}): {', '.join(f'`{c}`' for c in w['dropped_columns']) or 'none'}",
        "",
    ]
    if d.get("plots"):
        lines += ["## The search", ""]
    for title, rel in d.get("plots", {}).items():
        lines += [f"[{title}]({rel})" if rel.endswith(".html") else f"![{title}]({rel})", ""]
    lines += [
        "## Winning program",
        "",
        "```python",
        w["source"].rstrip(),
        "```",
        "",
        "## Files",
        "",
    ]
    for name, path in d["files"].items():
        lines.append(f"- {name}: `{path}`")
    return "\n".join(lines) + "\n"
