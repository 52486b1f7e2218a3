"""What efe relies on in openevolve, pinned in one place (``efe.search.openevolve_adapter``).

A new openevolve version that moves a private method, changes ``database.add``, rewords the
"Iteration N error" warning or the checkpoint layout fails here, by name, before a search does.
The last test drives openevolve itself for a few iterations with a fake model.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import signal
from importlib.metadata import version

import openevolve
import pytest
from openevolve import process_parallel
from openevolve.controller import OpenEvolve
from openevolve.database import Program, ProgramDatabase
from openevolve.evaluation_result import EvaluationResult
from openevolve.llm.base import LLMInterface
from openevolve.llm.ensemble import LLMEnsemble
from openevolve.llm.openai import OpenAILLM
from openevolve.population import PopulationStrategy, ProgramState

from efe.llm.ledger import Ledger
from efe.search import openevolve_adapter as oe
from efe.search.progress import Progress
from efe.search.lineage import LineageRecorder
from efe.rundir.records import LineageEntry, read_lineage
from tests.helpers import oe_fake


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_the_installed_openevolve_is_the_version_the_adapter_was_read_from():
    assert openevolve.__version__ == oe.OPENEVOLVE_VERSION == oe.installed_version()
    assert version("openevolve") == oe.OPENEVOLVE_VERSION


def test_the_private_members_the_adapter_uses_exist_with_their_signatures():
    assert _params(OpenEvolve._setup_logging) == ["self"]
    assert _params(OpenEvolve._save_checkpoint) == ["self", "iteration"]
    init = inspect.signature(OpenEvolve.__init__).parameters
    assert {"initial_program_path", "evaluation_file", "config", "output_dir", "population_strategy"} <= set(init)
    assert {"iterations", "checkpoint_path"} <= set(inspect.signature(OpenEvolve.run).parameters)
    add = inspect.signature(ProgramDatabase.add).parameters
    assert list(add) == ["self", "program", "iteration", "target_island"]
    assert add["iteration"].default is None and add["target_island"].default is None
    assert {"iteration_found", "metadata", "code", "parent_id"} <= set(Program.__dataclass_fields__)
    assert callable(process_parallel.ProcessParallelController.request_shutdown)
    assert set(PopulationStrategy.__dataclass_fields__) >= {"admit"}
    assert {"id", "code", "metrics", "generation", "parent_id", "metadata"} == set(ProgramState.__dataclass_fields__)


def _worker_signal_handlers() -> tuple:
    return str(signal.getsignal(signal.SIGTERM)), str(signal.getsignal(signal.SIGINT))


def _started(path: str) -> None:
    with open(path, "w") as out:
        out.write("initialised")


def test_the_search_pool_s_workers_leave_sigint_and_sigterm_to_the_search(tmp_path):
    """openevolve installs a SIGTERM handler that logs before it forks its pool: a worker terminated
    mid-log printed a logging traceback (the flaky breaker test of issue 28)."""
    assert "initializer" in inspect.getsource(process_parallel.ProcessParallelController.start)
    assert "ProcessPoolExecutor(**executor_kwargs)" in inspect.getsource(process_parallel.ProcessParallelController.start)
    previous = signal.signal(signal.SIGTERM, lambda *_: logging.getLogger("efe").info("handler ran"))
    try:
        with oe.worker_pool():
            assert process_parallel.ProcessPoolExecutor is oe.WorkerPool
            marker = tmp_path / "init"
            with process_parallel.ProcessPoolExecutor(max_workers=1, initializer=_started,
                                                      initargs=(str(marker),)) as pool:
                term, interrupt = pool.submit(_worker_signal_handlers).result(timeout=60)
                assert marker.read_text() == "initialised"  # openevolve's own initializer still runs
                proc = next(iter(pool._processes.values()))
                proc.terminate()
                proc.join(timeout=1)
                assert proc.is_alive()  # finishes what it is doing; openevolve kills it a second later
                proc.kill()
        assert process_parallel.ProcessPoolExecutor is not oe.WorkerPool
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (term, interrupt) == (str(signal.SIG_IGN), str(signal.SIG_IGN))


def test_the_public_classes_efe_llm_and_the_evaluators_build_on():
    """Kept outside the adapter by the import rules (the LLM layer and evaluators never import the search)."""
    assert inspect.isabstract(LLMInterface)
    assert {"generate", "generate_with_context"} <= set(LLMInterface.__abstractmethods__)
    assert "last_usage" in inspect.getsource(OpenAILLM.__init__)  # efe reads the SDK's token counts from it
    result = EvaluationResult(metrics={"combined_score": 0.5}, artifacts={"reason": "x"})
    assert result.metrics == {"combined_score": 0.5} and result.artifacts == {"reason": "x"}
    # the ensemble hands the sampled model's ``last_usage`` to the iteration (efe's ledger and token counts)
    assert 'getattr(model, "last_usage", None)' in inspect.getsource(LLMEnsemble.generate_with_context)


def test_the_iteration_error_line_is_the_one_openevolve_logs():
    source = inspect.getsource(process_parallel)
    assert 'f"Iteration {completed_iteration} error: {result.error}{token_str}"' in source
    assert 'token_str = f" | tokens: {tt} (prompt: {pt}, completion: {ct})"' in source
    assert process_parallel.logger.name == oe.PROCESS_LOGGER
    assert oe.parse_iteration_error("Iteration 7 error: LLM generation failed: boom") == (
        7, "LLM generation failed: boom")
    assert oe.parse_iteration_error("Iteration 3 error: No valid code found | tokens: 10 (prompt: 7, completion: 3)"
                                    ) == (3, "No valid code found")
    assert oe.parse_iteration_error("Iteration 3: Program abc (parent: def) completed") is None


def test_the_checkpoint_layout(tmp_path):
    root = tmp_path / "evolution" / "checkpoints"
    for n, complete in ((2, True), (10, True), (12, False)):
        (root / f"checkpoint_{n}").mkdir(parents=True)
        if complete:
            (root / f"checkpoint_{n}" / "metadata.json").write_text("{}")
    (root / "checkpoint_x").mkdir()
    latest = oe.latest_checkpoint(tmp_path / "evolution")
    assert latest.name == "checkpoint_10" and oe.checkpoint_iteration(latest) == 10
    assert oe.latest_checkpoint(tmp_path / "nowhere") is None
    assert 'f"checkpoint_{iteration}"' in inspect.getsource(OpenEvolve._save_checkpoint)
    saved = inspect.getsource(ProgramDatabase.save)
    assert '"island_feature_maps"' in saved and '"last_iteration"' in saved and "metadata.json" in saved


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Four iterations of openevolve with a fake model whose second call fails, through the adapter."""
    tmp_path = tmp_path_factory.mktemp("oe")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OE_FAKE_DIR", str(tmp_path))
        mp.setenv("OE_FAKE_FAIL", "2")
        return _run(tmp_path)


