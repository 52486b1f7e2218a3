"""The Ray runtime of one run (``evolution.executor=ray``): join or start it, open the evaluation gate.

The run joins the cluster named by ``executor.address`` (``auto`` or ``host:port``) or starts a
local Ray runtime, records the resolved address and a namespace of its own in the run spec (so
openevolve's worker processes join the same runtime), and opens the gate actor that holds the
training data and bounds evaluations in flight (``evaluators.ray_executor``). openevolve's
workers are then spawned rather than forked: a process forked from a Ray driver inherits
connections it cannot use. Ray is a heavy optional dependency, imported inside the function.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from efe.core.config import ConfigError
from efe.core.specs import load_spec, replace, save_spec, spec_to_dict
from evaluators.ray_executor import start_gate

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
    gate = start_gate(spec_to_dict(spec), executor)
    log.info("Ray executor: %s, namespace %s, at most %d evaluations in flight",
             executor["address"], namespace, executor["max_in_flight"])
    try:
        yield
    finally:
        ray.kill(gate)
        if started:
            ray.shutdown()
