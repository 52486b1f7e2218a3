"""Training data from runs (``python -m efe.traces``), plan-first proposals and the judges, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from efe.rundir.records import read_lineage
from efe.traces import main as traces_main
from tests.conftest import ROOT, ratio_table, tab_program
from tests.test_tab_run import GOOD_1, GOOD_2, efe_tab, fenced, only_run

LEAK = tab_program("out = X.copy()\nout['leak'] = (X['label'] == 'yes').astype(float)\nreturn out")
MISSING = tab_program("out = X.copy()\nout['r'] = X['income'] / X['b']\nreturn out")
FAST = ("selection.top_k=1", "report.models=[tree]")
PLAN = "Add log(a/b) from columns a and b: the label depends on their ratio. Keep n1 and n2."


def traces(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "efe.traces", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def keyed_table(n: int = 500, seed: int = 3) -> pd.DataFrame:
    """The ratio table with a unique key per row, so a held-out row cannot hide in a record."""
    frame = ratio_table(n, seed=seed)
    rng = np.random.default_rng(seed)
    frame.insert(0, "key", [f"k{v:012x}" for v in rng.integers(0, 2**48, n)])
    return frame


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("traces")
    csv = tmp / "keyed.csv"
    keyed_table().to_csv(csv, index=False)
    proc = efe_tab(tmp, csv, "llm=offline", "evolution.iterations=5", *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return only_run(tmp)


def test_traces_in_every_format_from_an_offline_run_without_heldout_data(offline_run, tmp_path):
    run = offline_run
    lineage = read_lineage(run / "lineage.jsonl")
    candidates = {e.id: e for e in lineage if e.kind == "candidate"}
    proc = traces(f"run={run}", "format=sft", f"out={tmp_path / 'sft'}.jsonl")   # the command line, once
    assert proc.returncode == 0 and "sft records" in proc.stdout, proc.stderr
    for fmt in ("preference", "reward"):
        assert traces_main([f"run={run}", f"format={fmt}", f"out={tmp_path / fmt}.jsonl"]) == 0
    out = {fmt: read_jsonl(tmp_path / f"{fmt}.jsonl") for fmt in ("sft", "preference", "reward")}

    # every evaluated program, its prompt recovered (the same program from the same prompt counts once)
    shas = {e.code_sha256 for e in candidates.values()}
    assert shas and {candidates[r["metadata"]["id"]].code_sha256 for r in out["reward"]} == shas
    for r in out["reward"]:
        assert r["prompt"][0]["role"] == "system" and r["prompt"][1]["role"] == "user"
        assert "```python" in r["completion"] and isinstance(r["reward"], float)
        assert r["reward"] == candidates[r["metadata"]["id"]].metrics["combined_score"]
        assert r["verdict"] == candidates[r["metadata"]["id"]].verdict
    for r in out["sft"]:
        assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant"]
        meta = r["metadata"]
        assert r["winner"] or meta["fitness"] > meta["parent_fitness"]
    report = json.loads((run / "report.json").read_text())
    if report["winner"]["id"] in candidates:
        assert sum(r["winner"] for r in out["sft"]) == 1
    for r in out["preference"]:
        assert {"prompt", "chosen", "rejected"} <= set(r)
        chosen, rejected = r["metadata"]["chosen"], r["metadata"]["rejected"]
        assert chosen["fitness"] > rejected["fitness"] or rejected["verdict"] != "valid"
        assert r["chosen"][0]["content"] != r["rejected"][0]["content"]

    heldout = pd.read_parquet(run / "data" / "heldout.parquet")
    text = "\n".join((tmp_path / f"{fmt}.jsonl").read_text() for fmt in out)
    leaked = [k for k in heldout["key"] if k in text]
    assert not leaked, f"held-out rows in the traces: {leaked[:3]}"
    train_keys = pd.read_parquet(run / "data" / "train.parquet")["key"]
    assert any(k in text for k in train_keys), "the check above cannot fail: no row key reaches a prompt"
    values = [f"{v:.10g}" for v in heldout[["a", "b", "n1", "n2"]].to_numpy().ravel()]
    assert not [v for v in values if v in text]

    assert traces_main([f"run={run}", f"run={run}", "format=reward", f"out={tmp_path / 'twice.jsonl'}"]) == 0
    assert len(read_jsonl(tmp_path / "twice.jsonl")) == len(out["reward"])


def test_traces_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert traces_main([f"run={tmp_path}", "format=sft", f"out={tmp_path / 'x.jsonl'}"]) == 2
    assert "no lineage.jsonl" in capsys.readouterr().err
    (tmp_path / "lineage.jsonl").write_text("")
    assert traces_main([f"run={tmp_path}", "format=sft", f"out={tmp_path / 'x.jsonl'}"]) == 2
    assert "no proposals.jsonl" in capsys.readouterr().err
    (tmp_path / "proposals.jsonl").write_text("")
    assert traces_main([f"run={tmp_path}", "format=dpo", f"out={tmp_path / 'x.jsonl'}"]) == 2
    assert "format='dpo'" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_rules_judge_rejects_before_evaluation(tmp_path):
    csv = tmp_path / "ratio.csv"
    ratio_table(500, seed=1).to_csv(csv, index=False)
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps([fenced(LEAK), fenced(MISSING), fenced(GOOD_1), fenced(GOOD_2)]))
    proc = efe_tab(tmp_path, csv, "llm=replay", f"llm.path={responses}", "judge=rules", "evolution.iterations=4",
                   *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path)
    lineage = read_lineage(run / "lineage.jsonl")
    rejected = [e for e in lineage if e.verdict == "judge_rejected"]
    assert len(rejected) == 2 and all(e.code_sha256 and "by rules" in e.reason for e in rejected)
    assert all(e.metrics["combined_score"] == 0.0 for e in rejected)
    evaluated = [e for e in lineage if e.kind == "candidate"]
    assert len(evaluated) == 2 and all(e.verdict == "valid" for e in evaluated)
    assert not (run / "outcomes" / f"{rejected[0].code_sha256}.json").exists()
    reasons = " ".join(e.reason for e in rejected)
    assert "judge rejected" not in proc.stderr   # a verdict, not an error on the console
    assert "target column 'label'" in reasons and "income" in reasons
    report = json.loads((run / "report.json").read_text())
    assert report["search"]["judge"]["judged"] == 4 and report["search"]["judge"]["rejected"] == 2
    assert "Judge (rules): 4 proposals judged, 2 rejected" in (run / "report.md").read_text()


def test_plan_first_with_an_llm_judge_that_also_errors(tmp_path):
    from tests.helpers.fake_openai import FakeOpenAI

    judged = []

    def respond(messages: list[dict]) -> str:
        if "You review proposals" in messages[0]["content"]:
            judged.append(messages[-1]["content"])
            # first judge call: unreadable (a judge error); then sound, unsound, sound...
            return ["I would rather not say.", '{"score": 0.9, "reason": "sound"}',
                    '{"score": 0.1, "reason": "vague"}'][min(len(judged) - 1, 1 + (len(judged) % 2))]
        if "Before any code: a plan" in messages[-1]["content"]:
            return PLAN
        assert messages[-2] == {"role": "assistant", "content": PLAN}
        return fenced(GOOD_1)

    csv = tmp_path / "ratio.csv"
    ratio_table(500, seed=1).to_csv(csv, index=False)
    with FakeOpenAI(respond) as server:
        proc = efe_tab(tmp_path, csv, "llm=openai", f"llm.api_base={server.url}",
                       "llm.models=[{name: fake-model, weight: 1}]", "+llm.prices.fake-model={prompt: 1.0, completion: 2.0}",
                       "llm.retries=0", "proposer.plan_first=true", "judge=llm", "judge.threshold=0.5",
                       "evolution.iterations=4", *FAST, "selection.require_gain=false",  # freeze the planned one
                       "selection.pool_fraction=0",  # ...scored on all rows (a tiny pool's folds can rank it below)
                       # the fake answers the same program every time: let the repeats reach the judge
                       "proposer.novelty.enabled=false",
                       env={"OPENAI_API_KEY": "sk-test"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path)
    assert judged and all(PLAN in j for j in judged)   # the judge scores the plan
    proposals = read_jsonl(run / "proposals.jsonl")
    verdicts = [p["judge"] for p in proposals]
    assert all(p["plan"] == PLAN and p["messages"][1]["content"] == PLAN for p in proposals)
    assert any(v["error"] for v in verdicts) and any(not v["passed"] for v in verdicts)
    assert all(v["passed"] for v in verdicts if v["error"])
    assert all(v["prompt_tokens"] == 1000 for v in verdicts)   # an unreadable answer was still paid for
    lineage = read_lineage(run / "lineage.jsonl")
    evaluated = [e for e in lineage if e.kind == "candidate"]
    assert evaluated and all(e.plan == PLAN for e in evaluated)
    assert any(e.verdict == "judge_rejected" for e in lineage)
    summary = json.loads((run / "report.json").read_text())["search"]["judge"]
    assert summary["judge"] == "llm" and summary["errors"] >= 1 and summary["rejected"] >= 1
    assert summary["cost_usd"] > 0
    frozen = (run / "frozen" / "program.py").read_text()
    assert "Plan:" in frozen and "Add log(a/b)" in frozen

    proc = traces(f"run={run}", "format=sft", f"out={tmp_path / 'sft.jsonl'}")
    assert proc.returncode == 0, proc.stderr
    sft = read_jsonl(tmp_path / "sft.jsonl")
    assert sft and [m["role"] for m in sft[0]["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert sft[0]["messages"][2]["content"] == PLAN