def _run(tmp_path):
    (tmp_path / "seed.py").write_text(oe_fake.SEED)
    (tmp_path / "evaluator.py").write_text(oe_fake.EVALUATOR)
    config = oe.config_from_dict({
        "max_iterations": 4, "checkpoint_interval": 2, "random_seed": 0, "log_level": "INFO",
        "log_dir": str(tmp_path / "logs"), "diff_based_evolution": False, "language": "python",
        "llm": {"models": [{"name": "fake", "weight": 1.0, "init_client": oe_fake.fake_client}],
                "evaluator_models": [], "retries": 0, "retry_delay": 0},
        "database": {"num_islands": 1, "population_size": 20, "archive_size": 10},
        "evaluator": {"parallel_evaluations": 1, "cascade_evaluation": False, "timeout": 60},
    })
    recorder = LineageRecorder(tmp_path / "lineage.jsonl", tmp_path / "outcomes")
    iterations: list[int] = []

    def set_iteration(i: int) -> None:
        iterations.append(i)
        recorder.set_iteration(i)

    root_handlers = list(logging.getLogger().handlers)
    controller = oe.make_controller(tmp_path / "seed.py", tmp_path / "evaluator.py", config, tmp_path / "evolution",
                                    recorder.admit)
    oe.track_iterations(controller, set_iteration)
    errors = oe.IterationErrors(recorder.no_program)
    errors.attach()
    try:
        oe.run_controller(controller, 4, None)
    finally:
        errors.detach()
    new_root_handlers = [h for h in logging.getLogger().handlers if h not in root_handlers]
    oe.save_checkpoint(controller)
    return {"dir": tmp_path, "controller": controller, "iterations": iterations,
            "lineage": read_lineage(tmp_path / "lineage.jsonl"), "root_handlers": new_root_handlers}


def test_a_real_run_feeds_the_lineage_what_it_expects(tiny_run):
    lineage = tiny_run["lineage"]
    seed = [e for e in lineage if e.kind == "seed"]
    children = [e for e in lineage if e.kind == "candidate"]
    failed = [e for e in lineage if e.kind == "no_program"]
    # the wrapped database.add: the seed arrives with its iteration_found (0), children with theirs
    assert len(seed) == 1 and seed[0].iteration == 0 and seed[0].parent is None
    assert tiny_run["iterations"][0] == 0
    assert sorted(e.iteration for e in children) == sorted(i for i in tiny_run["iterations"] if i > 0)
    # the admission hook saw each program's fields; every child descends from a logged program
    ids = {e.id for e in seed + children}
    assert all(e.parent in ids for e in children)
    assert all(e.metrics["combined_score"] > 0.5 for e in children)
    # the failed call became one "Iteration N error" line, parsed into a no_program entry
    assert len(failed) == 1 and "fake endpoint down on call 2" in failed[0].reason
    assert sorted(e.iteration for e in children + failed) == [1, 2, 3, 4]
    assert oe.last_iteration(tiny_run["controller"]) == max(e.iteration for e in children)


