"""What both command lines (efe.tab, efe.time) share: run directories, logging, resume."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from efe.cli.args import shell_overrides
from efe.core.console import say
from efe.core.config import CONF_DIR, ConfigError, plain_dict, required
from efe.frozen.sandboxed import shared_sandbox
from efe.sandbox import Sandbox
from efe.sandbox.client import NO_KERNEL_ISOLATION
from efe.search.status import exit_status
from efe.core.specs import RunSpec, SandboxSpec, SearchSpec, build, conf_part, load_spec, replace, save_spec


def _run_dir(root: str, setting: str, name: Any, path: Any, resume: Any, stamp: str) -> str:
    if resume not in (None, "None", "null", ""):
        return str(resume)
    label = name if name not in (None, "None", "null", "") else (Path(str(path)).stem if path else "dataset")
    # dataset.name is free text ("Customer churn / Q3"); the directory gets a safe form of it
    label = re.sub(r"[^\w.-]+", "_", str(label)).strip("._") or "dataset"
    return claim_run_dir(Path(root) / setting / label / stamp)


def hydra_argv() -> None:
    """Rewrite ``sys.argv`` with ``shell_overrides`` before ``@hydra.main`` reads it (exit 2 on a bad one)."""
    try:
        sys.argv[1:] = shell_overrides(sys.argv[1:])
    except ConfigError as exc:
        say(f"error: {exc}")
        sys.exit(2)


_CLAIMED: dict[str, str] = {}


def claim_run_dir(wanted: Path) -> str:
    """Create the run directory atomically, adding ``-2``, ``-3``… when another run holds the name.

    Two runs started in the same second get different directories (``os.mkdir`` fails for the
    second), so they never read or write each other's files. Hydra may resolve the run directory
    more than once in a process, so each wanted path is claimed once and remembered. A runs_root
    that cannot hold the directory ends the command with one line and exit status 2.
    """
    key = str(wanted)
    if key in _CLAIMED:
        return _CLAIMED[key]
    try:
        wanted.parent.mkdir(parents=True, exist_ok=True)
        candidate, n = wanted, 1
        while True:
            try:
                os.mkdir(candidate)
                break
            except FileExistsError:
                n += 1
                candidate = wanted.with_name(f"{wanted.name}-{n}")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = exc.filename or wanted.parent
        say(f"error: runs_root cannot hold the run directory '{wanted}': {reason} ('{where}')")
        sys.exit(2)
    _CLAIMED[key] = str(candidate)
    return str(candidate)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("efe_run_dir"):
        OmegaConf.register_new_resolver("efe_run_dir", _run_dir)


def setup_logging(run_dir: Path) -> None:
    """efe's own messages on the console; everything in <run>/efe.log."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    file_handler = logging.FileHandler(run_dir / "efe.log")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    root.addHandler(file_handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # a judge's rejection is a verdict, not an error: it is in the lineage, the report and efe.log
    console.addFilter(lambda record: "judge rejected [" not in record.getMessage())
    root.addHandler(console)
    for noisy in ("httpx", "openai", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# What a resumed run may change: everything else went into the run spec, the data split or the
# population's scores when the run started, so changing it would silently not apply (or mix scores).
RESUMABLE = ("llm", "evolution", "selection", "report")


def resume_config(cfg: DictConfig, overrides: list[str], config_name: str = "tab") -> DictConfig:
    """The saved config of the run being resumed, with this command's explicit overrides on top.

    A group override (``llm=offline``) replaces that section with the composed group; a dotted
    one (``evolution.iterations=8``) is merged; one that would change what the run was started
    with (``scorer=tree``, ``dataset.path=…``) is refused with one line.
    """
    run_dir = Path(str(cfg.resume))
    saved = run_dir / "config.yaml"
    if not saved.exists():
        raise FileNotFoundError(f"resume={run_dir}: no config.yaml there (is it an efe run directory?)")
    base = OmegaConf.load(saved)
    groups, dotlist, fixed = [], [], []
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key.startswith(("resume", "hydra")):
            continue
        root = key.split(".")[0]
        if root not in RESUMABLE or override.startswith("~"):
            fixed.append(key)
        elif "." not in key and (CONF_DIR / root).is_dir():
            groups.append(override.lstrip("+"))
        else:
            dotlist.append(override.lstrip("+"))
    if fixed:
        raise ConfigError(f"resume={run_dir}: {', '.join(fixed)} cannot change when resuming (the run was started "
                          f"with {', '.join(_recorded(base, k) for k in fixed)}); only {', '.join(RESUMABLE)} may "
                          "change; start a new run to change the rest")
    if groups:
        composed = _compose_groups(config_name, groups)
        for override in groups:
            group = override.split("=")[0]
            base[group] = OmegaConf.create(OmegaConf.to_container(composed[group], resolve=True))
    merged = OmegaConf.merge(base, OmegaConf.from_dotlist(dotlist)) if dotlist else base
    merged.resume = str(run_dir)
    return merged


def _recorded(base: DictConfig, key: str) -> str:
    value = OmegaConf.select(base, key, default=None)
    if OmegaConf.is_config(value):
        value = value.get("name", "…")
    return f"{key}={value}"


def _compose_groups(config_name: str, groups: list[str]) -> DictConfig:
    try:
        return compose(config_name=config_name, overrides=groups)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"bad override on resume: {exc}") from None


