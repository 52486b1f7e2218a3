"""``python -m efe.review <run dir | package | frozen dir>``: a human reads the program, then decides.

Shows what the program changes against the identity (a diff), the model card and the report
(:mod:`efe.handover.review`), then records ``approve`` or ``reject`` with the reviewer's name and
a note in the hash-chained review log next to the manifest (``efe.frozen.review_log``). Without
``decision=`` it asks on a terminal and only shows otherwise; ``decision=approve reviewer=NAME
note=TEXT`` records without asking (CI, tests). ``show=false`` skips the listing (keys:
``conf/review.yaml``). ``efe.load_program(path, require_review=True)`` then refuses the program
unless its latest review approved exactly the files there now. ``review_anchor.json`` names the log's
latest entry, so that entries cut off its end are detected; when ``key_env`` (conf/review.yaml) names
an environment variable holding a reviewer key, decisions and the anchor are signed with it (HMAC)
and only signed approvals count.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from efe.cli.args import Command, flag, run
from efe.frozen.review_log import DECISIONS, read_log, record, review_key, review_status
from efe.handover.review import show
from efe.rundir.paths import frozen_dir_of

COMMAND = Command(
    "review", "<run dir | package dir | frozen dir> [decision=approve|reject reviewer=NAME note=TEXT] [show=false]",
    "Show a frozen program against the identity, with its model card and report; record a decision.",
    required=("path",), positional="path", text_keys=("decision", "reviewer", "note", "key_env"))


def _ask(prompt: str) -> str:
    print(prompt, end="", flush=True)
    return sys.stdin.readline().strip()


def review(cfg) -> int:
    path = Path(str(cfg.path)).expanduser()
    frozen_dir = frozen_dir_of(path)
    if flag(cfg.show):
        print(show(path, frozen_dir))
    key = review_key(str(cfg.key_env or ""))
    print(f"review status: {review_status(path, key).describe()}")
    decision = cfg.decision
    reviewer, note = cfg.reviewer, cfg.note
    if decision is None and sys.stdin.isatty():
        decision = _ask(f"decision ({'/'.join(DECISIONS)}, empty to leave it): ") or None
        if decision is not None:
            reviewer = _ask("your name: ") if reviewer is None else reviewer
            note = _ask("note: ") if note is None else note
    if decision is None:
        return 0
    entry = record(path, str(decision), "" if reviewer is None else str(reviewer), "" if note is None else str(note),
                   key=key)
    signed = f"signed with the key in ${cfg.key_env}" if key is not None else "unsigned: no reviewer key"
    print(f"recorded: {entry['decision']} by {entry['reviewer']} (entry {entry['seq']} of "
          f"{len(read_log(frozen_dir, key))}, hash {entry['hash'][:16]}, {signed}) in "
          f"{frozen_dir / 'review_log.jsonl'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, review, argv)


if __name__ == "__main__":
    sys.exit(main())
