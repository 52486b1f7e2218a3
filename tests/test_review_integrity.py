"""The review log's end and its approvals: truncation is detected, and approvals can be bound to a key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import efe
from efe.frozen.freeze import freeze, input_schema
from efe.frozen.review_log import ReviewError, record
from efe.review import main as review
from tests.conftest import tab_program

X = pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [2.0, 1.0, 8.0]})
KEY_ENV = "EFE_REVIEW_KEY"  # conf/review.yaml key_env


@pytest.fixture
def frozen(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv(KEY_ENV, raising=False)
    source = tab_program("out = X.copy()\nout['ratio'] = X['a'] / X['b']\nreturn out")
    return freeze(tmp_path / "frozen", "tab", source, {"scale": np.array([1.0])}, schema=input_schema(X),
                  output_columns=["a", "b", "ratio"])


def decide(frozen: Path, decision: str, reviewer: str) -> None:
    assert review([str(frozen), f"decision={decision}", f"reviewer={reviewer}", "show=false"]) == 0


def test_removing_the_last_entries_of_the_log_is_detected(frozen):
    decide(frozen, "approve", "Ada")
    efe.load_program(frozen, require_review=True)
    decide(frozen, "reject", "Bob")
    log = frozen / "review_log.jsonl"
    lines = log.read_text().splitlines()
    log.write_text(lines[0] + "\n")  # the reject line deleted: the chain alone still holds
    with pytest.raises(ReviewError, match="ends at entry 1 but its anchor names entry 2: entries were removed"):
        efe.load_program(frozen, require_review=True)
    log.unlink()  # the whole log gone, the anchor left
    with pytest.raises(ReviewError, match="ends at entry 0 but its anchor names entry 2"):
        efe.load_program(frozen, require_review=True)


def test_with_a_reviewer_key_only_signed_approvals_count(frozen, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, "the reviewer's secret")
    decide(frozen, "approve", "Ada")
    assert "signed with the key" in capsys.readouterr().out
    efe.load_program(frozen, require_review=True)
    decide(frozen, "reject", "Bob")

    # the public record() without the key: an unsigned approval (and anchor) does not count
    monkeypatch.delenv(KEY_ENV)
    record(frozen, "approve", "Mallory")
    efe.load_program(frozen, require_review=True)  # without a key configured, the reader cannot tell
    monkeypatch.setenv(KEY_ENV, "the reviewer's secret")
    with pytest.raises(ReviewError, match="not signed with the reviewer key"):
        efe.load_program(frozen, require_review=True)

    # cut back to the approval and rewrite the anchor to match: without the key its HMAC cannot be made
    log, anchor = frozen / "review_log.jsonl", frozen / "review_anchor.json"
    first = log.read_text().splitlines()[0]
    log.write_text(first + "\n")
    anchor.write_text(json.dumps({"entries": 1, "head": json.loads(first)["hash"], "mac": "0" * 64}))
    with pytest.raises(ReviewError, match="anchor .* is not signed with the reviewer key"):
        efe.load_program(frozen, require_review=True)
    monkeypatch.setenv(KEY_ENV, "another key")
    with pytest.raises(ReviewError, match="not signed with the reviewer key"):
        efe.load_program(frozen, require_review=True)