def run_app(cfg: DictConfig, runner: Callable[[DictConfig, Path], Any], user_errors: tuple) -> None:
    """The body of a Hydra command line: resume, run directory, logging, errors in the user's words."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        if cfg.get("resume"):
            cfg = resume_config(cfg, list(HydraConfig.get().overrides.task), HydraConfig.get().job.config_name)
        run_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(run_dir)
        runner(cfg, run_dir)
    except user_errors as exc:
        logging.getLogger("efe").debug("user error", exc_info=True)
        say(f"error: {exc}")
        sys.exit(2)
    status = exit_status(run_dir)
    if status:
        sys.exit(status)


def write_run_spec(spec: RunSpec, run_dir: Path, llm: dict, cfg: DictConfig, steering: dict, mode: str
                   ) -> tuple[RunSpec, Path]:
    """The setting's spec with what the search needs (built here, once), saved with the resolved config."""
    spec = replace(spec, run_dir=str(run_dir.resolve()), search=search_spec(cfg, run_dir, llm, steering, mode))
    path = save_spec(run_dir / "spec.json", spec)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return spec, path


def search_spec(cfg: DictConfig, run_dir: Path, llm: dict, steering: dict, mode: str) -> SearchSpec:
    """The search's part of the run spec: files in ``run_dir``, the LLM, proposals, the executor."""
    return build(SearchSpec, {
        "context_path": str((run_dir / "context.json").resolve()),
        "seed_program": str((run_dir / "seed_program.py").resolve()),
        "outcomes_dir": str((run_dir / "outcomes").resolve()),
        "llm": llm,
        "offline_proposer": str(required(cfg, "proposer.offline")),
        "offline_moves": plain_dict(required(cfg, "proposer.moves")),
        "proposal": {"plan_first": bool(required(cfg, "proposer.plan_first")), "judge": required(cfg, "judge"),
                     "novelty": required(cfg, "proposer.novelty")},
        "executor": executor_settings(cfg),
        "sandbox_mode": mode,
        "roles": steering["roles"],
        "memory": steering["memory"],
    })


def executor_settings(cfg: DictConfig) -> dict:
    """Where evaluations run: ``evolution.executor=local|ray`` with the ``executor`` section's options."""
    kind = str(required(cfg, "evolution.executor"))
    if kind not in ("local", "ray"):
        raise ConfigError(f"evolution.executor must be 'local' or 'ray', got '{kind}'")
    deterministic = cfg.evolution.get("deterministic", False)
    if not isinstance(deterministic, bool):
        raise ConfigError(f"evolution.deterministic must be true or false, got '{deterministic}'")
    if deterministic and kind != "local":
        raise ConfigError("evolution.deterministic=true needs evolution.executor=local (Ray tasks finish in any order)")
    return {**required(cfg, "executor"), "kind": kind, "deterministic": deterministic}


def open_run(cfg: DictConfig, run_dir: Path, label: str, prepare: Callable[[], tuple[RunSpec, dict, dict]]
             ) -> tuple[RunSpec, dict, dict, Path, bool]:
    """(spec, context, llm settings, spec path, resumed?) for a new run (``prepare``) or a resumed one.

    ``prepare`` returns the setting's spec, the dataset context and the steering parts of the
    search spec (``roles``, ``memory``); a resumed run reads them from its own directory.
    """
    # lazy: efe.llm pulls openevolve and the openai SDK (~1 s); the command lines import this module for --help
    from efe.llm.client import resolve_backend

    # probed on the worker the run's own later steps reuse (the freeze's refit, time series' held-out forecasts)
    limits = build(SandboxSpec, plain_dict(cfg.sandbox), "sandbox")
    mode = sandbox_mode(limits.require_isolation, shared_sandbox(limits))
    say(f"{label}: sandbox isolation: {mode}")
    llm = plain_dict(cfg.llm)
    llm["backend"] = resolve_backend(llm)
    resume = cfg.get("resume") not in (None, "")
    if resume:
        spec = load_spec(run_dir / "spec.json")
        if spec.search is None:
            raise ConfigError(f"resume={run_dir}: its spec.json holds no search (was it written by efe.score?)")
        steering = {"roles": spec.search.roles, "memory": spec.search.memory}
        context = json.loads((run_dir / "context.json").read_text())
        say(f"{label}: resuming {run_dir}")
    else:
        spec, context, steering = prepare()
    spec, path = write_run_spec(spec, run_dir, llm, cfg, steering, mode)
    return spec, context, llm, path, resume


def sandbox_mode(require_isolation: bool, sandbox: Sandbox | None = None,
                 key: str = "sandbox.require_isolation", holds: str = "candidate programs") -> str:
    """What isolates programs on this machine (probed on ``sandbox``, or on a sandbox of conf's limits);
    refused (``key`` named) if kernel isolation is required and there is none."""
    if sandbox is None:
        with Sandbox(conf_part(SandboxSpec, "tab", "sandbox")) as probe:  # a trivial probe: conf's limits do
            mode = probe.isolation_mode()
    else:
        mode = sandbox.isolation_mode()
    if mode == NO_KERNEL_ISOLATION:
        if require_isolation:
            raise ConfigError(f"{key}=true, but the kernel gives the sandbox no isolation here "
                              f"(namespaces refused, no seccomp): only the audit hook would hold {holds}")
        say(f"WARNING: sandbox without kernel isolation (namespaces refused, no seccomp): only the audit hook "
            f"holds {holds}; set {key}=true to refuse such runs")
    return mode
