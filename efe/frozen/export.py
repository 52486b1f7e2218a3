"""A frozen tabular program as one self-contained module (the command: ``python -m efe.export``).

The module depends only on numpy and pandas (plus whatever the program itself imports from
the allowed list): the program's code, its fitted state as a JSON literal (or a sidecar JSON
file when large) with a small decoder, and ``transform(X)``. Its docstring lists the features,
the rationale the program's comments give, and the held-out scores.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from efe.core.contracts import EVOLVE_END, EVOLVE_START
from efe.core.errors import EfeError
from efe.core.pysource import parse_python
from efe.frozen.freeze import FrozenProgramError, load_frozen
from efe.rundir.atomic import atomic_write_text

LITERAL_LIMIT = 2_000_000


class ExportError(EfeError, TypeError):
    """A fitted state holding a value the standalone module cannot carry (also a TypeError)."""

# Kept as source text: it is written verbatim into exported modules.
DECODER_SOURCE = '''
def _decode(node):
    """Rebuild the fitted state from its portable JSON form (numbers, text, lists, dicts, arrays, tables)."""
    if isinstance(node, list):
        return [_decode(x) for x in node]
    if not isinstance(node, dict):
        return node
    tag = node["$t"]
    if tag == "dict":
        return {_key(_decode(k)): _decode(v) for k, v in node["items"]}
    if tag == "tuple":
        return tuple(_decode(x) for x in node["items"])
    if tag in ("set", "frozenset"):
        items = (_key(_decode(x)) for x in node["items"])
        return set(items) if tag == "set" else frozenset(items)
    if tag == "float":
        return float(node["v"])
    if tag == "bigint":
        return int(node["v"])
    if tag == "npscalar":
        return np.array(_scalar(node["v"]), dtype=node["dtype"])[()]
    if tag == "ndarray":
        return np.array([_scalar(v) for v in node["data"]], dtype=node["dtype"]).reshape(node["shape"])
    if tag == "series":
        return _column(node["column"], _index(node["index"]), _decode(node["name"]))
    if tag == "index":
        return _index(node["index"])
    if tag == "frame":
        index = _index(node["index"])
        data = {name: _column(col, index, name) for name, col in zip(node["columns"], node["data"])}
        return pd.DataFrame(data, index=index, columns=node["columns"])
    raise ValueError("unknown state node " + repr(tag))


def _scalar(v):
    return float(v) if isinstance(v, str) and v in ("nan", "inf", "-inf") else v


def _key(v):
    return tuple(_key(x) for x in v) if isinstance(v, list) else v


def _index(spec):
    values = [_scalar(v) for v in spec["values"]]
    if spec.get("range"):
        start, stop, step = spec["range"]
        return pd.RangeIndex(start, stop, step, name=spec.get("name"))
    return pd.Index(np.array(values, dtype=spec["dtype"]) if spec["dtype"] != "object" else values,
                    dtype=spec["dtype"], name=spec.get("name"))


def _column(col, index, name):
    if col["dtype"] == "category":
        values = pd.Categorical.from_codes(col["codes"], categories=col["categories"], ordered=col["ordered"])
        return pd.Series(values, index=index, name=name)
    values = [_scalar(v) for v in col["values"]]
    if col["dtype"] == "object":
        return pd.Series(values, index=index, name=name, dtype="object")
    return pd.Series(np.array(values, dtype=col["dtype"]), index=index, name=name)
'''


def to_portable(value: Any) -> Any:
    """The plain-data tree with every array and table written out as JSON lists."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if type(value) is int:
        return value if abs(value) < 2**63 else {"$t": "bigint", "v": str(value)}
    if type(value) is float:
        return value if np.isfinite(value) else {"$t": "float", "v": repr(value)}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_portable(x) for x in value]
        return items if type(value) is list else {"$t": type(value).__name__, "items": items}
    if isinstance(value, dict):
        return {"$t": "dict", "items": [[to_portable(k), to_portable(v)] for k, v in value.items()]}
    if isinstance(value, np.generic):
        return {"$t": "npscalar", "dtype": value.dtype.str, "v": _json_scalar(value.item())}
    if isinstance(value, np.ndarray):
        return {"$t": "ndarray", "dtype": value.dtype.str, "shape": list(value.shape),
                "data": [_json_scalar(v) for v in value.ravel().tolist()]}
    if isinstance(value, pd.DataFrame):
        return {"$t": "frame", "columns": [str(c) for c in value.columns], "index": _index_spec(value.index),
                "data": [_column_spec(value[c]) for c in value.columns]}
    if isinstance(value, pd.Series):
        return {"$t": "series", "name": to_portable(value.name), "index": _index_spec(value.index),
                "column": _column_spec(value)}
    if isinstance(value, pd.Index):
        return {"$t": "index", "index": _index_spec(value)}
    raise ExportError(f"cannot export state value of type {type(value).__name__}")