def test_a_real_run_logs_to_its_file_and_checkpoints_where_efe_reads(tiny_run):
    run_dir = tiny_run["dir"]
    assert not tiny_run["root_handlers"]  # openevolve's own _setup_logging would add console + file handlers
    assert "Iteration" in (run_dir / "logs" / oe.LOG_FILE).read_text()
    latest = oe.latest_checkpoint(run_dir / "evolution")
    assert latest is not None and oe.checkpoint_iteration(latest) == oe.last_iteration(tiny_run["controller"])
    meta = json.loads((latest / "metadata.json").read_text())
    assert meta["last_iteration"] == oe.checkpoint_iteration(latest)
    maps = oe.island_feature_maps(meta)
    assert len(maps) == 1 and maps[0]
    ids = {e.id for e in tiny_run["lineage"] if e.kind in ("seed", "candidate")}
    assert set(maps[0].values()) <= ids
    assert all(all(part.isdigit() for part in key.split("-")) for key in maps[0])


def test_a_rejected_proposal_stays_off_the_console_and_the_progress_line_counts_it(tmp_path):
    """openevolve logs a duplicate as an ERROR (worker) and a WARNING (``Iteration N error``): both reach
    the run's log files only; any other record of openevolve still reaches the console."""
    console_text = io.StringIO()
    console = logging.StreamHandler(console_text)
    log_file = logging.FileHandler(tmp_path / "efe.log")
    root = logging.getLogger()
    logger = logging.getLogger("openevolve.efe_test")
    logger.propagate = False
    forward = oe.RunLogs()
    logger.addHandler(forward)
    root.addHandler(console)
    root.addHandler(log_file)
    duplicate = ("duplicate rejected [" + "a" * 64 + "]: repeats evaluated program bbbbbbbbbbbb (novelty check)")
    try:
        logger.error(f"LLM generation failed: {duplicate}")
        logger.warning(f"Iteration 3 error: LLM generation failed: {duplicate}")
        logger.warning("Iteration 4 error: LLM generation failed: connection refused")
    finally:
        root.removeHandler(console)
        root.removeHandler(log_file)
        logger.removeHandler(forward)
        log_file.close()
    assert "duplicate" not in console_text.getvalue() and "connection refused" in console_text.getvalue()
    assert (tmp_path / "efe.log").read_text().count("duplicate rejected [") == 2

    stream = io.StringIO()
    progress = Progress(10, Ledger(tmp_path), stream=stream)
    progress.on_entry(LineageEntry.from_dict({"kind": "no_program", "iteration": 3, "verdict": "duplicate_rejected"}))
    progress.on_entry(LineageEntry.from_dict({"kind": "no_program", "iteration": 4, "verdict": "judge_rejected"}))
    assert "1 duplicates rejected | 1 rejected by the judge" in progress.line()


def test_evaluations_lost_to_the_cluster_in_a_row_trip_the_infrastructure_breaker(tmp_path):
    """``executor.max_consecutive_failures`` lost evaluations in a row stop the search (exit status 5),
    the way ``llm.max_consecutive_failures`` does for the LLM; a real evaluation between them resets the count."""
    from efe.search.status import EXIT_STATUS, exit_status, search_status

    def candidate(i: int, verdict: str) -> LineageEntry:
        return LineageEntry.from_dict({"kind": "candidate", "iteration": i, "verdict": verdict,
                                       "reason": "infrastructure failure: the Ray worker was lost 3 time(s)"
                                       if verdict == "invalid:infrastructure" else None, "metrics": {}})

    stopped: list[str] = []
    progress = Progress(10, Ledger(tmp_path), stream=io.StringIO(), max_infra_failures=2)
    progress.start(stopped.append)
    try:
        for i, verdict in enumerate(["invalid:infrastructure", "valid", "invalid:infrastructure",
                                     "duplicate_rejected"], start=1):  # a rejection is no evaluation
            entry = candidate(i, verdict) if verdict != "duplicate_rejected" else LineageEntry.from_dict(
                {"kind": "no_program", "iteration": i, "verdict": verdict})
            progress.on_entry(entry)
        assert not stopped and progress.all_lost() is None
        progress.on_entry(candidate(5, "invalid:infrastructure"))
    finally:
        progress.close()
    assert stopped and stopped == [progress.stop_reason]
    assert progress.stop_reason.startswith("Ray executor failing: 2 evaluations in a row lost their Ray worker")
    assert search_status(progress.stop_reason) == "stopped by infrastructure failures"
    (tmp_path / "status.json").write_text(json.dumps({"status": search_status(progress.stop_reason)}))
    assert exit_status(tmp_path) == 5 and sorted(EXIT_STATUS.values()) == [0, 3, 4, 5, 130]

    lost_only = Progress(10, Ledger(tmp_path), stream=io.StringIO(), max_infra_failures=5)
    lost_only.on_entry(candidate(1, "invalid:infrastructure"))
    assert lost_only.all_lost().startswith("Ray executor failing: all 1 evaluation(s)")
