"""Memory across runs: a local JSON-lines store of earlier runs' best programs and rules.

Keyed by a dataset fingerprint (tabular: column names and kinds and the target; time series: the
dataset's name, frequency, horizon and season), each line records one finished run: the best
program of its search (and the frozen one when final selection chose another, never the identity)
with their search fitness, and the rules distilled from its lineage. A run with ``memory.use=true``
proposes the stored programs first (once each, before any new proposal) and shows the stored
rules in its prompts; ``memory.save`` adds the run to the store. When no earlier run has the same
fingerprint, the most similar earlier runs are recalled instead (``memory.min_similarity``): a
table with the same target whose columns overlap enough (Jaccard over name and kind), or a series
with the same frequency, horizon and season; stored tabular programs whose moves name a column the
new table lacks are left out, so a recalled program costs no evaluation that must fail. The store lives at
``memory.path``, by default ``$XDG_CACHE_HOME/efe/memory.jsonl`` (``~/.cache/efe/memory.jsonl``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

from efe.steering.rules import RuleBook
from efe.rundir.jsonl import read_jsonl
from efe.rundir.records import CANDIDATE, LineageEntry
from efe.core.moves_manifest import read_manifest
from efe.core.programs import code_hash
from efe.core.specs import RunSpec


def default_memory_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "efe" / "memory.jsonl"


def memory_path(memory: Mapping[str, Any]) -> Path:
    return Path(str(memory["path"])).expanduser() if memory.get("path") else default_memory_path()


def fingerprint(setting: str, parts: Mapping[str, Any]) -> str:
    """A stable hash of what identifies the data (not its rows)."""
    text = json.dumps({"setting": setting, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def tab_schema(context: Mapping[str, Any], target: str) -> dict:
    """What makes two tables alike: the same target (``must``) and overlapping columns (``items``)."""
    columns = {str(c): str((info or {}).get("kind")) for c, info in (context.get("columns") or {}).items()}
    return {"must": {"target": str(target), **_task_part(context)}, "items": sorted(f"{c}={k}" for c, k in columns.items())}


def time_schema(parts: Mapping[str, Any]) -> dict:
    """Series are alike when frequency, horizon and season agree (the dataset's name may differ)."""
    return {"must": {k: parts.get(k) for k in ("freq", "prediction_length", "season")}, "items": []}


def tab_fingerprint(context: Mapping[str, Any], target: str) -> str:
    columns = {str(c): str((info or {}).get("kind")) for c, info in (context.get("columns") or {}).items()}
    return fingerprint("tab", {"columns": columns, "target": str(target), **_task_part(context)})


def _task_part(context: Mapping[str, Any]) -> dict:
    """The task is part of what a table is (the same columns as regression or as classes are different
    problems); binary, as every run before tasks, adds nothing, so earlier binary stores still match."""
    task = str(context.get("task") or "binary")
    return {} if task == "binary" else {"task": task}


def similarity(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> float:
    """0 unless the ``must`` parts agree; then the Jaccard overlap of the ``items`` (1 when neither has any)."""
    if not a or not b or a.get("must") != b.get("must"):
        return 0.0
    x, y = set(a.get("items") or []), set(b.get("items") or [])
    return 1.0 if not x and not y else len(x & y) / len(x | y)


def manifest_columns(code: str) -> set[str] | None:
    """The columns a tabular program's moves name (``# efe-moves:`` manifest); None without one."""
    entries = read_manifest(code)
    if entries is None:
        return None
    return {str(c) for e in entries if isinstance(e, list) and len(e) > 1 and isinstance(e[1], list)
            for c in e[1]}


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def record_problem(record: Mapping[str, Any]) -> str | None:
    """What makes a stored line unusable (wrongly typed: hand-edited, or another version's), or None."""
    if not isinstance(record.get("fingerprint"), str):
        return "'fingerprint' is not a string"
    schema = record.get("schema")
    if schema is not None and not (isinstance(schema, dict) and isinstance(schema.get("must", {}), dict)
                                   and isinstance(schema.get("items") or [], list)
                                   and all(isinstance(i, str) for i in schema.get("items") or [])):
        return "'schema' is not an object with 'must' (an object) and 'items' (a list of strings)"
    if not _number(record.get("time")):
        return "'time' is not a number"
    programs = record.get("programs")
    if programs is not None and not isinstance(programs, list):
        return f"'programs' is not a list (it is {type(programs).__name__})"
    for i, program in enumerate(programs or []):
        if not isinstance(program, dict):
            return f"programs[{i}] is not an object"
        if not isinstance(program.get("code") or "", str):
            return f"programs[{i}].code is not a string"
        if not _number(program.get("fitness")):
            return f"programs[{i}].fitness is not a number"
    rules = record.get("rules")
    if rules is not None and not (isinstance(rules, list) and all(isinstance(r, dict) for r in rules)):
        return "'rules' is not a list of objects"
    return None


def read_store(memory: Mapping[str, Any]) -> list[dict]:
    """The usable records of the store; a torn, non-JSON or wrongly typed line is skipped with a warning
    naming the file and line."""
    return read_jsonl(memory_path(memory), warn=True, check=record_problem)


def _matching(records: list[dict], key: str, schema: Mapping[str, Any] | None, setting: str | None,
              min_similarity: float) -> tuple[list[dict], float]:
    """The records of this fingerprint (similarity 1), else those of the most similar earlier runs."""
    exact = [r for r in records if r.get("fingerprint") == key]
    if exact or not schema or min_similarity > 1.0:
        return exact, 1.0
    scored = [(similarity(schema, r.get("schema")), r) for r in records
              if setting is None or r.get("setting") == setting]
    best = max((s for s, _ in scored), default=0.0)
    if best < min_similarity or best <= 0.0:
        return [], 0.0
    return [r for s, r in scored if s == best], best


def recall(memory: Mapping[str, Any], key: str, schema: Mapping[str, Any] | None = None,
           setting: str | None = None) -> dict:
    """What earlier runs with this fingerprint (or the most similar one) left: best programs first, latest rules."""
    records, alike = _matching(read_store(memory), key, schema, setting,
                               float(memory.get("min_similarity", 0.75)))
    columns = {item.split("=", 1)[0] for item in (schema or {}).get("items") or []}
    programs, seen, skipped = [], set(), 0
    for record in records:
        for program in record.get("programs") or []:
            sha = code_hash(program.get("code") or "")
            if not program.get("code") or sha in seen:
                continue
            named = manifest_columns(program["code"]) if alike < 1.0 and columns else None
            if named is not None and not named <= columns:
                skipped += 1  # its moves name a column this table lacks
                continue
            seen.add(sha)
            programs.append({**program, "run_dir": record.get("run_dir"), "sha": sha})
    programs.sort(key=lambda p: -float(p.get("fitness") or 0.0))
    latest = max(records, key=lambda r: r.get("time") or 0.0) if records else {}
    return {"fingerprint": key, "runs": len(records), "similarity": alike if records else None,
            "skipped_programs": skipped, "programs": programs[: int(memory["max_programs"])],
            "rules": list(latest.get("rules") or [])}


def memory_spec(memory: Mapping[str, Any], key: str, schema: Mapping[str, Any] | None = None,
                setting: str | None = None) -> dict:
    """The run spec's ``memory`` section: settings, the table's schema, and with ``use`` what is recalled."""
    spec = {"fingerprint": key, "schema": dict(schema) if schema else None,
            "max_rules": int(memory["max_rules"]),
            "rules_in_prompt": bool(memory["rules_in_prompt"]), "programs": [], "rules": [], "runs": 0}
    if memory["use"]:
        spec.update({k: v for k, v in recall(memory, key, schema, setting).items() if k != "fingerprint"})
    return spec


def remember(memory: Mapping[str, Any], key: str, run_dir: Path, setting: str, dataset: str,
             lineage: list[LineageEntry], best: LineageEntry | None, frozen: LineageEntry | None,
             schema: Mapping[str, Any] | None = None) -> dict | None:
    """Add this run to the store (``memory.save``); returns the record, or None when nothing is saved."""
    if not memory.get("save", True):
        return None
    programs = []
    for label, entry in (("search best", best), ("frozen winner", frozen)):
        if entry is None or entry.kind != CANDIDATE or not entry.code_sha256:
            continue  # the identity (seed) is never worth remembering
        path = entry.program_file(run_dir)
        if path.exists() and all(p["sha"] != entry.code_sha256 for p in programs):
            programs.append({"which": label, "sha": entry.code_sha256, "code": path.read_text(),
                             "fitness": entry.fitness, "role": entry.role, "iteration": entry.iteration})
    rules = RuleBook(run_dir, int(memory.get("max_rules", 12))).distill(lineage)
    record = {"fingerprint": key, "schema": dict(schema) if schema else None, "setting": setting,
              "dataset": dataset, "time": time.time(), "run_dir": str(run_dir), "programs": programs,
              "rules": rules}
    path = memory_path(memory)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(record, default=str) + "\n")
    return record


def memory_summary(spec_memory: Mapping[str, Any] | None, saved: dict | None, path: Path | None) -> dict:
    """What the report says about memory: what was reused, what was stored and where."""
    m = spec_memory or {}
    return {"store": str(path) if path else None, "fingerprint": m.get("fingerprint"),
            "reused_runs": m.get("runs", 0), "similarity": m.get("similarity"),
            "skipped_programs": m.get("skipped_programs", 0),
            "reused_programs": [{k: p.get(k) for k in ("which", "sha", "fitness", "run_dir")}
                                for p in m.get("programs") or []],
            "reused_rules": len(m.get("rules") or []),
            "stored": [{k: p.get(k) for k in ("which", "sha", "fitness", "iteration")}
                       for p in (saved or {}).get("programs") or []] if saved else None,
            "stored_rules": len((saved or {}).get("rules") or []) if saved else 0}


def memory_markdown(m: Mapping[str, Any] | None) -> list[str]:
    """What the report says about memory across runs."""
    if not m or not m.get("fingerprint"):
        return []
    lines = ["## Memory across runs", "", f"Dataset fingerprint `{m['fingerprint']}`."]
    if m.get("reused_programs") or m.get("reused_rules"):
        alike = m.get("similarity")
        where = ("" if alike is None or alike >= 1.0 else
                 f" on a similar table (similarity {alike:.2f}: same target, overlapping columns; "
                 f"{m.get('skipped_programs', 0)} stored program(s) left out for naming columns this table lacks)")
        lines.append(f"- Reused (memory.use=true): {len(m['reused_programs'])} program(s) from "
                     f"{m.get('reused_runs', 0)} earlier run(s){where}, proposed first; {m.get('reused_rules', 0)} "
                     "rule(s) in the prompts.")
        for p in m["reused_programs"]:
            lines.append(f"  - `{str(p.get('sha'))[:12]}` ({p.get('which')}, search fitness "
                         f"{float(p.get('fitness') or 0.0):.4f}) from {p.get('run_dir')}")
    else:
        lines.append("- Nothing reused (memory.use=false, or no earlier run on this table).")
    if m.get("stored") is None:
        lines.append("- Nothing stored (memory.save=false).")
    elif not m["stored"]:
        lines.append(f"- Stored {m.get('stored_rules', 0)} rule(s) in `{m.get('store')}`; no program (no candidate "
                     "beat the seed).")
    else:
        which = "; ".join(f"`{str(p.get('sha'))[:12]}` ({p.get('which')}, search fitness "
                          f"{float(p.get('fitness') or 0.0):.4f})" for p in m["stored"])
        lines.append(f"- Stored in `{m.get('store')}`: {which}; {m.get('stored_rules', 0)} rule(s).")
    return lines + [""]


def remember_run(memory: Mapping[str, Any], spec: RunSpec, run_dir: Path, lineage: list[LineageEntry],
                 best: LineageEntry | None, frozen: LineageEntry | None) -> dict:
    """Store the finished run (``memory.save``) and return the report's memory summary."""
    recalled = spec.search.memory
    key = recalled["fingerprint"]
    saved = remember(memory, key, run_dir, spec.setting, spec.dataset.name, lineage,
                     best, frozen, recalled["schema"]) if key else None
    return memory_summary(recalled, saved, memory_path(memory) if saved else None)
