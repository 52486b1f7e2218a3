"""``python -m efe.tab`` end to end: replayed LLM, offline proposer, resume, budgets, OpenAI path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from efe.rundir.records import read_lineage
from efe.tab.selection import design_z
from tests.conftest import NO_PLOTS, ROOT, ratio_table, scale_ratio_table, tab_program
from tests.helpers.fake_openai import FakeOpenAI
from tests.helpers.frozen_check import reload_and_transform

GOOD_1 = tab_program("out = X.copy()\nout['log_ratio'] = np.log(X['a'] / X['b'])\nreturn out")
GOOD_2 = tab_program("out = X.copy()\nout['ratio'] = X['a'] / X['b']\nout['log_a'] = np.log(X['a'])\nreturn out")
SYNTAX = "```python\n# EVOLVE-BLOCK-START\nimport numpy as np\ndef broken(:\n    pass\n# EVOLVE-BLOCK-END\n```"
GATE = tab_program("return X.assign(centred=X['a'] - X['a'].mean())")
MALICIOUS = tab_program("import os\nos.system('touch /tmp/efe-owned')\nreturn X")


def fenced(source: str) -> str:
    return f"Here is my program.\n```python\n{source}\n```\n"


@pytest.fixture(scope="module")
def ratio_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "ratio.csv"
    ratio_table(600, seed=1).to_csv(path, index=False)
    return path


def efe_tab(tmp_path: Path, csv: Path, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={csv}", "dataset.target=label",
            "dataset.description=synthetic: the label depends on a/b", f"runs_root={tmp_path / 'runs'}",
            "scorer=tree", f"llm.cache_dir={tmp_path / 'cache'}", "report.models=[lightgbm,tree]",
            "evolution.openevolve.checkpoint_interval=2", NO_PLOTS, *overrides]
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("EFE_LLM_API_BASE", None)
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env=full_env)


def only_run(tmp_path: Path) -> Path:
    runs = list((tmp_path / "runs" / "tab").glob("*/*"))
    assert len(runs) == 1, runs
    return runs[0]


def test_replayed_run_records_every_candidate_and_freezes_a_reloadable_winner(tmp_path, ratio_csv):
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps([SYNTAX, fenced(GATE), fenced(MALICIOUS), fenced(GOOD_1), fenced(GOOD_2)]))
    proc = efe_tab(tmp_path, ratio_csv, "llm=replay", f"llm.path={responses}", "evolution.iterations=5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "iter " in proc.stderr and "ETA" in proc.stderr
    run = only_run(tmp_path)
    lineage = read_lineage(run / "lineage.jsonl")
    candidates = [e for e in lineage if e.kind == "candidate"]
    assert len(candidates) == 5 and [e for e in lineage if e.kind == "seed"]
    verdicts = sorted(e.verdict for e in candidates)
    assert "invalid:syntax" in verdicts and "invalid:forbidden" in verdicts
    assert "invalid:gate:batch_dependence" in verdicts
    assert verdicts.count("valid") == 2
    for e in candidates:
        assert e.parent and e.island is not None and e.iteration >= 1
        assert {"combined_score", "generated_feature_count", "valid"} <= set(e.metrics)
    good = [e for e in candidates if e.verdict == "valid"]
    assert all(e.metrics["delta_auc"] > 0 for e in good)
    assert not Path("/tmp/efe-owned").exists()

    report = json.loads((run / "report.json").read_text())
    assert not (run / "plots").exists() and not report["plots"]  # report.plots=false (NO_PLOTS)
    finalists = report["finalists"]
    assert {f["kind"] for f in finalists} == {"seed", "candidate"} and len(finalists) == 3
    chosen = next(f for f in finalists if f["id"] == report["winner"]["id"])
    candidates_fresh = [f["fresh_fitness"] for f in finalists if f["valid"] and f["kind"] == "candidate"]
    sel = report["selection"]
    n_tried = sum(1 for f in finalists if f["kind"] == "candidate")
    z_first, z_later = design_z(2.0, n_tried, sel["multiplicity"], sel["fallback_share"])
    assert sel["n_tried"] == n_tried and sel["confidence_z"] == pytest.approx(z_first)
    if sel["multiplicity"] == "bonferroni":
        assert sel["confidence_z"] > sel["confidence_z_single"] == 2.0  # two finalists tried: a wider bound
    if sel["multiplicity"] == "fallback":  # the search's first at most of one test's level, the other at the rest
        assert 2.0 < z_first < z_later and sel["confidence_z_later"] == pytest.approx(z_later)
    for f in finalists:
        assert f["z"] in (pytest.approx(z_first), pytest.approx(z_later))
        assert f["fresh_lower_bound"] == pytest.approx(f["fresh_delta_auc"] - f["z"] * f["fresh_delta_auc_se"])
    if sel["verdict"] == "gain confirmed on the selection pool":
        assert chosen["fresh_lower_bound"] > 0
        if sel["multiplicity"] == "bonferroni":  # the pool picks the best
            assert chosen["fresh_fitness"] == max(candidates_fresh)
    else:
        assert chosen["kind"] == "seed"
    markdown = (run / "report.md").read_text()
    assert "## Final selection" in markdown
    # the report names the design and the smallest gain it could have confirmed on this table
    assert f"Selection design (selection.multiplicity={sel['multiplicity']})" in markdown
    assert sel["min_detectable_delta"] == pytest.approx(sel["confidence_z"] * sel["pool_se"])
    assert f"Smallest gain it could have confirmed on this table: ΔAUC above {sel['min_detectable_delta']:.4f}" in markdown
    assert {r["model"] for r in report["heldout"]} == {"lightgbm", "tree"}
    assert (run / "report.md").read_text().count("| tree |") == 1
    manifest = json.loads((run / "frozen" / "manifest.json").read_text())
    assert manifest["input_schema"][0]["name"] == "a" and "program.py" in manifest["files"]

    heldout = pd.read_parquet(run / "data" / "heldout.parquet").drop(columns=["label"])
    reproduced, in_sandbox = reload_and_transform(run, heldout)
    pd.testing.assert_frame_equal(reproduced, in_sandbox)
    assert list(reproduced.columns) == manifest["output_columns"]
    ledger = [json.loads(l) for l in (run / "llm.jsonl").read_text().splitlines()]
    assert len(ledger) == 5 and all(e["model"] == "replay" for e in ledger)


def test_offline_proposer_beats_identity_on_a_ratio_table(tmp_path):
    """a and b share a random scale, so only a ratio (or difference) of them carries the label: the
    held-out gain is large enough (about 0.79 -> 0.97 tree AUC) that trajectory noise cannot hide it."""
    csv = tmp_path / "scale_ratio.csv"
    scale_ratio_table(800, seed=1).to_csv(csv, index=False)
    # the interactions role only (ratio, product, diff), and a deterministic search (this seed proposes the
    # ratio at iterations 2, 5 and 8): this test is about confirming and reporting a real gain, not about
    # the router or the luck of a parallel search
    proc = efe_tab(tmp_path, csv, "llm=offline", "evolution.iterations=8", "proposer.roles=[interactions]",
                   "evolution.deterministic=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "offline proposer" in proc.stderr
    run = only_run(tmp_path)
    report = json.loads((run / "report.json").read_text())
    assert report["winner"]["fitness"] > 0.5
    assert report["winner"]["delta_auc"] > 0.0
    tree = next(r for r in report["heldout"] if r["model"] == "tree")
    assert tree["auc_efe"] > tree["auc_no_fe"] + 0.05
    # the gain was confirmed on the selection pool (150 of the 600 training rows, never scored by the
    # search), and the held-out gain (search scorer: tree) lies inside the interval the report states for
    # it (the selection estimate ± its noise and the held-out part's, combined)
    assert report["selection"]["verdict"] == "gain confirmed on the selection pool"
    assert report["selection"]["pool_rows"] == 150
    est = report["estimates"]
    assert not est["frozen_is_identity"] and est["fresh"]["low"] > 0
    held_tree = next(h for h in est["heldout"] if h["model"] == "tree")
    assert held_tree["inside_expected"] and held_tree["expected"]["low"] <= tree["delta"] <= held_tree["expected"]["high"]
    md = (run / "report.md").read_text()
    assert "## How sure is the gain?" in md and "| selection pool (training rows the search never scored) |" in md
    cost = report["search_cost"]
    assert 0 < cost["full_scoring_fraction"] <= 1 and cost["mean_folds"] <= cost["max_folds"]


def test_pure_noise_label_freezes_the_identity_and_says_no_gain(tmp_path):
    rng = np.random.default_rng(3)
    n = 500
    frame = pd.DataFrame({"a": rng.lognormal(0, 1, n), "b": rng.lognormal(0, 1, n), "c": rng.normal(size=n),
                          "d": rng.integers(0, 5, n), "label": rng.choice(["yes", "no"], n)})
    csv = tmp_path / "noise.csv"
    frame.to_csv(csv, index=False)
    proc = efe_tab(tmp_path, csv, "llm=offline", "evolution.iterations=12", "dataset.description=pure noise",
                   "evolution.deterministic=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path)
    report = json.loads((run / "report.json").read_text())
    assert report["selection"]["verdict"] == "no program beat doing nothing"
    assert report["winner"]["kind"] == "seed" and report["estimates"]["frozen_is_identity"]
    assert all(r["delta"] == 0.0 for r in report["heldout"])
    assert (run / "frozen" / "program.py").read_text().strip() == (ROOT / "programs" / "tab_identity.py").read_text().strip()
    md = (run / "report.md").read_text()
    assert "no program beat doing nothing" in md and "No gain was found" in md


def test_resume_continues_from_the_last_checkpoint(tmp_path, ratio_csv):
    first = efe_tab(tmp_path, ratio_csv, "llm=offline", "evolution.iterations=4")
    assert first.returncode == 0, first.stderr[-3000:]
    run = only_run(tmp_path)
    before = read_lineage(run / "lineage.jsonl")
    second = subprocess.run([sys.executable, "-m", "efe.tab", f"resume={run}", "evolution.iterations=8"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stderr
    after = read_lineage(run / "lineage.jsonl")
    assert len(after) > len(before)
    assert max(e.iteration for e in after) > max(e.iteration for e in before)
    assert len([e for e in after if e.kind == "seed"]) == 1
    assert json.loads((run / "report.json").read_text())["search"]["iterations"] == 8
    assert len(list((tmp_path / "runs" / "tab").glob("*/*"))) == 1


def test_call_budget_stops_the_search_and_still_freezes(tmp_path, ratio_csv):
    proc = efe_tab(tmp_path, ratio_csv, "llm=offline", "llm.max_calls=3", "evolution.iterations=30")
    assert proc.returncode == 3, proc.stderr[-3000:]  # the exit status of a search stopped by a budget
    run = only_run(tmp_path)
    report = json.loads((run / "report.json").read_text())
    assert "cap" in report["search"]["stop_reason"]
    assert report["search"]["status"] == "stopped by budget"
    assert report["search"]["llm_calls"] == 3
    assert report["search"]["iterations_done"] < 30
    assert (run / "frozen" / "program.py").exists()


def test_openai_backend_against_a_local_server_with_cache_and_ledger(tmp_path, ratio_csv):
    with FakeOpenAI(lambda messages: fenced(GOOD_1)) as server:
        common = ["llm=openai", f"llm.api_base={server.url}", "llm.models=[{name: fake-model, weight: 1}]",
                  "+llm.prices.fake-model={prompt: 1.0, completion: 2.0}", "evolution.iterations=2",
                  "llm.retries=0"]
        proc = efe_tab(tmp_path, ratio_csv, *common, env={"OPENAI_API_KEY": "sk-test"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        first_calls = len(server.requests)
        assert first_calls >= 1
        assert server.requests[0]["model"] == "fake-model"
        system = server.requests[0]["messages"][0]["content"]
        assert "Fitness" in system and "label" in system and "sqrt" in system
        run = only_run(tmp_path)
        ledger = [json.loads(l) for l in (run / "llm.jsonl").read_text().splitlines()]
        paid = [e for e in ledger if not e["cache_hit"]]
        assert paid and all(e["prompt_tokens"] == 1000 and e["completion_tokens"] == 200 for e in paid)
        assert abs(paid[0]["cost_usd"] - (1000 * 1.0 + 200 * 2.0) / 1e6) < 1e-12
        assert "sk-test" not in (run / "spec.json").read_text() + (run / "config.yaml").read_text()

        again = efe_tab(tmp_path / "again", ratio_csv, *common[:-1], "llm.retries=0",
                        f"llm.cache_dir={tmp_path / 'cache'}", env={"OPENAI_API_KEY": "sk-test"})
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(server.requests) == first_calls, "the cached re-run called the endpoint again"
        run2 = only_run(tmp_path / "again")
        ledger2 = [json.loads(l) for l in (run2 / "llm.jsonl").read_text().splitlines()]
        assert ledger2 and all(e["cache_hit"] for e in ledger2)
