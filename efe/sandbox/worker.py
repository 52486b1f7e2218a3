"""The sandbox worker: a fresh interpreter that holds only what programs may see, and forks.

Started with a scrubbed environment by ``efe.sandbox.client``. It pre-imports the modules a
program may use (so a forked child starts in milliseconds and needs no file access), caches
the data frames it is sent, and forks one child per request. It enforces the wall-clock limit
itself, per step of the plan (the child reports each step done), killing the child's whole
process group. Child output is forwarded as raw bytes: the
worker never decodes what a program produced.
"""

from __future__ import annotations

import collections  # noqa: F401 - pre-imported for programs (as are the modules in _preload)
import functools  # noqa: F401
import itertools  # noqa: F401
import json
import math  # noqa: F401
import os
import re  # noqa: F401
import select
import signal
import statistics  # noqa: F401
import struct
import sys
import tempfile
import time
import typing  # noqa: F401
from collections import OrderedDict

from efe.core import plain
from efe.sandbox import child, guard

MAX_CACHED_DATASETS = 16


def _preload() -> None:
    """Import everything programs may use, and warm the lazy paths of pandas and pyarrow."""
    # lazy: importing is this function's job, in the worker only (the parent imports this module for
    # its message framing and never needs scipy.stats)
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.pandas_compat  # noqa: F401
    import scipy.special  # noqa: F401
    import scipy.stats  # noqa: F401

    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": ["x", "y", "x"]})
    frame["c"] = frame["b"].astype("category")
    pa.Table.from_pandas(frame).to_pandas()
    frame.groupby("b")["a"].transform("mean")
    frame.describe(include="all")
    list(frame.itertuples())
    pd.qcut(frame["a"], 2, duplicates="drop")
    pd.cut(frame["a"], 2)
    pd.get_dummies(frame["b"])
    frame["a"].rolling(2).mean()
    frame["a"].rank()
    frame.merge(frame, on="b")
    np.percentile([1.0, 2.0], 50)
    scipy.stats.rankdata([1, 2])

    guard.prepare_seccomp()


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int) -> tuple[dict, bytes]:
    (hlen,) = struct.unpack("<I", _read_exact(fd, 4))
    header = json.loads(_read_exact(fd, hlen))
    (plen,) = struct.unpack("<Q", _read_exact(fd, 8))
    return header, _read_exact(fd, plen) if plen else b""


def write_message(fd: int, header: dict, payload: bytes = b"") -> None:
    head = json.dumps(header).encode()
    data = struct.pack("<I", len(head)) + head + struct.pack("<Q", len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _collect(pid: int, read_fd: int, timeout_s: float, max_bytes: int) -> dict:
    """Read the child's framed result; kill it on timeout or overflow.

    The deadline is per step: ``timeout_s`` from the fork, and again from each step the child reports
    done (``guard.STEP_DONE``). A plan that merges several calls so gives each call the limit a call of
    its own would have, and a program that hangs is killed ``timeout_s`` after its last step.
    """
    deadline = time.monotonic() + timeout_s
    buf = bytearray()
    expected = None
    verdict = None
    steps = 0          # steps the child reported done (the program's build is the first)
    framed = False     # the result's frame has started: no more step marks
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            verdict = "timeout"
            break
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            break
        if not framed:
            marks = len(chunk) - len(chunk.lstrip(guard.STEP_DONE))
            if marks:
                steps += marks
                deadline = time.monotonic() + timeout_s
            chunk = chunk[marks:]
            if not chunk:
                continue
            if chunk[:1] != guard.RESULT:
                verdict = "bad_stream"
                break
            framed, chunk = True, chunk[1:]
        buf.extend(chunk)
        if expected is None and len(buf) >= 8:
            (expected,) = struct.unpack_from("<Q", buf, 0)
            if expected > max_bytes:
                verdict = "too_large"
                break
        if expected is not None and len(buf) >= 8 + expected:
            break
    complete = verdict is None and expected is not None and len(buf) >= 8 + expected
    os.close(read_fd)
    result: dict = {"verdict": verdict, "steps_done": steps}
    if complete:  # the child is exiting on its own: answer now, reap it after the reply (see serve)
        result["payload"] = bytes(buf[8 : 8 + expected])
        result["reap_later"] = True
        return result
    if verdict is not None:
        _kill(pid)
    _, status = _reap(pid, time.monotonic() + 5)
    if os.WIFSIGNALED(status):
        result["signal"] = signal.Signals(os.WTERMSIG(status)).name
    elif os.WIFEXITED(status):
        result["exit_code"] = os.WEXITSTATUS(status)
    result["payload"] = b""
    return result


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int, deadline: float) -> tuple[int, int]:
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return done, status
        if time.monotonic() > deadline:
            _kill(pid)
            return os.waitpid(pid, 0)
        time.sleep(0.001)


def serve(in_fd: int, out_fd: int, empty_root: str) -> None:
    datasets: OrderedDict[str, dict] = OrderedDict()
    while True:
        try:
            header, payload = read_message(in_fd)
        except EOFError:
            return
        cmd = header.get("cmd")
        if cmd == "load":
            datasets[header["key"]] = plain.decode(payload)
            datasets.move_to_end(header["key"])
            while len(datasets) > MAX_CACHED_DATASETS:
                datasets.popitem(last=False)
            write_message(out_fd, {"ok": True})
        elif cmd == "drop":
            datasets.pop(header["key"], None)
            write_message(out_fd, {"ok": True})
        elif cmd == "ping":
            write_message(out_fd, {"ok": True, "pid": os.getpid()})
        elif cmd == "run":
            key = header.get("data")
            if key is not None and key not in datasets:
                write_message(out_fd, {"verdict": "missing_data", "key": key})
                continue
            request = dict(header)
            request["values"] = plain.decode(payload) if payload else {}
            request["empty_root"] = empty_root
            data = datasets.get(key, {}) if key is not None else {}
            read_fd, write_fd = os.pipe()
            start = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                child.run(request, data, write_fd)
            os.close(write_fd)
            limits = header["limits"]
            result = _collect(pid, read_fd, float(limits["timeout_s"]), int(limits["max_output_bytes"]))
            payload_out = result.pop("payload")
            reap_later = result.pop("reap_later", False)
            result["elapsed_s"] = time.perf_counter() - start
            write_message(out_fd, result, payload_out)
            if reap_later:  # a child that sent its whole result has only os._exit left to do
                _reap(pid, time.monotonic() + 5)
        else:
            write_message(out_fd, {"verdict": "bad_command", "cmd": cmd})


def main() -> None:
    in_fd, out_fd = sys.stdin.fileno(), os.dup(sys.stdout.fileno())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray prints must never corrupt the protocol stream
    _preload()
    empty_root = tempfile.mkdtemp(prefix="efe-sandbox-root-")
    os.chmod(empty_root, 0o555)
    try:
        write_message(out_fd, {"ready": True, "pid": os.getpid()})
        serve(in_fd, out_fd, empty_root)
    finally:
        os.rmdir(empty_root)


if __name__ == "__main__":
    main()
