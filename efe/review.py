"""``python -m efe.review <run dir | package | frozen dir>``: a human reads the program, then decides.

Shows what the program changes against the identity (a diff), the model card and the report, then
records ``approve`` or ``reject`` with the reviewer's name and a note in the hash-chained review
log next to the manifest (``efe.frozen.review_log``). Without ``decision=`` it asks on a terminal and only
shows otherwise; ``decision=approve reviewer=NAME note=TEXT`` records without asking (CI, tests).
``show=false`` skips the listing. ``efe.load_program(path, require_review=True)`` then refuses the
program unless its latest review approved exactly the files there now.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Sequence

from efe.rundir.paths import frozen_dir_of
from efe.frozen.freeze import FrozenProgramError
from efe.handover.model_card import render_card
from efe.frozen.review_log import (
    DECISIONS,
    ReviewError,
    read_log,
    record,
    review_status,
)

USAGE = ("usage: python -m efe.review <run dir | package dir | frozen dir> "
         "[decision=approve|reject reviewer=NAME note=TEXT] [show=false]")
PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


def identity_source(path: Path, setting: str) -> str:
    """The seed the search started from: the run's own copy, else the bundled identity program."""
    seed = path / "seed_program.py"
    bundled = PROGRAMS / f"{setting}_identity.py"
    return seed.read_text() if seed.exists() else bundled.read_text() if bundled.exists() else ""


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
    manifest = json.loads((frozen_dir / "manifest.json").read_text())
    setting = str(manifest.get("setting"))
    rule = "=" * 100
    return "\n".join([
        rule, f"Review of {path} ({setting} program for '{manifest.get('dataset')}', program sha256 "
              f"{manifest.get('files', {}).get('program.py', '?')})", rule, "",
        "## Changes against the identity", "", diff_against_identity(path, frozen_dir, setting), "",
        rule, _model_card(path, frozen_dir, manifest), rule, _report(path), rule,
    ])


def _ask(prompt: str) -> str:
    print(prompt, end="", flush=True)
    return sys.stdin.readline().strip()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    paths = [a for a in argv if "=" not in a and not a.startswith("-")]
    args = dict(a.split("=", 1) for a in argv if "=" in a)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    if len(paths) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    path = Path(paths[0])
    try:
        frozen_dir = frozen_dir_of(path)
        if args.get("show", "true").lower() not in ("false", "0", "no"):
            print(show(path, frozen_dir))
        print(f"review status: {review_status(path).describe()}")
        decision = args.get("decision")
        if decision is None and sys.stdin.isatty():
            decision = _ask(f"decision ({'/'.join(DECISIONS)}, empty to leave it): ") or None
            if decision is not None:
                args.setdefault("reviewer", _ask("your name: "))
                args.setdefault("note", _ask("note: "))
        if decision is None:
            return 0
        entry = record(path, decision, args.get("reviewer", ""), args.get("note", ""))
    except (ReviewError, FrozenProgramError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"recorded: {entry['decision']} by {entry['reviewer']} (entry {entry['seq']} of "
          f"{len(read_log(frozen_dir))}, hash {entry['hash'][:16]}) in {frozen_dir / 'review_log.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
