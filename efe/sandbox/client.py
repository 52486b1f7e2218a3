"""The one interface to untrusted code: source and data in, plain data or a typed failure out.

``Sandbox`` owns a worker process started from a fresh interpreter with a scrubbed
environment (no credentials, no inherited state of the evaluator). Data the programs may see
is sent once with ``load`` and cached there; each ``run`` forks a locked-down child.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from efe.core import plain
from efe.core.contracts import contract_for
from efe.core.pysource import parse_python
from efe.sandbox import guard, policy
from efe.sandbox.plan import Step, as_steps
from efe.sandbox.worker import read_message, write_message

if TYPE_CHECKING:  # not at run time: the worker process imports this module and stays lean
    from efe.core.specs import SandboxSpec

_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ")
_ENV_FIXED = {
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
    "HOME": "/nonexistent", "ARROW_DEFAULT_MEMORY_POOL": "system",
}
# Layers to leave off, for tests and diagnosis ("namespaces", "seccomp"): e.g.
# EFE_SANDBOX_DISABLE=namespaces behaves as where the kernel refuses namespaces (Docker's default).
DISABLE_ENV = "EFE_SANDBOX_DISABLE"
NO_KERNEL_ISOLATION = "audit-only"
_PROBE = ("class Probe:\n    def fit(self, X, y):\n        return {}\n\n    def transform(self, X, state):\n"
          "        return X\n\n\ndef build_feature_program(seed=0):\n    return Probe()\n")
_WORKER_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from efe.sandbox.worker import main; main()"
)


@dataclass
class SandboxFailure:
    """Why a program produced no result. ``kind`` is one of KINDS."""

    kind: str
    message: str
    line: int | None = None
    detail: dict = field(default_factory=dict)
    wall_s: float = 0.0

    KINDS = ("syntax", "forbidden", "interface", "timeout", "memory", "crash", "exception",
             "invalid_output", "output_too_large")

    @property
    def reason(self) -> str:
        where = f" (program line {self.line}" if self.line else ""
        if where and self.detail.get("source_line"):
            where += f": {self.detail['source_line']}"
        if where:
            where += ")"
        label = {
            "syntax": "syntax error", "forbidden": "forbidden", "interface": "interface",
            "timeout": "timeout", "memory": "memory limit", "crash": "crash",
            "exception": "exception", "invalid_output": "invalid output",
            "output_too_large": "output too large",
        }[self.kind]
        return f"{label}: {self.message}{where}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "line": self.line,
                "detail": self.detail, "reason": self.reason}


@dataclass
class SandboxResult:
    outputs: dict[str, Any]
    errors: dict[str, dict]
    timings: dict[str, float]
    stdout: str
    wall_s: float
    isolation: str = ""

    ok = True


class SandboxError(RuntimeError):
    """The sandbox itself (not a program) failed: the worker could not start or answer."""


def check_source(source: str) -> SandboxFailure | None:
    """The static first filter: syntax, then forbidden constructs."""
    try:
        tree = parse_python(source)
    except SyntaxError as exc:
        return SandboxFailure("syntax", f"{exc.msg}", exc.lineno,
                              {"source_line": (exc.text or "").strip()})
    violations = policy.find_violations(tree)
    if violations:
        first = violations[0]
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        return SandboxFailure("forbidden", f"{first.construct}{more}", first.line,
                              {"violations": [str(v) for v in violations[:10]]})
    return None


class Sandbox:
    """A worker process and the protocol to it. Thread-safe; one request at a time.

    ``limits``: the spec's ``sandbox`` section (``efe.core.specs.SandboxSpec``, from conf/), for every
    call that gives none of its own.
    """

    def __init__(self, limits: SandboxSpec, *, static_check: bool = True) -> None:
        self.limits = limits
        self.static_check = static_check
        self._proc: subprocess.Popen | None = None
        self._loaded: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._code_roots = list(guard.code_roots())
        self._checked: OrderedDict[str, SandboxFailure | None] = OrderedDict()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
        env.update(_ENV_FIXED)
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _WORKER_BOOT, _PROJECT_ROOT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, cwd="/", close_fds=True, start_new_session=True,
        )
        header = self._receive(timeout=120.0)
        if not header[0].get("ready"):
            raise SandboxError(f"sandbox worker did not start: {header[0]}")
        for key, payload in self._loaded.items():
            self._request({"cmd": "load", "key": key}, payload, timeout=120.0)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            proc.stdout.close()

    @property
    def worker_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # ------------------------------------------------------------------ data
    def load(self, key: str, values: dict[str, Any]) -> None:
        """Send values the programs may see (e.g. pool A with labels, pool B without)."""
        payload = plain.encode(values)
        with self._lock:
            self._ensure_started()
            self._request({"cmd": "load", "key": key}, payload, timeout=120.0)
            self._loaded[key] = payload

    def drop(self, key: str) -> None:
        with self._lock:
            if self._loaded.pop(key, None) is not None and self._alive():
                self._request({"cmd": "drop", "key": key}, b"", timeout=30.0)

    def has(self, key: str) -> bool:
        return key in self._loaded

    # ------------------------------------------------------------------ run
    def run(
        self,
        source: str,
        setting: str,
        plan: Sequence[Step | Mapping[str, Any]],
        returns: list[str],
        *,
        data: str | None = None,
        values: dict[str, Any] | None = None,
        seed: int = 0,
        limits: SandboxSpec | None = None,
    ) -> SandboxResult | SandboxFailure:
        """Run ``plan`` (typed steps, ``efe.sandbox.plan``) on the program in a fresh child; outputs or a typed failure.

        ``limits``: this call's own (e.g. scaled to the work it holds); None: the sandbox's."""
        contract_for(setting)
        plan = [step.to_dict() for step in as_steps(plan)]
        if self.static_check:
            failure = self._checked_source(source)
            if failure is not None:
                return failure
        else:
            try:
                compile(source, guard.PROGRAM_FILENAME, "exec")
            except SyntaxError as exc:
                return SandboxFailure("syntax", exc.msg, exc.lineno)
        limits = limits or self.limits
        header = {
            "cmd": "run", "source": source, "setting": setting, "plan": plan,
            "returns": returns, "data": data, "seed": int(seed), "limits": _limits_message(limits),
            "code_roots": self._code_roots, **_layers(),
        }
        payload = plain.encode(values) if values else b""
        start = time.perf_counter()
        with self._lock:
            self._ensure_started()
            try:
                # the worker's deadline is per step (the build, then each step of the plan)
                reply, body = self._request(header, payload,
                                            timeout=limits.timeout_s * (len(plan) + 1) + 30.0)
            except SandboxError:
                self.close()
                raise
        wall = time.perf_counter() - start
        return _interpret(reply, body, limits, wall, plan)

    def _checked_source(self, source: str) -> SandboxFailure | None:
        """``check_source``, parsed once per program: an evaluation runs the same source several times."""
        if source not in self._checked:
            self._checked[source] = check_source(source)
            while len(self._checked) > 8:
                self._checked.popitem(last=False)
        return self._checked[source]

    def isolation_mode(self) -> str:
        """What holds a program in on this machine, e.g. ``namespaces+chroot+seccomp``, ``seccomp``,
        or ``audit-only`` (no kernel isolation: only the in-process audit hook)."""
        result = self.run(_PROBE, "tab", [], [])
        if isinstance(result, SandboxFailure):
            raise SandboxError(f"the sandbox could not run a trivial program: {result.reason}")
        return result.isolation or NO_KERNEL_ISOLATION

    # ------------------------------------------------------------------ protocol
    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _ensure_started(self) -> None:
        if not self._alive():
            self._proc = None
            self.start()

    def _request(self, header: dict, payload: bytes, timeout: float) -> tuple[dict, bytes]:
        try:
            write_message(self._proc.stdin.fileno(), header, payload)
        except (BrokenPipeError, OSError) as exc:
            raise SandboxError(f"sandbox worker is gone: {exc}") from None
        reply = self._receive(timeout)
        if reply[0].get("verdict") == "missing_data":
            raise SandboxError(f"sandbox worker lost data {reply[0].get('key')!r}")
        return reply

    def _receive(self, timeout: float) -> tuple[dict, bytes]:
        fd = self._proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            self._proc.kill()
            raise SandboxError(f"sandbox worker did not answer within {timeout:.0f}s")
        try:
            return read_message(fd)
        except (EOFError, ValueError, OSError) as exc:
            raise SandboxError(f"sandbox worker stream broke: {exc!r}") from None


def _layers() -> dict:
    disabled = {x.strip() for x in os.environ.get(DISABLE_ENV, "").split(",")}
    return {"namespaces": "namespaces" not in disabled, "seccomp": "seccomp" not in disabled}


def _limits_message(limits: SandboxSpec) -> dict:
    """What the worker and the child enforce (``require_isolation`` is the run commands' check)."""
    return {"timeout_s": limits.timeout_s, "memory_mb": limits.memory_mb,
            "cpu_s": limits.cpu_s, "max_output_bytes": limits.max_output_bytes}


def _running(plan: list[dict], steps_done: int) -> str:
    """The step a child was in when it was stopped, from how many it had reported done."""
    if steps_done <= 0:
        return "while loading the program"
    if steps_done <= len(plan):
        step = plan[steps_done - 1]
        return f"in step {steps_done} of {len(plan)} ({step.get('op')} -> {step.get('out')})"
    return "after its last step"


def _interpret(reply: dict, body: bytes, limits: SandboxSpec, wall: float,
               plan: list[dict] | None = None) -> SandboxResult | SandboxFailure:
    verdict = reply.get("verdict")
    sig = reply.get("signal")
    if verdict == "timeout":
        steps = int(reply.get("steps_done") or 0)
        return SandboxFailure("timeout", f"no result within {limits.timeout_s:g}s wall clock of the last completed "
                              f"step; killed {_running(plan or [], steps)}", detail={"steps_done": steps},
                              wall_s=wall)
    if verdict == "bad_stream":
        return SandboxFailure("crash", "the program's process wrote to its result pipe out of turn; killed",
                              wall_s=wall)
    if verdict == "too_large":
        return SandboxFailure("output_too_large",
                              f"result larger than {limits.max_output_bytes} bytes", wall_s=wall)
    if body.startswith(plain.MAGIC):
        try:
            decoded = plain.decode(body)
        except plain.PlainDataError as exc:
            return SandboxFailure("invalid_output", str(exc), wall_s=wall)
        if not isinstance(decoded, dict) or decoded.get("status") != "ok":
            return SandboxFailure("invalid_output", "malformed result from the program", wall_s=wall)
        return SandboxResult(decoded.get("outputs", {}), decoded.get("errors", {}),
                             decoded.get("timings", {}), str(decoded.get("stdout", "")), wall,
                             str(decoded.get("isolation", "")))
    if body:
        try:
            info = json.loads(body)
        except ValueError:
            return SandboxFailure("invalid_output", "unreadable result from the program", wall_s=wall)
        if not isinstance(info, dict):
            return SandboxFailure("invalid_output", "malformed result from the program", wall_s=wall)
        if info.get("status") == "violation":
            return SandboxFailure("forbidden", str(info.get("message")), info.get("line"),
                                  {"event": info.get("event")}, wall_s=wall)
        kind = info.get("kind") if info.get("kind") in SandboxFailure.KINDS else "crash"
        detail = {k: info[k] for k in ("op", "exception", "source_line", "stdout") if k in info}
        return SandboxFailure(kind, str(info.get("message", "")), info.get("line"), detail, wall_s=wall)
    if sig == "SIGXCPU":
        return SandboxFailure("timeout", f"CPU time limit of {limits.cpu_s}s exceeded", wall_s=wall)
    if sig:
        hint = " (likely out of memory)" if sig in ("SIGKILL", "SIGSEGV", "SIGABRT", "SIGBUS") else ""
        return SandboxFailure("crash", f"program process died from {sig}{hint}", detail={"signal": sig},
                              wall_s=wall)
    return SandboxFailure("crash", f"program process exited with code {reply.get('exit_code')} "
                                   "without a result", wall_s=wall)
