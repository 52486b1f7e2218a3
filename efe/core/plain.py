"""Plain-data codec: the only way values cross a trust boundary.

Program state and program outputs are built by untrusted code, so they travel as JSON plus
binary blobs (``.npy`` without pickle, Arrow IPC streams) and never as pickles: decoding can
only ever rebuild numbers, strings, containers, arrays and pandas objects, never run code.
Types are checked exactly (``type(v) is dict``), so a subclass with a hostile ``__reduce__``
or ``__eq__`` is refused at encoding time with the path where it was found.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from collections import Counter, OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MAGIC = b"EFEPLAIN1"
_MAX_DEPTH = 64
_NUMPY_KINDS = "biufUS"
_CELL_TYPES = frozenset({type(None), str, bool, int, float})  # what an object column of a frame may hold


class PlainDataError(ValueError):
    """A value is not plain data (or a byte string is not a valid plain-data bundle)."""


def encode(value: Any) -> bytes:
    """Serialise ``value`` to bytes; raise PlainDataError naming the offending path."""
    blobs: list[bytes] = []
    tree = _encode_node(value, blobs, "value", 0)
    header = json.dumps(tree, allow_nan=True, separators=(",", ":")).encode()
    parts = [MAGIC, struct.pack("<I", len(header)), header, struct.pack("<I", len(blobs))]
    for blob in blobs:
        parts.append(struct.pack("<Q", len(blob)))
        parts.append(blob)
    return b"".join(parts)


def decode(data: bytes) -> Any:
    """Rebuild a value from ``encode`` output. Never unpickles; malformed input raises."""
    view = memoryview(data)
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise PlainDataError("not a plain-data bundle (bad magic)")
    pos = len(MAGIC)
    try:
        (hlen,) = struct.unpack_from("<I", view, pos)
        pos += 4
        tree = json.loads(bytes(view[pos : pos + hlen]))
        pos += hlen
        (nblobs,) = struct.unpack_from("<I", view, pos)
        pos += 4
        blobs = []
        for _ in range(nblobs):
            (blen,) = struct.unpack_from("<Q", view, pos)
            pos += 8
            if pos + blen > len(view):
                raise PlainDataError("truncated plain-data bundle")
            blobs.append(view[pos : pos + blen])
            pos += blen
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlainDataError(f"corrupt plain-data bundle: {exc}") from None
    return _decode_node(tree, blobs, 0)


def roundtrip(value: Any) -> Any:
    """What the other side of a boundary will see; used so evaluation and freezing agree."""
    return decode(encode(value))


def digest(value: Any) -> Any:
    """A fingerprint of ``value`` that changes with any change to it, far cheaper to send than the value.

    The sandbox returns fingerprints instead of copies for the checks that only ask "was this
    changed?" (an input mutated in place, a state mutated by transform). Frames and series get one
    hash per column, so a changed column can be named; anything else hashes its plain encoding.
    A value that cannot be hashed gets a fingerprint naming why, which equals no real one.
    """
    try:
        if type(value) is pd.DataFrame:
            return {"frame": [repr(c) for c in value.columns], "index": _index_hash(value.index),
                    "cells": [_series_hash(value.iloc[:, j]) for j in range(value.shape[1])]}
        if type(value) is pd.Series:
            return {"series": repr(value.name), "index": _index_hash(value.index), "cells": _series_hash(value)}
        return hashlib.sha256(encode(value)).hexdigest()
    except Exception as exc:  # noqa: BLE001 - whatever a program left behind must still get a fingerprint
        return f"unhashable: {type(exc).__name__}"


def _series_hash(s: pd.Series) -> str:
    values = s.to_numpy() if isinstance(s.dtype, np.dtype) and s.dtype.kind in "biufmM" else None
    if values is not None:  # the raw bytes of a numpy column: microseconds
        return hashlib.sha256(f"{s.dtype}|".encode() + np.ascontiguousarray(values).tobytes()).hexdigest()
    # dtype and inferred kind too: hashing text alone equates 1 with "1"
    head = f"{s.dtype}|{pd.api.types.infer_dtype(s, skipna=False)}|".encode()
    cells = pd.util.hash_array(np.asarray(s, dtype=object), categorize=False)
    return hashlib.sha256(head + cells.tobytes()).hexdigest()


def _index_hash(index: pd.Index) -> str:
    return _series_hash(index.to_series(index=pd.RangeIndex(len(index)))) + f"|{index.name!r}"


# --------------------------------------------------------------------------- encoding


def _encode_node(v: Any, blobs: list[bytes], path: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise PlainDataError(f"{path}: nesting deeper than {_MAX_DEPTH} levels")
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is int:
        if abs(v) >= 2**63:
            return {"$t": "bigint", "v": str(v)}
        return v
    if t is float:
        return v if math.isfinite(v) else {"$t": "float", "v": repr(v)}
    if t in (list, tuple, set, frozenset):
        items = list(v) if t in (list, tuple) else _sorted_if_possible(v)
        enc = [_encode_node(x, blobs, f"{path}[{i}]", depth + 1) for i, x in enumerate(items)]
        return enc if t is list else {"$t": t.__name__, "items": enc}
    if t in (dict, OrderedDict, defaultdict, Counter):
        pairs = []
        for k, x in v.items():
            key = _encode_node(k, blobs, f"{path} key {k!r}", depth + 1)
            pairs.append([key, _encode_node(x, blobs, f"{path}[{k!r}]", depth + 1)])
        return {"$t": "dict", "items": pairs}
    if isinstance(v, np.generic) and t.__module__ == "numpy":
        if v.dtype.kind not in _NUMPY_KINDS:
            raise PlainDataError(f"{path}: numpy scalar of dtype {v.dtype} is not plain data")
        item = v.item()
        if isinstance(item, bytes):
            item = item.decode("latin-1")
        elif isinstance(item, float) and not math.isfinite(item):
            item = repr(item)
        return {"$t": "npscalar", "dtype": v.dtype.str, "v": item}
    if t is np.ndarray:
        if v.dtype.kind not in _NUMPY_KINDS or v.dtype.fields is not None:
            raise PlainDataError(f"{path}: numpy array of dtype {v.dtype} is not plain data")
        buf = io.BytesIO()
        np.save(buf, v, allow_pickle=False)
        blobs.append(buf.getvalue())
        return {"$t": "ndarray", "blob": len(blobs) - 1}
    if t is pd.DataFrame:
        blobs.append(_frame_to_ipc(v, path))
        return {"$t": "frame", "blob": len(blobs) - 1}
    if t is pd.Series:
        name = _encode_node(v.name, blobs, f"{path}.name", depth + 1)
        frame = v.to_frame(name="__value__")
        blobs.append(_frame_to_ipc(frame, path))
        return {"$t": "series", "blob": len(blobs) - 1, "name": name}
    if isinstance(v, pd.Index) and t.__module__.startswith("pandas"):
        series = pd.Series(v, name="__index__")
        blobs.append(_frame_to_ipc(series.to_frame(), path))
        name = _encode_node(v.name, blobs, f"{path}.name", depth + 1)
        return {"$t": "index", "blob": len(blobs) - 1, "name": name}
    raise PlainDataError(
        f"{path} holds a {t.__module__}.{t.__qualname__}; only numbers, strings, lists, dicts, "
        "numpy arrays and pandas objects are plain data"
    )


def _sorted_if_possible(items: Any) -> list:
    try:
        return sorted(items)
    except TypeError:
        return list(items)


def _frame_to_ipc(frame: pd.DataFrame, path: str) -> bytes:
    if not frame.columns.is_unique:
        raise PlainDataError(f"{path}: DataFrame has duplicate column names")
    for col in frame.columns:
        if type(col) is not str:
            raise PlainDataError(f"{path}: DataFrame column name {col!r} is not a string")
    for col, dtype in frame.dtypes.items():
        if dtype == object and not set(map(type, frame[col].to_numpy())) <= _CELL_TYPES:  # exact types, fast
            bad = frame[col].map(lambda x: type(x) not in _CELL_TYPES)
            if bool(bad.any()):
                kind = type(frame[col][bad].iloc[0]).__name__
                raise PlainDataError(f"{path}: column {col!r} holds {kind} objects")
    try:
        table = pa.Table.from_pandas(frame, preserve_index=True, nthreads=1)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise PlainDataError(f"{path}: DataFrame cannot be stored as plain data ({exc})") from None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


# --------------------------------------------------------------------------- decoding


def _decode_node(node: Any, blobs: list, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise PlainDataError("plain-data bundle nested too deeply")
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode_node(x, blobs, depth + 1) for x in node]
    if not isinstance(node, dict) or "$t" not in node:
        raise PlainDataError("corrupt plain-data bundle: unknown node")
    tag = node["$t"]
    if tag == "dict":
        out = {}
        for key, val in node["items"]:
            out[_hashable(_decode_node(key, blobs, depth + 1))] = _decode_node(val, blobs, depth + 1)
        return out
    if tag in ("tuple", "set", "frozenset"):
        items = [_decode_node(x, blobs, depth + 1) for x in node["items"]]
        if tag == "tuple":
            return tuple(items)
        members = (_hashable(x) for x in items)
        return set(members) if tag == "set" else frozenset(members)
    if tag == "float":
        return float(node["v"])
    if tag == "bigint":
        return int(node["v"])
    if tag == "npscalar":
        dtype = np.dtype(node["dtype"])
        if dtype.kind not in _NUMPY_KINDS:
            raise PlainDataError(f"corrupt plain-data bundle: dtype {dtype}")
        value = node["v"]
        if dtype.kind == "f" and isinstance(value, str):
            value = float(value)
        if dtype.kind == "S":
            value = value.encode("latin-1")
        return np.array(value, dtype=dtype)[()]
    if tag == "ndarray":
        arr = np.load(io.BytesIO(bytes(blobs[node["blob"]])), allow_pickle=False)
        return arr
    if tag == "frame":
        return _ipc_to_frame(blobs[node["blob"]])
    if tag == "series":
        frame = _ipc_to_frame(blobs[node["blob"]])
        series = frame["__value__"]
        series.name = _decode_node(node["name"], blobs, depth + 1)
        return series
    if tag == "index":
        frame = _ipc_to_frame(blobs[node["blob"]])
        index = pd.Index(frame["__index__"].to_numpy())
        index.name = _decode_node(node["name"], blobs, depth + 1)
        return index
    raise PlainDataError(f"corrupt plain-data bundle: unknown tag {tag!r}")


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(x) for x in value)
    if isinstance(value, np.ndarray):
        raise PlainDataError("corrupt plain-data bundle: array used as a key")
    return value


def _ipc_to_frame(blob: Any) -> pd.DataFrame:
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(bytes(blob)))
        table = reader.read_all()
    except pa.ArrowException as exc:
        raise PlainDataError(f"corrupt Arrow stream in plain-data bundle: {exc}") from None
    return table.to_pandas(use_threads=False)


# --------------------------------------------------------------------------- on disk


def dump_dir(value: Any, directory: str | Path, name: str = "state") -> list[Path]:
    """Write ``value`` as ``<name>.json`` plus arrays (.npy) and tables (.parquet) beside it.

    The JSON is readable on its own; binary leaves are referenced by file name.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    blobs: list[bytes] = []
    tree = _encode_node(value, blobs, "value", 0)
    written: list[Path] = []
    files: dict[int, str] = {}

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for x in node:
                visit(x)
        elif isinstance(node, dict):
            if "blob" in node and node.get("$t") in ("ndarray", "frame", "series", "index"):
                i = node.pop("blob")
                if node["$t"] == "ndarray":
                    rel = f"{name}_arrays/{i:04d}.npy"
                    (directory / rel).parent.mkdir(parents=True, exist_ok=True)
                    (directory / rel).write_bytes(blobs[i])
                else:
                    rel = f"{name}_tables/{i:04d}.parquet"
                    (directory / rel).parent.mkdir(parents=True, exist_ok=True)
                    table = pa.ipc.open_stream(pa.py_buffer(blobs[i])).read_all()
                    pq.write_table(table, directory / rel)
                node["file"] = rel
                files[i] = rel
                written.append(directory / rel)
            for x in node.values():
                if isinstance(x, (list, dict)):
                    visit(x)

    visit(tree)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(tree, allow_nan=True, indent=1))
    return [path, *written]


def load_dir(directory: str | Path, name: str = "state") -> Any:
    """Inverse of ``dump_dir``: JSON, ``np.load(allow_pickle=False)`` and Parquet only."""
    directory = Path(directory).resolve()
    tree = json.loads((directory / f"{name}.json").read_text())
    blobs: list = []

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for x in node:
                visit(x)
        elif isinstance(node, dict):
            if "file" in node and node.get("$t") in ("ndarray", "frame", "series", "index"):
                path = (directory / node.pop("file")).resolve()
                if directory not in path.parents:
                    raise PlainDataError(f"state file outside the frozen directory: {path}")
                if node["$t"] == "ndarray":
                    blobs.append(path.read_bytes())
                else:
                    table = pq.read_table(path)
                    sink = pa.BufferOutputStream()
                    with pa.ipc.new_stream(sink, table.schema) as writer:
                        writer.write_table(table)
                    blobs.append(sink.getvalue().to_pybytes())
                node["blob"] = len(blobs) - 1
            for x in node.values():
                if isinstance(x, (list, dict)):
                    visit(x)

    visit(tree)
    return _decode_node(tree, blobs, 0)
