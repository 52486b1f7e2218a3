"""The sandbox: every limit fires, the caller survives, nothing hostile reaches the parent."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from efe.sandbox import (
    Sandbox,
    SandboxFailure,
    SandboxResult,
    check_source,
)
from tests.conftest import IDENTITY_TAB, sandbox_limits, tab_program

X = pd.DataFrame({"a": np.arange(20, dtype=float), "b": list("xyzw") * 5})
Y = pd.Series(np.arange(20) % 2)
PLAN = [
    {"op": "fit", "args": ["X", "y"], "out": "state"},
    {"op": "transform", "args": ["X", "state"], "out": "T"},
]


def run(sb: Sandbox, source: str, returns=("T",)):
    return sb.run(source, "tab", PLAN, list(returns), values={"X": X, "y": Y})


def assert_still_works(sb: Sandbox) -> None:
    result = run(sb, IDENTITY_TAB)
    assert isinstance(result, SandboxResult), result
    pd.testing.assert_frame_equal(result.outputs["T"], X)


@pytest.fixture(scope="module")
def runtime_only():
    """A sandbox with the AST filter switched off: proves the run-time guard holds alone."""
    with Sandbox(sandbox_limits(timeout_s=5, memory_mb=512, cpu_s=10), static_check=False) as sb:
        yield sb


def test_identity_round_trip(sandbox):
    result = run(sandbox, IDENTITY_TAB, returns=("T", "state"))
    assert isinstance(result, SandboxResult)
    pd.testing.assert_frame_equal(result.outputs["T"], X)
    assert result.outputs["state"] == {"columns": ["a", "b"]}


def test_syntax_error_is_typed():
    failure = check_source("def f(:\n  pass\n")
    assert failure.kind == "syntax" and failure.line == 1


def _at_depth(depth: int, fn):
    return _at_depth(depth - 1, fn) if depth else fn()


def test_programs_are_checked_from_several_threads_at_once():
    """Final selection checks finalists on a thread pool. CPython 3.11's AST constructor keeps one recursion
    counter per interpreter, so two threads at different stack depths parsing at once failed with
    ``SystemError: AST constructor recursion depth mismatch`` (a CI run crashed so). A garbage-collection
    callback that yields the GIL makes the interleaving happen on every run."""
    source = tab_program("X = X.copy()\nX['r'] = X['a'] / (X['b'] + 1)\nreturn X") * 20
    results: list = []

    def check_many() -> None:
        for _ in range(5):
            try:
                results.append(check_source(source))
            except SystemError as exc:
                results.append(exc)

    def yield_gil(phase: str, info: dict) -> None:
        if phase == "start":
            time.sleep(0.0001)

    threshold = gc.get_threshold()
    gc.callbacks.append(yield_gil)
    gc.set_threshold(200, 10, 10)
    try:
        threads = [threading.Thread(target=_at_depth, args=(9 * i, check_many)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        gc.callbacks.remove(yield_gil)
        gc.set_threshold(*threshold)
    assert len(results) == 15 and all(r is None for r in results), [r for r in results if r is not None][:1]


def test_infinite_loop_times_out_and_worker_survives(sandbox):
    pid = sandbox.worker_pid
    failure = run(sandbox, tab_program("while True:\n    pass"))
    assert isinstance(failure, SandboxFailure) and failure.kind == "timeout", failure
    assert sandbox.worker_pid == pid
    assert_still_works(sandbox)


def test_sleeping_program_is_killed_on_wall_clock():
    with Sandbox(sandbox_limits(timeout_s=1.0, memory_mb=512, cpu_s=30)) as sb:
        source = tab_program("import time\ntime.sleep(30)\nreturn X")
        failure = run(sb, source)
        # 'time' is not an allowed import: the static gate stops it first
        assert failure.kind == "forbidden"
        failure = run(sb, tab_program("import statistics\nwhile True:\n    statistics.mean([1, 2])"))
        assert failure.kind == "timeout" and failure.wall_s < 5
        assert_still_works(sb)


def test_memory_bomb_hits_memory_limit(sandbox):
    failure = run(sandbox, tab_program("big = np.ones((40000, 40000))\nreturn X"))
    assert isinstance(failure, SandboxFailure) and failure.kind == "memory", failure
    failure = run(sandbox, tab_program("chunks = []\nwhile True:\n    chunks.append(bytearray(10**8))"))
    assert failure.kind == "memory", failure
    assert_still_works(sandbox)


@pytest.mark.parametrize("body, construct", [
    ("open('/etc/passwd').read()\nreturn X", "open"),
    ("import socket\nsocket.socket()\nreturn X", "socket"),
    ("import subprocess\nsubprocess.run(['true'])\nreturn X", "subprocess"),
    ("import ctypes\nctypes.string_at(0)\nreturn X", "ctypes"),
    ("[c for c in ().__class__.__base__.__subclasses__()]\nreturn X", "__class__"),
    ("pd.io.common.os.system('true')\nreturn X", "os"),
    ("eval('1+1')\nreturn X", "eval"),
])
def test_static_filter_names_construct_and_line(sandbox, body, construct):
    failure = run(sandbox, tab_program(body))
    assert failure.kind == "forbidden", failure
    assert construct in failure.message
    assert failure.line is not None and failure.line > 1


@pytest.mark.parametrize("body, event", [
    ("np.load('/etc/passwd')\nreturn X", "open"),
    ("pd.io.common.os.system('touch /tmp/efe-pwned')\nreturn X", "os.system"),
    ("pd.io.common.os.popen('true')\nreturn X", ("subprocess.Popen", "open")),
    ("pd.io.common.os.fork()\nreturn X", "os.fork"),
    ("pd.io.common.os.sys.modules['importlib'].import_module('socket').socket()\nreturn X", "socket"),
    ("pd.io.common.os.sys.modules['importlib'].import_module('subprocess').run(['true'])\nreturn X", "subprocess.Popen"),
    ("pd.io.common.os.sys.modules['importlib'].import_module('smtplib')\nreturn X", ("import", "os.listdir")),
    ("np.ctypeslib.ctypes.string_at(0)\nreturn X", "ctypes"),
    ("g = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
     "\ng.__init__.__globals__['system']('true')\nreturn X", "os.system"),
    ("code = compile('1', 'x', 'eval')\nreturn X", None),
])
def test_runtime_guard_blocks_without_ast_filter(runtime_only, body, event):
    failure = run(runtime_only, tab_program(body))
    assert isinstance(failure, SandboxFailure), failure
    if event is None:  # not even a builtin: the namespace has no compile
        assert failure.kind == "exception" and "compile" in failure.message
    else:
        assert failure.kind == "forbidden", failure
        seen = failure.detail.get("event", "") + failure.message
        assert any(e in seen for e in (event if isinstance(event, tuple) else (event,))), seen
    assert not Path("/tmp/efe-pwned").exists()
    assert_still_works(runtime_only)


def test_c_level_io_finds_no_files_and_no_network(runtime_only):
    """pyarrow opens files in C++, where no audit hook looks: the chroot is what stops it."""
    probe = run(runtime_only, IDENTITY_TAB)
    if not probe.isolation.startswith("namespaces+chroot"):
        pytest.skip(f"kernel refused namespaces here (isolation: {probe.isolation})")
    body = "f = pd.io.common.os.sys.modules['pyarrow'].OSFile('/etc/passwd')\nreturn X.assign(n=float(len(f.read())))"
    failure = run(runtime_only, tab_program(body))
    assert isinstance(failure, SandboxFailure), "a C-level read of /etc/passwd succeeded"
    assert failure.kind in ("exception", "forbidden")
    assert_still_works(runtime_only)


def test_swallowed_violation_still_reported(runtime_only):
    body = "try:\n    np.load('/etc/passwd')\nexcept Exception:\n    pass\nreturn X"
    failure = run(runtime_only, tab_program(body))
    assert failure.kind == "forbidden"


def test_reduce_payload_never_runs_in_parent(runtime_only, tmp_path):
    marker = tmp_path / "pwned"
    fit_body = f"""
