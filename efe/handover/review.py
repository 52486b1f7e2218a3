"""What a reviewer reads before deciding on a frozen program: its diff against the identity, the model card, the report.

Used by ``python -m efe.review``; the decision itself is recorded by :mod:`efe.frozen.review_log`.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from efe.core.resources import seed_program
from efe.handover.model_card import render_card


def identity_source(path: Path, setting: str) -> str:
    """The seed the search started from: the run's own copy, else the bundled identity program."""
    seed = path / "seed_program.py"
    if seed.exists():
        return seed.read_text()
    try:
        bundled = seed_program(setting)
    except (ModuleNotFoundError, ValueError):
        return ""
    return bundled.read_text() if bundled.exists() else ""


def diff_against_identity(path: Path, frozen_dir: Path, setting: str) -> str:
    program = (frozen_dir / "program.py").read_text()
    lines = difflib.unified_diff(identity_source(path, setting).splitlines(), program.splitlines(),
                                 fromfile="identity (seed)", tofile="frozen program", lineterm="")
    return "\n".join(lines) or "(no difference: the frozen program is the identity)"


def _model_card(path: Path, frozen_dir: Path, manifest: dict) -> str:
    if (path / "MODEL_CARD.md").exists():
        return (path / "MODEL_CARD.md").read_text()
    if manifest.get("setting") == "tab" and (path / "spec.json").exists():
        report = json.loads((path / "report.json").read_text()) if (path / "report.json").exists() else {}
        return render_card(manifest, (frozen_dir / "program.py").read_text(), report, path, None)
    return "(no model card: package the run with python -m efe.package to write one)"


def _report(path: Path) -> str:
    report = path / "report.md"
    if not report.exists():
        return "(no report.md)"
    text = report.read_text()
    cut = text.find("## Winning program")
    return text[:cut].rstrip() + "\n\n(the winning program is shown as the diff above)" if cut >= 0 else text


def show(path: Path, frozen_dir: Path) -> str:
    """The whole listing a reviewer reads: header, diff, model card, report."""
    manifest = json.loads((frozen_dir / "manifest.json").read_text())
    setting = str(manifest.get("setting"))
    rule = "=" * 100
    return "\n".join([
        rule, f"Review of {path} ({setting} program for '{manifest.get('dataset')}', program sha256 "
              f"{manifest.get('files', {}).get('program.py', '?')})", rule, "",
        "## Changes against the identity", "", diff_against_identity(path, frozen_dir, setting), "",
        rule, _model_card(path, frozen_dir, manifest), rule, _report(path), rule,
    ])
