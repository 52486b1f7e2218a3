"""What both command lines (efe.tab, efe.time) share: run directories, logging, resume."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf


def _run_dir(root: str, setting: str, name: Any, path: Any, resume: Any, stamp: str) -> str:
    if resume not in (None, "None", "null", ""):
        return str(resume)
    label = name if name not in (None, "None", "null", "") else (Path(str(path)).stem if path else "dataset")
    return str(Path(root) / setting / str(label) / stamp)


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
    root.addHandler(console)
    for noisy in ("httpx", "openai", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def resume_config(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """The saved config of the run being resumed, with this command's explicit overrides on top."""
    run_dir = Path(str(cfg.resume))
    saved = run_dir / "config.yaml"
    if not saved.exists():
        raise FileNotFoundError(f"resume={run_dir}: no config.yaml there (is it an efe run directory?)")
    base = OmegaConf.load(saved)
    dotlist = [o.lstrip("+") for o in overrides if not o.split("=")[0].lstrip("+~").startswith(("resume", "hydra"))]
    merged = OmegaConf.merge(base, OmegaConf.from_dotlist(dotlist)) if dotlist else base
    merged.resume = str(run_dir)
    return merged


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_app(cfg: DictConfig, runner: Callable[[DictConfig, Path], Any], user_errors: tuple) -> None:
    """The body of a Hydra command line: resume, run directory, logging, errors in the user's words."""
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        if cfg.get("resume"):
            cfg = resume_config(cfg, list(HydraConfig.get().overrides.task))
        run_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(run_dir)
        runner(cfg, run_dir)
    except user_errors as exc:
        logging.getLogger("efe").debug("user error", exc_info=True)
        say(f"error: {exc}")
        sys.exit(2)


def write_run_spec(spec: dict, run_dir: Path, llm: dict, cfg: DictConfig) -> Path:
    """Complete the run spec with what the search needs, and save it with the resolved config."""
    from efe.runspec import write_spec

    spec.update({
        "run_dir": str(run_dir.resolve()),
        "context_path": str((run_dir / "context.json").resolve()),
        "seed_program": str((run_dir / "seed_program.py").resolve()),
        "outcomes_dir": str((run_dir / "outcomes").resolve()),
        "llm": llm,
        "executor": executor_settings(cfg),
    })
    path = write_spec(run_dir / "spec.json", spec)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return path


def executor_settings(cfg: DictConfig) -> dict:
    """Where evaluations run: ``evolution.executor=local|ray`` with the ``executor`` section's options."""
    from efe.config import ConfigError, plain_dict

    kind = str(cfg.evolution.get("executor", "local"))
    if kind not in ("local", "ray"):
        raise ConfigError(f"evolution.executor must be 'local' or 'ray', got '{kind}'")
    return {**plain_dict(cfg.get("executor") or {}), "kind": kind}


def open_run(cfg: DictConfig, run_dir: Path, label: str, prepare: Callable[[], tuple[dict, dict]]
             ) -> tuple[dict, dict, dict, Path, bool]:
    """(spec, context, llm settings, spec path, resumed?) for a new run (``prepare``) or a resumed one."""
    import json

    from efe.config import plain_dict
    from efe.search.oe_config import resolve_backend

    llm = plain_dict(cfg.llm)
    llm["backend"] = resolve_backend(llm)
    resume = cfg.get("resume") not in (None, "")
    if resume:
        spec = json.loads((run_dir / "spec.json").read_text())
        context = json.loads((run_dir / "context.json").read_text())
        say(f"{label}: resuming {run_dir}")
    else:
        spec, context = prepare()
    return spec, context, llm, write_run_spec(spec, run_dir, llm, cfg), resume
