"""Roles, novelty and memory through ``python -m efe.tab``: the LLM path (local fake server, replay)
and two offline runs sharing a memory store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from efe.core.programs import code_hash
from efe.rundir.records import read_lineage
from efe.proposer.tab_roles import ROLE_KINDS
from tests.conftest import IDENTITY_TAB, ratio_table
from tests.helpers.fake_openai import FakeOpenAI
from tests.test_tab_run import GOOD_1, GOOD_2, efe_tab, fenced, only_run

FAST = ("selection.top_k=0", "report.models=[tree]", "evolution.openevolve.evaluator.parallel_evaluations=1")
# the identity seed, reformatted and re-commented: a near-duplicate of an evaluated program
IDENTITY_AGAIN = IDENTITY_TAB.replace("# EVOLVE-BLOCK-START", "# EVOLVE-BLOCK-START\n# my idea: change nothing\n\n")


@pytest.fixture(scope="module")
def ratio_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "ratio.csv"
    ratio_table(500, seed=1).to_csv(path, index=False)
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_llm_path_shows_the_role_in_the_prompt_and_the_lineage(tmp_path, ratio_csv):
    answers = iter([GOOD_1, GOOD_2, GOOD_1.replace("log_ratio", "lr")])
    with FakeOpenAI(lambda messages: fenced(next(answers, GOOD_2))) as server:
        proc = efe_tab(tmp_path, ratio_csv, "llm=openai", f"llm.api_base={server.url}",
                       "llm.models=[{name: fake-model, weight: 1}]", "llm.retries=0", "evolution.iterations=3",
                       "proposer.router=thompson", *FAST, env={"OPENAI_API_KEY": "sk-test"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path)
    prompts = [r["messages"][-1]["content"] for r in server.requests]
    asked = [p.split("# Your role this iteration: ")[1].split("\n")[0] for p in prompts]
    assert len(asked) == 3 and set(asked) <= set(ROLE_KINDS)
    assert all(f"### role\n```\n{role}\n```" in p for p, role in zip(prompts, asked))
    lineage = read_lineage(run / "lineage.jsonl")
    assert all("role" in line for line in read_jsonl(run / "lineage.jsonl"))  # every line on disk names one
    assert [e.role for e in lineage if e.kind == "seed"] == ["seed"]
    candidates = [e for e in lineage if e.kind == "candidate"]
    assert candidates and all(e.role in asked for e in candidates)
    proposals = {p["code_sha256"]: p for p in read_jsonl(run / "proposals.jsonl")}
    assert all(proposals[e.code_sha256]["role"] == e.role for e in candidates)
    report = json.loads((run / "report.json").read_text())
    assert report["steering"]["router"] == "thompson"
    assert sum(r["tries"] for r in report["steering"]["roles"]) == len(candidates)
    assert "## Proposer roles" in (run / "report.md").read_text()


def test_near_duplicate_is_rejected_unevaluated_and_a_second_run_starts_from_the_first_runs_winner(
        tmp_path, ratio_csv):
    # first run (replayed LLM): a reformatted identity, then two real programs
    store = tmp_path / "memory.jsonl"
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps([fenced(IDENTITY_AGAIN), fenced(GOOD_2), fenced(GOOD_1)]))
    first = efe_tab(tmp_path / "one", ratio_csv, "llm=replay", f"llm.path={responses}", "evolution.iterations=3",
                    f"memory.path={store}", *FAST)
    assert first.returncode == 0, first.stderr[-3000:]
    run1 = only_run(tmp_path / "one")
    lineage1 = read_lineage(run1 / "lineage.jsonl")
    rejected = [e for e in lineage1 if e.verdict == "duplicate_rejected"]
    assert len(rejected) == 1 and rejected[0].kind == "no_program" and rejected[0].role in ROLE_KINDS
    sha = rejected[0].code_sha256
    seed = next(e for e in lineage1 if e.kind == "seed")
    assert "repeats evaluated program " + seed.code_sha256[:12] in rejected[0].reason
    assert not (run1 / "outcomes" / f"{sha}.json").exists()         # never evaluated
    candidates = [e for e in lineage1 if e.kind == "candidate"]
    assert len(candidates) == 2 and sha not in {e.code_sha256 for e in candidates}
    report1 = json.loads((run1 / "report.json").read_text())
    assert report1["steering"]["novelty"] == {"duplicates_caught": 1, "iterations_rejected": 1}
    assert "1 proposal(s) repeated an evaluated program" in (run1 / "report.md").read_text()
    # a quiet console: the rejection is a verdict, kept in the run's logs and counted by the progress line
    assert not [line for line in first.stderr.splitlines() if "openevolve" in line or "duplicate rejected" in line]
    assert "1 duplicates rejected" in first.stderr
    assert "duplicate rejected [" in (run1 / "evolution" / "logs" / "openevolve.log").read_text()
    assert "duplicate rejected [" in (run1 / "efe.log").read_text()

    best1 = max((e for e in lineage1 if e.metrics.get("valid") == 1.0), key=lambda e: e.metrics["combined_score"])
    assert best1.kind == "candidate", "the first run found nothing better than the identity"
    stored = read_jsonl(store)
    assert len(stored) == 1 and stored[0]["programs"][0]["which"] == "search best"
    assert stored[0]["programs"][0]["sha"] == best1.code_sha256 and stored[0]["rules"]

    # second run (offline proposer) with memory.use=true: the first run's winner is its first iteration
    second = efe_tab(tmp_path / "two", ratio_csv, "llm=offline", "evolution.iterations=2", "memory.use=true",
                     f"memory.path={store}", *FAST)
    assert second.returncode == 0, second.stderr[-3000:]
    run2 = only_run(tmp_path / "two")
    lineage2 = read_lineage(run2 / "lineage.jsonl")
    first_iteration = [e for e in lineage2 if e.kind == "candidate" and e.iteration == 1]
    assert [e.role for e in first_iteration] == ["memory"]
    assert first_iteration[0].code_sha256 == code_hash((run1 / "programs" / f"{best1.code_sha256}.py").read_text())
    assert first_iteration[0].metrics["combined_score"] >= best1.metrics["combined_score"]
    prompts = [p["messages"][-1]["content"] for p in read_jsonl(run2 / "proposals.jsonl") if p.get("messages")]
    assert prompts and all("[earlier run]" in p for p in prompts)
    md = (run2 / "report.md").read_text()
    assert "## Memory across runs" in md and "Reused (memory.use=true): 1 program(s) from 1 earlier run(s)" in md
    assert len(read_jsonl(store)) == 2


def test_a_novelty_rejection_is_logged_as_a_rejection_not_as_an_llm_failure(tmp_path, ratio_csv):
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps([fenced(IDENTITY_AGAIN)]))
    proc = efe_tab(tmp_path, ratio_csv, "llm=replay", f"llm.path={responses}", "evolution.iterations=1", *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path)
    log = (run / "efe.log").read_text()
    for text in (proc.stderr, log):
        assert "LLM generation failed" not in text and "Iteration 1 error" not in text, text[-3000:]
    assert "openevolve.process_parallel INFO: Iteration 1 rejected: duplicate rejected [" in log
    assert "openevolve.process_parallel INFO: proposal rejected: duplicate rejected [" in log
    [rejected] = [e for e in read_lineage(run / "lineage.jsonl") if e.kind == "no_program"]
    assert rejected.verdict == "duplicate_rejected"
    assert rejected.reason.startswith("duplicate rejected ["), rejected.reason
