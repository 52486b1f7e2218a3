"""One command-line convention for the commands that are not Hydra apps (efe.apply, export, package, ...).

Every argument is ``key=value`` (one command may also take one bare argument, e.g. ``efe.score
<program.py>``), composed over the defaults in ``conf/<command>.yaml`` with Hydra's override grammar
(``key=value``, ``+key=value`` to add under an open mapping, lists as ``[a,b]``). A key the
command does not know is refused with one line naming it and the allowed keys (exit 2);
``-h``/``--help`` prints the usage and every key with its default on stdout (exit 0); :func:`run`
maps an ``EfeError`` to ``error: <message>`` on stderr and exit 2 (anything else is a bug and
keeps its traceback).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict

from efe.core.config import CONF_DIR, ConfigError, compose
from efe.core.errors import EfeError

# overrides whose values are free text (a sentence, a file name): quoted for Hydra as typed
TEXT_KEYS = ("dataset.description", "dataset.name", "dataset.target", "dataset.path", "dataset.test_path")
_OVERRIDE = re.compile(r"^(?P<prefix>\+{0,2}|~)(?P<key>[\w.\-/@]+)=(?P<value>.*)$", re.DOTALL)
HELP = ("-h", "--help")


class UsageError(EfeError):
    """An argument the command cannot take (unknown key, bare word, missing required key)."""


@dataclass(frozen=True)
class Command:
    """What a command takes; its keys and their defaults are ``conf/<name>.yaml``."""

    name: str                               # python -m efe.<name>, conf/<name>.yaml
    usage: str                              # the arguments of the usage line
    summary: str = ""                       # one sentence under the usage line in -h
    required: tuple[str, ...] = ()          # keys that must be given (null in the yaml)
    positional: str | None = None           # the key one bare argument sets (efe.score <program.py>)
    repeatable: tuple[str, ...] = ()        # keys that may be given more than once (a list)
    text_keys: tuple[str, ...] = ()         # values read as typed (paths, names, notes), never parsed by Hydra

    def usage_line(self) -> str:
        return f"usage: python -m efe.{self.name} {self.usage}"


def shell_overrides(args: list[str], text_keys: tuple[str, ...] = TEXT_KEYS) -> list[str]:
    """Command-line overrides as a shell hands them over, made safe for Hydra's grammar.

    The shell strips the quotes of ``dataset.description="one row per customer; churned = ..."``,
    and Hydra cannot parse ``;`` or ``=`` in a bare value (and reads ``a, b`` as a sweep): values of
    ``text_keys`` are therefore quoted for Hydra. Any other override Hydra cannot parse raises a
    ``ConfigError`` that names it and says how to quote it.
    """
    parser = OverridesParser.create()
    out = []
    for arg in args:
        match = _OVERRIDE.match(arg)
        if arg.startswith("-") or not match:
            out.append(arg)
            continue
        key, value = match["key"], match["value"]
        if key in text_keys and value != "null" and not _quoted(value):
            arg = f"{match['prefix']}{key}={_hydra_quote(value)}"
        try:
            parser.parse_override(arg)
        except HydraException as exc:
            reason = str(exc).strip().splitlines()[0]
            raise ConfigError(f"cannot read the override {arg!r} ({reason}); quote a value holding spaces, "
                              f"';', '=' or ',' for Hydra, e.g. \"{key}='...'\"") from None
        out.append(arg)
    return out


def _quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""


def _hydra_quote(text: str) -> str:
    """``text`` as a single-quoted Hydra string: backslashes before a quote or the end doubled, quotes escaped."""
    text = re.sub(r"(\\+)(?=')|(\\+)$", lambda m: m.group(0) * 2, text)
    return "'" + text.replace("'", "\\'") + "'"


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _compose(command: Command, overrides: Sequence[str]) -> DictConfig:
    try:
        return compose(command.name, overrides)
    except ConfigError as exc:
        raise ConfigError(_one_line(exc)) from None


def _groups() -> set[str]:
    """Config groups (conf/<group>/*.yaml): ``dataset=csv`` picks a file, it sets no value."""
    return {p.name for p in CONF_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}


def _allowed(command: Command, node: Any, top: bool = True) -> list[str]:
    keys = [str(k) for k in node.keys()] if isinstance(node, DictConfig) else []
    extra = [k for k in (command.positional, *command.repeatable) if k and k not in keys] if top else []
    return keys + extra


def _check_keys(command: Command, overrides: list[tuple[str, str]], base: DictConfig) -> None:
    """Every key must be one of the command's (a ``+key`` may add under a mapping that exists)."""
    for prefix, key in overrides:
        parts = key.split(".")
        node: Any = base
        for depth, part in enumerate(parts):
            if isinstance(node, DictConfig) and part in node.keys():
                node = node._get_node(part)  # not resolved: a mandatory (???) value is given on the command line
                continue
            if prefix.startswith("+") and depth > 0 and isinstance(node, DictConfig):
                break  # +forecaster_params.chronos2.model_path=... adds under an existing mapping
            where = ".".join(parts[:depth])
            allowed = _allowed(command, node, top=False) if depth else _allowed(command, base)
            if depth and not isinstance(node, DictConfig):
                raise UsageError(f"unknown key '{key}' for efe.{command.name}; '{where}' is a value, not a group "
                                 "of keys")
            if not allowed:
                raise UsageError(f"unknown key '{key}' for efe.{command.name}; '{where}' holds no keys yet: "
                                 f"add one with +{key}=...")
            scope = f" under '{where}'" if where else ""
            raise UsageError(f"unknown key '{key}' for efe.{command.name}; allowed{scope}: {', '.join(allowed)}")


def parse(command: Command, argv: Sequence[str]) -> DictConfig:
    """The command's configuration: ``conf/<name>.yaml`` with the arguments composed over it."""
    overrides: list[str] = []
    repeated: dict[str, list[str]] = {}
    given: dict[str, str] = {}   # the positional key, kept as typed
    seen_positional = False
    for arg in argv:
        if command.positional and "=" not in arg and not arg.startswith(("-", "+", "~")) and not seen_positional:
            arg, seen_positional = f"{command.positional}={arg}", True
        match = _OVERRIDE.match(arg)
        if not match:
            keys = ", ".join(_allowed(command, _compose(command, [])))
            raise UsageError(f"unexpected argument {arg!r} for efe.{command.name}: give key=value "
                             f"(keys: {keys}; -h lists them with their defaults)")
        if match["key"] == command.positional and not match["prefix"]:
            if match["key"] in given:
                raise UsageError(f"{match['key']} given twice for efe.{command.name} ({command.usage_line()})")
            given[match["key"]] = match["value"]
        elif match["key"] in command.repeatable and not match["prefix"]:
            repeated.setdefault(match["key"], []).append(match["value"])
        else:
            overrides.append(arg)
    overrides = shell_overrides(overrides, (*TEXT_KEYS, *command.text_keys))
    parsed = [(m["prefix"], m["key"]) for m in (_OVERRIDE.match(a) for a in overrides)]
    groups = _groups()
    choices = [a for a, (prefix, key) in zip(overrides, parsed) if key in groups]
    base = _compose(command, choices)
    _check_keys(command, [p for p in parsed if p[1] not in groups or p[0] == "~"], base)
    cfg = _compose(command, overrides) if len(choices) < len(overrides) else base
    with open_dict(cfg):
        for key, values in repeated.items():
            cfg[key] = values
        cfg.update(given)
    for key in command.required:
        value = OmegaConf.select(cfg, key, default=None)
        if value in (None, "") or (OmegaConf.is_list(value) and not len(value)):
            raise UsageError(f"{key}= is required ({command.usage_line()}; -h lists the keys)")
    return cfg


def help_text(command: Command) -> str:
    """The usage line, the summary and every key with its default."""
    cfg = _compose(command, [])
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - an unresolvable default is shown as written
        plain = OmegaConf.to_container(cfg, resolve=False)
    lines = [command.usage_line()]
    if command.summary:
        lines.append(command.summary)
    lines.append(f"keys (key=value; defaults from conf/{command.name}.yaml):")
    if command.positional and command.positional not in plain:
        lines.append(f"  {command.positional}=<given as the bare argument>")
    lines += [f"  {key}={value}" for key, value in _leaves(plain)]
    for key in command.repeatable:
        if key not in plain:
            lines.append(f"  {key}=<value>   (may be given more than once)")
    return "\n".join(lines)


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict) and node:
        out = []
        for key, value in node.items():
            out += _leaves(value, f"{prefix}{key}.")
        return out
    text = "null" if node is None else str(node).lower() if isinstance(node, bool) else str(node)
    return [(prefix[:-1], text)]


def run(command: Command, body: Callable[[DictConfig], int | None], argv: Sequence[str] | None = None) -> int:
    """Parse, call ``body(cfg)`` (its return is the exit status), and map an ``EfeError`` to one line, exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if any(a in HELP for a in argv):
            print(help_text(command))
            return 0
        return int(body(parse(command, argv)) or 0)
    except EfeError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2


def flag(value: Any) -> bool:
    """A yes/no value as typed (``true``/``false``, ``1``/``0``, ``yes``/``no``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", "none", "null", ""):
        return False
    raise UsageError(f"'{value}' is not true or false")
