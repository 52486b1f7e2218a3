"""What a forked sandbox child does: lock down, load the program, run a plan, report plain data.

A plan is a short list of calls on the program (``fit``, ``transform``, ``inverse_transform``,
and ``snapshot`` / ``digest`` of values as they are at that step) whose arguments name values the
child holds (the data the program may see, and states sent in). Every state returned by ``fit``
goes through the plain-data codec before anything uses it, so what is evaluated is exactly what a
frozen program will reload. The child tells the worker each time a step completes (one byte on
the result pipe): the wall-clock limit holds per step, not for the whole plan.
"""

from __future__ import annotations

import inspect
import json
import os
import struct
import sys
import time
import traceback
from typing import Any

from efe.core import plain
from efe.core.contracts import contract_for
from efe.sandbox import guard, policy

MAX_STDOUT = 4000


class _BoundedText:
    """Stand-in for stdout/stderr: keeps the first few KB of what the program prints."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        text = str(text)
        if self.size < self.limit:
            self.parts.append(text[: self.limit - self.size])
            self.size += len(self.parts[-1])
        return len(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self.parts)


class ProgramError(Exception):
    def __init__(self, failure: dict) -> None:
        super().__init__(failure.get("message", ""))
        self.failure = failure


def run(request: dict, data: dict[str, Any], result_fd: int) -> None:
    """Entry point in the forked child. Never returns."""
    status = 0
    try:
        _isolate_fds(result_fd)
        body = _execute(request, data, result_fd)
    except MemoryError:
        body = _failure_bytes({"kind": "memory", "message": "memory limit exceeded"})
    except BaseException as exc:  # noqa: BLE001 - the child must always report
        body = _failure_bytes({"kind": "crash", "message": f"sandbox child error: {exc!r}"})
        status = 1
    try:
        os.write(result_fd, guard.RESULT + struct.pack("<Q", len(body)))
        view = memoryview(body)
        while view:
            written = os.write(result_fd, view)
            view = view[written:]
    finally:
        os._exit(status)


def _execute(request: dict, data: dict[str, Any], result_fd: int) -> bytes:
    contract = contract_for(request["setting"])
    source = request["source"]
    code = compile(source, guard.PROGRAM_FILENAME, "exec")
    limits = request["limits"]
    values = dict(data)
    values.update(request.get("values") or {})

    sys.stdout = sys.stderr = out = _BoundedText(MAX_STDOUT)
    guard.apply_limits(limits["memory_mb"], limits["cpu_s"])  # reads /proc: before chroot
    isolation = guard.isolate(request["empty_root"], bool(request.get("namespaces", True)))
    guard.drop_privileges()
    guard.die_with_parent()
    if guard.apply_seccomp(bool(request.get("seccomp", True))):
        isolation = "seccomp" if isolation == "audit-only" else f"{isolation}+seccomp"
    guard.install_audit_hook(result_fd, code, tuple(request["code_roots"]))

    outputs: dict[str, Any] = {}
    errors: dict[str, dict] = {}
    timings: dict[str, float] = {}
    try:
        program = _build(code, contract, source, int(request.get("seed", 0)))
        os.write(result_fd, guard.STEP_DONE)  # the worker's deadline is per step: it starts again now
        for op in request["plan"]:
            name = op["out"]
            start = time.perf_counter()
            try:
                values[name] = _call(program, op, values, source)
            except ProgramError as exc:
                if not op.get("keep_going"):
                    raise
                errors[name] = exc.failure
            timings[name] = time.perf_counter() - start
            os.write(result_fd, guard.STEP_DONE)
        for name in request["returns"]:
            if name in values:
                outputs[name] = values[name]
    except ProgramError as exc:
        return _failure_bytes(dict(exc.failure, stdout=out.getvalue()))
    try:
        return plain.encode({
            "status": "ok", "outputs": outputs, "errors": errors, "timings": timings,
            "stdout": out.getvalue(), "isolation": isolation,
        })
    except plain.PlainDataError as exc:
        return _failure_bytes({"kind": "invalid_output", "message": f"output is not plain data: {exc}"})


def _build(code: Any, contract: Any, source: str, seed: int) -> Any:
    namespace = {
        "__name__": "efe_program",
        "__builtins__": guard.restricted_builtins(policy.import_allowed),
    }
    try:
        exec(code, namespace)  # the one exec the audit hook lets through
    except Exception as exc:  # noqa: BLE001
        raise ProgramError(_exception_failure("loading the program", exc, source)) from None
    factory = namespace.get(contract.factory)
    if not callable(factory):
        raise ProgramError({"kind": "interface",
                            "message": f"the program defines no function {contract.factory}(seed)"})
    try:
        program = factory(seed)
    except Exception as exc:  # noqa: BLE001
        raise ProgramError(_exception_failure(contract.factory, exc, source)) from None
    problems = []
    for method, args in contract.methods.items():
        fn = getattr(program, method, None)
        if not callable(fn):
            problems.append(f"no callable {method}({', '.join(args)})")
            continue
        try:
            inspect.signature(fn).bind(*args)
        except TypeError:
            problems.append(f"{method} does not accept ({', '.join(args)})")
        except ValueError:
            pass
    if problems:
        raise ProgramError({"kind": "interface",
                            "message": f"{contract.factory}(seed) returned an object with "
                                       + "; ".join(problems)})
    return program


def _call(program: Any, op: dict, values: dict, source: str) -> Any:
    method = op["op"]
    missing = [a for a in op["args"] if a not in values]
    if missing:  # an earlier step of the plan failed (and was allowed to: keep_going)
        raise ProgramError({"kind": "exception", "op": method, "exception": "skipped",
                            "message": f"not run: {', '.join(missing)} is missing because an earlier step failed"})
    args = [values[a] for a in op["args"]]
    if method == "digest":  # fingerprints of values as they are now: a "was it changed?" check, sent cheaply
        return [plain.digest(a) for a in args]
    if method not in ("fit", "transform", "inverse_transform"):
        raise ProgramError({"kind": "crash", "message": f"unknown plan step {method!r}"})
    try:
        result = getattr(program, method)(*args)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ProgramError(_exception_failure(method, exc, source)) from None
    if method == "fit":
        if type(result) is not dict:
            raise ProgramError({"kind": "exception", "op": "fit",
                                "message": f"fit must return a dict of plain data, got {type(result).__name__}"})
        try:
            result = plain.roundtrip(result)
        except plain.PlainDataError as exc:
            raise ProgramError({"kind": "invalid_output", "op": "fit",
                                "message": f"state is not plain data: {exc}"}) from None
    return result


def _exception_failure(where: str, exc: BaseException, source: str) -> dict:
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == guard.PROGRAM_FILENAME:
            line = lineno
    text = ""
    if line is not None:
        lines = source.splitlines()
        if 0 < line <= len(lines):
            text = lines[line - 1].strip()
    message = str(exc)
    if len(message) > 300:
        message = message[:297] + "..."
    return {"kind": "exception", "op": where, "exception": type(exc).__name__,
            "message": message, "line": line, "source_line": text}


def _failure_bytes(failure: dict) -> bytes:
    return json.dumps({"status": "failure", **failure}, default=str).encode()


def _isolate_fds(keep: int) -> None:
    """Only the result pipe stays open; 0/1/2 point at /dev/null (the worker's are protocol)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    for fd in _open_fds():
        if fd not in (0, 1, 2, keep):
            try:
                os.close(fd)
            except OSError:
                pass


def _open_fds() -> list[int]:
    try:
        return [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))
