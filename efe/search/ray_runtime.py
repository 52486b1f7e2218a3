"""The Ray runtime of one run (``evolution.executor=ray``): join or start it, open the evaluation gate.

The run joins the cluster named by ``executor.address`` (``auto`` or ``host:port``) or starts a
local Ray runtime, records the resolved address and a namespace of its own in the run spec (so
openevolve's worker processes join the same runtime), and opens the gate actor that holds the
training data and bounds evaluations in flight (``evaluators.ray_executor``). openevolve's
workers are then spawned rather than forked: a process forked from a Ray driver inherits
connections it cannot use. The gate is placed on the driver's node, so a worker node that dies
takes only the evaluations it was running. The runtime stays open through the final selection,
whose re-scorings then run on the cluster too (``scoring_evaluator``). Ray is a heavy optional
dependency, imported inside the functions.
"""

from __future__ import annotations

import logging
import threading
import uuid
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

from efe.core.config import ConfigError
from efe.core.specs import load_spec, replace, save_spec, spec_to_dict
from evaluators.ray_executor import call_remotely, start_gate

log = logging.getLogger(__name__)


@contextmanager
def executor_runtime(spec_path: Path, oe_config: Any) -> Iterator[None]:
    """A no-op for the local executor; the run's Ray runtime and gate for ``executor=ray``."""
    spec = load_spec(spec_path)
    executor = dict(spec.search.executor)
    if executor["kind"] != "ray":
        yield
        return
    try:  # lazy: heavy optional dependency (ray), only the Ray executor needs it
        import ray
    except ImportError as exc:
        raise ConfigError(f"evolution.executor=ray needs Ray: pip install 'efe[ray]' ({exc})") from exc

    namespace = f"efe-{uuid.uuid4().hex[:12]}"
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"namespace": namespace, "log_to_driver": False,
                                   "logging_level": logging.WARNING}
        if executor["address"]:
            options["address"] = str(executor["address"])
        else:
            options.update(include_dashboard=False, num_cpus=executor["num_cpus"])
        ray.init(**options)
    executor.update(address=ray.get_runtime_context().gcs_address, namespace=namespace,
                    max_in_flight=int(executor["max_in_flight"] or oe_config.evaluator.parallel_evaluations or 1))
    spec = replace(spec, search=replace(spec.search, executor=executor))
    save_spec(spec_path, spec)
    if getattr(oe_config, "max_tasks_per_child", None) is None:
        oe_config.max_tasks_per_child = 1_000_000  # Python 3.11+ then spawns the workers (see docstring)
    gate = start_gate(spec_to_dict(spec), executor, ray.get_runtime_context().get_node_id())
    log.info("Ray executor: %s, namespace %s, at most %d evaluations in flight",
             executor["address"], namespace, executor["max_in_flight"])
    _LOST.clear()
    _USED.clear()
    try:
        yield
    finally:
        try:
            ray.kill(gate)
        except Exception as exc:  # noqa: BLE001 - the cluster may be gone; the run's results are not
            log.warning("could not stop the Ray gate: %s", exc)
        if started:
            ray.shutdown()


_LOST: list[str] = []  # set once a scoring on the executor was lost: the rest of this run scores on the driver
_USED: list[str] = []  # set once a scoring ran on the executor (logged once)


def scoring_evaluator(run_dir: Path, factory: Callable[[Any], Any], spec: Any) -> Any:
    """The evaluator the final selection scores with: ``factory(spec)`` itself for the local executor;
    for ``evolution.executor=ray``, a stand-in whose scoring methods run as Ray tasks through the
    run's gate (inside ``executor_runtime``), falling back to ``factory(spec)`` on the driver
    when the cluster cannot do them."""
    search = load_spec(Path(run_dir) / "spec.json").search  # the runtime's address and namespace
    if search is None or search.executor.get("kind") != "ray" or not search.executor.get("namespace"):
        return factory(spec)
    return OnExecutor(factory, {**spec_to_dict(spec), "executor": dict(search.executor)})


def _with_pool(method: str, args: tuple, kwargs: dict, evaluator: Any) -> tuple[Any, tuple[int, int]]:
    """On the Ray worker: the method's result and the sizes of the evaluator's selection pool and search rows."""
    sizes = (len(getattr(evaluator, "selection_rows", ())), len(getattr(evaluator, "search_rows", ())))
    return getattr(evaluator, method)(*args, **kwargs), sizes


class OnExecutor:
    """An evaluator stand-in for scorings after the search: each method call is a Ray task."""

    def __init__(self, factory: Callable[[Any], Any], spec: dict) -> None:
        self.factory, self.spec = factory, spec
        self._local: Any = None
        self._sizes: tuple[int, int] | None = None  # (selection pool, search rows) once a task has run
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return partial(self._call, name)

    @property
    def selection_rows(self) -> Any:
        return self._rows(0, "selection_rows")

    @property
    def search_rows(self) -> Any:
        return self._rows(1, "search_rows")

    def _rows(self, which: int, name: str) -> Any:
        """Rows of the size a remote task reported (``_sizes[which]``), or the driver's own evaluator's ``name``."""
        if self._sizes is not None:
            return range(self._sizes[which])
        return getattr(self._driver(), name, ())

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if not _LOST:
            try:
                result, failures = call_remotely(self.factory, self.spec, partial(_with_pool, method, args, kwargs))
            except Exception as exc:  # noqa: BLE001 - e.g. the runtime is not reachable: score on the driver
                result, failures = None, [f"{type(exc).__name__}: {exc}"]
            if result is not None:
                if not _USED:
                    _USED.append(method)
                    log.info("scoring after the search on the Ray executor (%s)", method)
                value, self._sizes = result
                return value
            _LOST.append(failures[-1] if failures else "lost")
            log.warning("final selection on the Ray executor failed (%s); scoring on the driver instead",
                        "; ".join(failures))
        return getattr(self._driver(), method)(*args, **kwargs)

    def _driver(self) -> Any:
        with self._lock:
            if self._local is None:
                self._local = self.factory(self.spec)
            return self._local

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