class Payload:
    def __reduce__(self):
        return (pd.io.common.os.system, ('touch {marker}',))
return {{"payload": Payload()}}
"""
    failure = run(runtime_only, tab_program("return X", fit_body=fit_body))
    assert failure.kind == "invalid_output" and "Payload" in failure.message
    frame_body = f"""
class Payload:
    def __reduce__(self):
        return (pd.io.common.os.system, ('touch {marker}',))
out = X.copy()
out['evil'] = [Payload() for _ in range(len(X))]
return out
"""
    failure = run(runtime_only, tab_program(frame_body))
    assert failure.kind == "invalid_output"
    assert not marker.exists()


def test_exception_reports_type_message_and_program_line(sandbox):
    source = tab_program("return X.assign(c=X['missing'] * 2)")
    failure = run(sandbox, source)
    assert failure.kind == "exception"
    assert failure.detail["exception"] == "KeyError" and "missing" in failure.message
    assert source.splitlines()[failure.line - 1].strip() == "return X.assign(c=X['missing'] * 2)"
    assert failure.detail["op"] == "transform"


def test_interface_problems_are_named(sandbox):
    source = IDENTITY_TAB.replace("def transform(self, X: pd.DataFrame, state: dict)", "def transform(self, X)")
    failure = run(sandbox, source)
    assert failure.kind == "interface" and "transform" in failure.message


def test_worker_environment_is_scrubbed(runtime_only, monkeypatch):
    monkeypatch.setenv("EFE_TEST_SECRET_TOKEN", "hunter2")
    with Sandbox(sandbox_limits(timeout_s=5, cpu_s=60), static_check=False) as sb:
        body = ("env = pd.io.common.os.environ\n"
                "return X.assign(leak=float('EFE_TEST_SECRET_TOKEN' in env), n=float(len(env)))")
        result = run(sb, tab_program(body))
        assert isinstance(result, SandboxResult), result
        assert (result.outputs["T"]["leak"] == 0.0).all()


def test_child_cannot_fork_or_print_into_protocol(runtime_only):
    result = run(runtime_only, tab_program("print('x' * 100000)\nreturn X"))
    assert isinstance(result, SandboxResult)
    assert result.stdout.startswith("xxx") and len(result.stdout) <= 4000
    assert_still_works(runtime_only)


def test_children_are_reaped_after_the_worker_answers(sandbox):
    """The worker answers as soon as a child's result is complete and reaps the child afterwards."""
    for _ in range(3):
        assert isinstance(run(sandbox, IDENTITY_TAB), SandboxResult)
    sandbox.load("reap-check", {"X": X})  # any next request comes after the last child was reaped
    sandbox.drop("reap-check")
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == sandbox.worker_pid:
            children.append((stat.parent.name, fields[0]))
    assert children == [], f"worker children left (pid, state): {children}"