def _json_scalar(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return repr(v)
    if isinstance(v, bytes):
        return v.decode("latin-1")
    return v


def _index_spec(index: pd.Index) -> dict:
    if isinstance(index, pd.RangeIndex):
        return {"range": [index.start, index.stop, index.step], "name": index.name, "values": [], "dtype": "int64"}
    dtype = str(index.dtype)
    if dtype not in ("object", "str") and not re.match(r"^(u?int|float|bool)", dtype):
        raise ExportError(f"cannot export an index of dtype {dtype}")
    return {"values": [_json_scalar(v) for v in index.tolist()], "dtype": "object" if dtype == "str" else dtype,
            "name": index.name}


def _column_spec(s: pd.Series) -> dict:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return {"dtype": "category", "codes": s.cat.codes.tolist(), "categories": s.cat.categories.tolist(),
                "ordered": bool(s.cat.ordered)}
    dtype = str(s.dtype)
    if dtype not in ("object", "str") and not re.match(r"^(u?int|float|bool)", dtype):
        raise ExportError(f"cannot export a column of dtype {dtype}")
    values = [None if (isinstance(v, float) and np.isnan(v) and dtype in ("object", "str")) else _json_scalar(v)
              for v in s.tolist()]
    return {"dtype": "object" if dtype == "str" else dtype, "values": values}


def _program_parts(source: str) -> tuple[str, str]:
    """(code without the module docstring, the comments inside the EVOLVE block)."""
    tree = parse_python(source)
    body = source
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(getattr(tree.body[0], "value", None), ast.Constant):
        end = tree.body[0].end_lineno
        body = "\n".join(source.splitlines()[end:]).lstrip("\n")
    start, stop = source.find(EVOLVE_START), source.find(EVOLVE_END)
    block = source[start + len(EVOLVE_START):stop] if 0 <= start < stop else source
    comments = [line.strip().lstrip("#").strip() for line in block.splitlines()
                if line.strip().startswith("#") and "efe-moves:" not in line]
    return body, "\n".join(dict.fromkeys(c for c in comments if c))


def render_module(frozen_dir: Path, *, sidecar: Path | None) -> str:
    frozen = load_frozen(frozen_dir)
    m = frozen.manifest
    if m.get("setting") != "tab":
        raise FrozenProgramError("efe.export writes tabular feature programs; time-series programs are fitted per series "
                         "(use efe.load_program)")
    code, rationale = _program_parts(frozen.source)
    imports = sorted({n.split(".")[0] for n in re.findall(r"^\s*(?:import|from)\s+([\w.]+)", code, re.M)}
                     - {"numpy", "pandas", "__future__"} - set(sys.stdlib_module_names))
    portable = json.dumps(to_portable(frozen.state), allow_nan=True, separators=(",", ":"))
    heldout = "\n".join(f"    {r['model']}: {r['auc_no_fe']:.4f} -> {r['auc_efe']:.4f} ({r['delta']:+.4f})"
                        for r in m.get("heldout", [])) or "    (not recorded)"
    schema = [c["name"] for c in m.get("input_schema", [])]
    new, dropped = m.get("new_columns", []), m.get("dropped_columns", [])
    extra_deps = f"\nIt also imports: {', '.join(imports)} (from the program itself).\n" if imports else ""
    rationale_text = "\n".join("    " + line for line in rationale.splitlines()) or "    (none given)"
    if sidecar is None:
        state_code = f"_STATE_JSON = r'''{portable}'''\nSTATE = _decode(json.loads(_STATE_JSON))"
    else:
        state_code = (f"_SIDECAR = Path(__file__).with_name({sidecar.name!r})\n"
                      "STATE = _decode(json.loads(_SIDECAR.read_text()))")
    return f'''"""Feature program exported by efe (dataset {m.get('dataset')!r}, target {m.get('target')!r}).

Input columns: {', '.join(schema)}
New features ({len(new)}): {', '.join(new) or 'none'}
Dropped columns ({len(dropped)}): {', '.join(dropped) or 'none'}

Rationale (the program's own comments):
{rationale_text}

Held-out {m.get('metric') or 'ROC-AUC'}, no feature engineering -> this program:
{heldout}

Usage:
    import pandas as pd
    import {{module}}
    features = {{module}}.transform(pd.read_csv("data.csv"))

Depends on numpy and pandas only.{extra_deps}
Program sha256: {m.get('files', {}).get('program.py', '?')}
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

# ----------------------------------------------------------------------------- the program
{code.rstrip()}

# ----------------------------------------------------------------------------- its fitted state
{DECODER_SOURCE.strip()}


{state_code}

INPUT_COLUMNS = {schema!r}
OUTPUT_COLUMNS = {m.get('output_columns', [])!r}
_PROGRAM = build_feature_program(0)


def transform(X: pd.DataFrame) -> pd.DataFrame:
    """The engineered features for the rows of X (each row on its own; any batch size)."""
    missing = [c for c in INPUT_COLUMNS if c not in X.columns]
    if missing:
        raise ValueError(f"columns missing from the input: {{missing}} (expected: {{INPUT_COLUMNS}})")
    return _PROGRAM.transform(X[INPUT_COLUMNS], STATE)
'''


def write_module(frozen_dir: Path, out: Path, sidecar: str = "auto") -> list[Path]:
    """Write the standalone module (and its state sidecar when large or asked for); the paths written."""
    state_json = json.dumps(to_portable(load_frozen(frozen_dir).state), allow_nan=True)
    use_sidecar = sidecar == "true" or (sidecar == "auto" and len(state_json) > LITERAL_LIMIT)
    sidecar_path = out.with_suffix(".state.json") if use_sidecar else None
    text = render_module(frozen_dir, sidecar=sidecar_path).replace("{module}", out.stem)
    if sidecar_path is not None:  # first, so that the module never points to a missing or older state
        atomic_write_text(sidecar_path, state_json)
    atomic_write_text(out, text)
    return [out] if sidecar_path is None else [out, sidecar_path]

