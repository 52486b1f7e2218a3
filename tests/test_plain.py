"""The plain-data codec: exact round trips, and nothing that could run code ever decodes."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pandas as pd
import pytest

from efe.core import plain


def test_round_trip_keeps_types_and_values():
    frame = pd.DataFrame({"x": [1.5, np.nan], "s": ["a", None], "c": pd.Categorical(["u", "v"]),
                          "i": [1, 2], "b": [True, False]}, index=[10, 20])
    state = {"f": 0.1, 3: "three", (1, "k"): [1, 2.5], None: np.float32(1.25), "arr": np.arange(3.0),
             "series": frame["x"], "frame": frame, "nan": float("nan"), "big": 2**80, "set": {2, 1}}
    out = plain.roundtrip(state)
    pd.testing.assert_frame_equal(out["frame"], frame)
    pd.testing.assert_series_equal(out["series"], frame["x"])
    assert type(out[None]) is np.float32 and out[None] == np.float32(1.25)
    assert out[(1, "k")] == [1, 2.5] and out["big"] == 2**80 and out["set"] == {1, 2}
    assert np.isnan(out["nan"]) and out["arr"].tobytes() == np.arange(3.0).tobytes()


def test_refuses_objects_and_subclasses_with_their_path():
    class Payload:
        def __reduce__(self):
            raise AssertionError("must never be called")

    class Dict(dict):
        pass

    with pytest.raises(plain.PlainDataError, match=r"value\['a'\]\[1\] holds a .*Payload"):
        plain.encode({"a": [1, Payload()]})
    with pytest.raises(plain.PlainDataError, match="Dict"):
        plain.encode(Dict(a=1))
    with pytest.raises(plain.PlainDataError, match="dtype object"):
        plain.encode(np.array([Payload()], dtype=object))
    with pytest.raises(plain.PlainDataError, match="Payload"):
        plain.encode(pd.DataFrame({"x": [Payload()]}))


def test_decoding_a_pickled_array_is_refused(tmp_path):
    """A forged bundle whose .npy blob is a pickled object array must not be unpickled."""
    marker = tmp_path / "ran"
    buf = io.BytesIO()
    np.save(buf, np.array([{"k": str(marker)}], dtype=object), allow_pickle=True)
    blob = buf.getvalue()
    header = json.dumps({"$t": "ndarray", "blob": 0}).encode()
    forged = plain.MAGIC + struct.pack("<I", len(header)) + header + struct.pack("<I", 1)
    forged += struct.pack("<Q", len(blob)) + blob
    with pytest.raises(ValueError, match="allow_pickle"):
        plain.decode(forged)


@pytest.mark.parametrize("data", [b"", b"pickle\x80", plain.MAGIC + b"\x00"])
def test_corrupt_bundles_raise(data):
    with pytest.raises(plain.PlainDataError):
        plain.decode(data)
