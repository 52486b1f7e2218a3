#!/usr/bin/env python3
"""Run OpenFE (the non-LLM feature-engineering baseline) on one train/test split.

    .venv/bin/python scripts/openfe_runner.py --train train.parquet --test test.parquet \\
        --target label --out DIR [--n-jobs 1] [--max-features 10] [--time-limit 300] [--seed 0]
        [--task auto|classification|regression] [--categorical COL ...]
        [--n-data-blocks 0] [--min-candidate-features 2000] [--no-install]
    .venv/bin/python scripts/openfe_runner.py --check

OpenFE is fitted on the training table only; the selected features are then computed for train and
test together (OpenFE's `transform`, which is how its group-by operators are defined). Writes

    DIR/train.parquet, DIR/test.parquet   original feature columns + autoFE_f_0..k-1, target left
                                          out, rows in input order, index not kept
    DIR/features.json                     {"features": [formula, ...], "count", "wall_time_s", ...}
    DIR/openfe.log                        OpenFE's and LightGBM's console output

and exits 0, or exits non-zero with a one-line reason on stderr (bad input, OpenFE error, time limit).

Environment
-----------
OpenFE 0.0.12 (PyPI, 2023, pure Python) shares the project's env: it installs next to numpy 2.4.6,
pandas 2.3.3, scikit-learn 1.9.1, lightgbm 4.7.0, scipy 1.17.1, pyarrow 26.0.1, tqdm 4.70.1 without
changing any of them (its requirements are lower bounds only). Run this script with the project's
interpreter. If `import openfe` fails there, the runner installs the one pinned wheel on first use,
without dependencies, into the git-ignored folder `.venv-openfe/site-packages` (printing a notice):

    <this python> -m pip install --no-deps --target .venv-openfe/site-packages openfe==0.0.12

and puts that folder on sys.path; nothing in `.venv` is modified. `--no-install` turns that off.

Shims applied at import (openfe 0.0.12 vs. the project's versions):
  * `openfe.FeatureSelector` imports matplotlib.pyplot at module level (undeclared dependency, only
    used for plots we never call); a stub module is registered when matplotlib is not installed.
  * `mean_squared_error(..., squared=False)` (removed in scikit-learn 1.6) is used for the 'rmse'
    metric, i.e. every regression fit; the names in openfe.openfe / openfe.FeatureSelector are
    replaced by a wrapper that maps squared=False to root_mean_squared_error.
  * OpenFE's workers call `exit()` on any error, which reaches the caller as SystemExit(None), i.e. a
    silent exit status 0. The fit therefore runs in a child process whose failure is turned into a
    non-zero exit here; the same child process enforces --time-limit (its process group is killed).
  * Column names are mapped to f0..fN inside OpenFE (its formula parser splits on "()+-*/,") and back
    in features.json; FutureWarnings (groupby observed=) and LightGBM eval_set deprecations are muted.

Defaults: n_jobs=1, max_features=10, time_limit=300 s, seed=0, min_candidate_features=2000 (OpenFE's),
n_data_blocks=0 = auto. OpenFE's own n_data_blocks=8 first scores every candidate on 1/8 of the rows and,
when there are fewer candidates than min_candidate_features (every table up to ~20 columns: 10 numeric
columns give 350 candidates, 8 numeric + 2 categorical 334, 20 numeric 1300), then scores all of them
again on all rows, so the first pass is wasted; auto uses 1 block there and OpenFE's 8 above that.
Measured wall time of fit+transform (inside the worker; the process adds ~1.7 s), 2-core machine:

    table (train rows x columns)              candidates  n_data_blocks=8   1 (auto)   auto, n_jobs=2
    800 x 10 (8 numeric + 2 categorical)         334          4.4 s          3.1 s        2.1 s
    800 x 10 (6 numeric + 4 low-cardinality)     594          7.8 s          5.2 s        3.3 s
    2400 x 30 (20 num + 5 low-card. + 5 cat)    3660         37.2 s (auto)   40.6 s       20.4 s (8 blocks)

Columns with <= 100 distinct numeric values are "ordinal" to OpenFE (used as numeric and categorical),
which multiplies the candidates; the count and the blocks used are in features.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

OPENFE_VERSION = "0.0.12"
ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / ".venv-openfe" / "site-packages"
TESTED = {  # versions the shims were checked against
    "numpy": "2.4.6", "pandas": "2.3.3", "scikit-learn": "1.9.1", "lightgbm": "4.7.0",
    "scipy": "1.17.1", "pyarrow": "26.0.1", "tqdm": "4.70.1",
}

DEFAULTS = dict(n_jobs=1, max_features=10, time_limit=300.0, seed=0, n_data_blocks=0,
                min_candidate_features=2000)


class RunnerError(Exception):
    pass


# --------------------------------------------------------------------------- openfe import + shims

def _stub_matplotlib() -> None:
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        import types

        mpl = types.ModuleType("matplotlib")
        plt = types.ModuleType("matplotlib.pyplot")
        mpl.pyplot = plt  # type: ignore[attr-defined]
        sys.modules.setdefault("matplotlib", mpl)
        sys.modules.setdefault("matplotlib.pyplot", plt)


def _mean_squared_error_compat(y_true, y_pred, *args, squared=True, **kwargs):
    from sklearn import metrics

    if squared:
        return metrics.mean_squared_error(y_true, y_pred, *args, **kwargs)
    if hasattr(metrics, "root_mean_squared_error"):
        return metrics.root_mean_squared_error(y_true, y_pred, *args, **kwargs)
    return metrics.mean_squared_error(y_true, y_pred, *args, squared=False, **kwargs)


def _install_openfe() -> None:
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    print(f"[openfe_runner] openfe not importable in {sys.executable}; installing openfe=={OPENFE_VERSION} "
          f"(no dependencies) into {VENDOR_DIR} (one time)", file=sys.stderr, flush=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
           "--target", str(VENDOR_DIR), f"openfe=={OPENFE_VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunnerError(f"pip install openfe=={OPENFE_VERSION} failed: {proc.stderr.strip()[-800:]}")


def ensure_openfe(allow_install: bool = True) -> None:
    """Make `openfe` findable (installing it if allowed) without importing it (the parent stays light)."""
    import importlib.util

    if VENDOR_DIR.is_dir() and str(VENDOR_DIR) not in sys.path:
        sys.path.append(str(VENDOR_DIR))
    if importlib.util.find_spec("openfe") is not None:
        return
    if not allow_install:
        raise RunnerError(f"openfe is not installed for {sys.executable} (and --no-install was given)")
    _install_openfe()
    if str(VENDOR_DIR) not in sys.path:
        sys.path.append(str(VENDOR_DIR))
    importlib.invalidate_caches()
    if importlib.util.find_spec("openfe") is None:
        raise RunnerError(f"openfe not importable after installing it into {VENDOR_DIR}")


def import_openfe(allow_install: bool = True):
    """Import openfe (installing the pinned wheel into VENDOR_DIR if needed) and apply the shims."""
    if VENDOR_DIR.is_dir() and str(VENDOR_DIR) not in sys.path:
        sys.path.append(str(VENDOR_DIR))  # appended: an openfe installed in the env wins
    _stub_matplotlib()
    try:
        import openfe  # noqa: F401
    except ImportError as exc:
        if not allow_install or getattr(exc, "name", None) not in (None, "openfe"):
            raise RunnerError(f"cannot import openfe: {exc}") from exc
        _install_openfe()
        if str(VENDOR_DIR) not in sys.path:
            sys.path.append(str(VENDOR_DIR))
        import importlib

        importlib.invalidate_caches()
        try:
            import openfe  # noqa: F401
        except ImportError as exc2:
            raise RunnerError(f"cannot import openfe after installing it: {exc2}") from exc2
    import openfe
    import openfe.FeatureSelector as ofe_fs
    import openfe.openfe as ofe_main

    ofe_main.mean_squared_error = _mean_squared_error_compat
    ofe_fs.mean_squared_error = _mean_squared_error_compat
    return openfe


def _version_drift() -> list[str]:
    from importlib import metadata

    out = []
    for dist, want in TESTED.items():
        try:
            have = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out.append(f"{dist} missing")
            continue
        if have != want:
            out.append(f"{dist} {have} (tested {want})")
    return out


def check(allow_install: bool) -> int:
    try:
        openfe = import_openfe(allow_install)
    except RunnerError as exc:
        print(f"openfe unavailable: {exc}", file=sys.stderr)
        return 1
    print(f"openfe ok {openfe.__version__} ({sys.executable})")
    drift = _version_drift()
    if drift:
        print("[openfe_runner] warning: untested versions: " + ", ".join(drift), file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- the fit (child process)

def _render(tree, names: dict[str, str]) -> str:
    """openfe.tree_to_formula with the internal column names mapped back to the originals."""
    children = getattr(tree, "children", None)
    if not children:
        return names.get(tree.name, tree.name)
    parts = [_render(c, names) for c in children]
    if tree.name in ("+", "-", "*", "/"):
        return "(" + parts[0] + tree.name + parts[1] + ")"
    return tree.name + "(" + ",".join(parts) + ")"


def _tree(tree, names: dict[str, str]):
    """The same formula as nested lists, [op, child, ...] with column names as leaves (unambiguous)."""
    children = getattr(tree, "children", None)
    if not children:
        return names.get(tree.name, tree.name)
    return [tree.name, *[_tree(c, names) for c in children]]


def _prepare(args):
    import numpy as np
    import pandas as pd

    train = pd.read_parquet(args.train)
    test = pd.read_parquet(args.test)
    if args.target not in train.columns:
        raise RunnerError(f"target column {args.target!r} not in {args.train}")
    y = train[args.target]
    if y.isna().any():
        raise RunnerError(f"target {args.target!r} has {int(y.isna().sum())} missing values")
    X_tr = train.drop(columns=[args.target])
    X_te = test.drop(columns=[args.target], errors="ignore")
    missing = [c for c in X_tr.columns if c not in X_te.columns]
    if missing:
        raise RunnerError(f"test table lacks feature columns {missing[:10]}")
    X_te = X_te[list(X_tr.columns)]
    if X_tr.shape[1] == 0:
        raise RunnerError("no feature columns")
    if len(X_tr) < 50:
        raise RunnerError(f"training table too small for OpenFE ({len(X_tr)} rows)")

    if args.categorical is not None:
        unknown = [c for c in args.categorical if c not in X_tr.columns]
        if unknown:
            raise RunnerError(f"--categorical names unknown columns {unknown}")
        cat_cols = list(args.categorical)
    else:
        cat_cols = [c for c in X_tr.columns
                    if not (pd.api.types.is_numeric_dtype(X_tr[c]) or pd.api.types.is_bool_dtype(X_tr[c]))]

    # Internal frame: safe names f0..fN, positional index, categoricals as object with NaN for missing.
    orig_cols = [str(c) for c in X_tr.columns]
    safe = {c: f"f{i}" for i, c in enumerate(X_tr.columns)}
    names_back = {v: str(k) for k, v in safe.items()}

    cat_safe = {safe[c] for c in cat_cols}
    # Categoricals become float codes (NaN = missing) shared by train and test: OpenFE round-trips the
    # table through feather, which turns NaN in object columns into None, and its group-by operators
    # then fail on `temp.loc[None]`. The codes only have to be consistent between the two tables.
    codes = {}
    for c in cat_cols:
        both = pd.concat([X_tr[c], X_te[c]], ignore_index=True)
        values = both[both.notna()].astype(str).unique().tolist()
        codes[safe[c]] = {v: float(i) for i, v in enumerate(sorted(values))}

    def internal(df):
        out = df.rename(columns=safe).reset_index(drop=True)
        for c in out.columns:
            s = out[c]
            if c in cat_safe:
                out[c] = s.astype(object).where(s.notna(), None).map(
                    lambda v, m=codes[c]: np.nan if v is None else m[str(v)]).astype("float64")
            elif pd.api.types.is_bool_dtype(s):
                out[c] = s.astype("float64")
            elif pd.api.types.is_numeric_dtype(s):
                out[c] = s.astype("float64")
            else:
                raise RunnerError(f"column {names_back[c]!r} has dtype {s.dtype}; pass it with --categorical")
        return out

    Xi_tr = internal(X_tr)
    Xi_te = internal(X_te)
    Xi_te.index = pd.RangeIndex(len(Xi_tr), len(Xi_tr) + len(Xi_te))
    cat_internal = [safe[c] for c in cat_cols]

    task = args.task
    if task == "auto":
        numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
        integral = numeric and np.allclose(y.astype(float) % 1, 0)
        task = "classification" if (not numeric or (integral and y.nunique() < 20)) else "regression"
    if task == "regression":
        y_i = pd.DataFrame({"label": y.astype("float64").to_numpy()})
    else:
        y_i = pd.DataFrame({"label": pd.Series(y.to_numpy()).astype("category").cat.codes.astype("int64")})
        if y_i["label"].nunique() < 2:
            raise RunnerError("classification target has a single class")
    return X_tr, X_te, Xi_tr, Xi_te, y_i, cat_internal, names_back, task, orig_cols


def _count_candidates(openfe, X, cat_cols) -> int:
    """Number of order-1 candidates OpenFE.fit will enumerate (same ordinal rule: <= 100 distinct)."""
    ordinal = [c for c in X.columns if c not in cat_cols and X[c].nunique() <= 100]
    numerical = [c for c in X.columns if c not in cat_cols and c not in ordinal]
    return len(openfe.get_candidate_features(numerical_features=numerical, categorical_features=list(cat_cols),
                                             ordinal_features=ordinal))


def _worker(args) -> int:
    import multiprocessing as mp
    import warnings

    if sys.platform.startswith("linux"):
        mp.set_start_method("fork", force=True)  # OpenFE pickles bound methods of a live object
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*eval_set.*")
    import pandas as pd

    openfe = import_openfe(allow_install=False)
    out = Path(args.out)
    t0 = time.perf_counter()
    X_tr, X_te, Xi_tr, Xi_te, y_i, cat_internal, names_back, task, orig_cols = _prepare(args)
    tmp = out / ".openfe_tmp.feather"
    n_candidates = _count_candidates(openfe, Xi_tr, cat_internal)
    n_blocks = args.n_data_blocks
    if n_blocks == 0:  # auto: halving only pays off once there are more candidates than it keeps
        n_blocks = 1 if n_candidates <= args.min_candidate_features else 8
    print(f"[openfe_runner] {n_candidates} candidate features, n_data_blocks={n_blocks}", flush=True)
    ofe = openfe.OpenFE()
    fit_kwargs = dict(
        data=Xi_tr, label=y_i, task=task, categorical_features=cat_internal, n_jobs=args.n_jobs,
        seed=args.seed, n_data_blocks=n_blocks, min_candidate_features=args.min_candidate_features,
        tmp_save_path=str(tmp), verbose=True,
        stage2_params={"n_estimators": 1000, "importance_type": "gain", "num_leaves": 16, "seed": args.seed,
                       "n_jobs": args.n_jobs, "verbose": -1},
    )
    try:
        feats = ofe.fit(**fit_kwargs)
    except SystemExit as exc:  # openfe workers call exit() after printing a traceback to the log
        raise RunnerError(f"OpenFE fit aborted (SystemExit {exc.code!r}); see {out / 'openfe.log'}") from None
    t_fit = time.perf_counter() - t0
    chosen = list(feats[: max(args.max_features, 0)])
    formulas = [_render(f, names_back) for f in chosen]
    if chosen:
        try:
            new_tr, new_te = ofe.transform(Xi_tr, Xi_te, chosen, n_jobs=args.n_jobs)
        except SystemExit as exc:
            raise RunnerError(f"OpenFE transform aborted (SystemExit {exc.code!r}); see {out / 'openfe.log'}") from None
        new_cols = [c for c in new_tr.columns if str(c).startswith("autoFE_f_")]
        if len(new_cols) != len(chosen):
            raise RunnerError(f"transform returned {len(new_cols)} new columns for {len(chosen)} features")
        new_tr = new_tr[new_cols].reset_index(drop=True)
        new_te = new_te[new_cols].reset_index(drop=True)
    else:
        new_cols = []
        new_tr = pd.DataFrame(index=range(len(X_tr)))
        new_te = pd.DataFrame(index=range(len(X_te)))
    for p in (tmp,):
        if p.exists():
            p.unlink()
    res_tr = pd.concat([X_tr.reset_index(drop=True), new_tr], axis=1)
    res_te = pd.concat([X_te.reset_index(drop=True), new_te], axis=1)
    res_tr.columns = [str(c) for c in res_tr.columns]
    res_te.columns = [str(c) for c in res_te.columns]
    res_tr.to_parquet(out / "train.parquet", index=False)
    res_te.to_parquet(out / "test.parquet", index=False)
    wall = time.perf_counter() - t0
    meta = {
        "features": formulas,
        "columns": dict(zip(new_cols, formulas)),
        "trees": [_tree(f, names_back) for f in chosen],
        "count": len(formulas),
        "n_selected_by_openfe": len(feats),
        "wall_time_s": round(wall, 3),
        "fit_time_s": round(t_fit, 3),
        "task": task,
        "n_candidates": n_candidates,
        "n_data_blocks_used": n_blocks,
        "categorical_features": [names_back[c] for c in cat_internal],
        "original_columns": orig_cols,
        "openfe_version": openfe.__version__,
        "python": sys.executable,
        "params": {k: getattr(args, k) for k in ("n_jobs", "max_features", "time_limit", "seed",
                                                  "n_data_blocks", "min_candidate_features")},
    }
    (out / "features.json").write_text(json.dumps(meta, indent=2))
    return 0


def _worker_main(args) -> int:
    try:
        return _worker(args)
    except RunnerError as exc:
        print(f"[openfe_runner] error: {exc}", file=sys.stderr, flush=True)
        return 2
    except BaseException as exc:  # noqa: BLE001 - anything else from OpenFE/pandas/LightGBM
        import traceback

        traceback.print_exc()
        print(f"[openfe_runner] error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 3


# --------------------------------------------------------------------------- driver

def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines()
                 if l.strip() and not l.startswith("[LightGBM]") and "it/s]" not in l]
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def run(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("train.parquet", "test.parquet", "features.json"):
        (out / name).unlink(missing_ok=True)
    try:
        ensure_openfe(allow_install=not args.no_install)
    except RunnerError as exc:
        print(f"[openfe_runner] error: {exc}", file=sys.stderr)
        return 1
    for p in (args.train, args.test):
        if not Path(p).is_file():
            print(f"[openfe_runner] error: no such file {p}", file=sys.stderr)
            return 1
    log = out / "openfe.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", *args.raw_argv]
    env = dict(os.environ, PYTHONWARNINGS="ignore::FutureWarning")
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            rc = proc.wait(timeout=args.time_limit if args.time_limit and args.time_limit > 0 else None)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            (out / ".openfe_tmp.feather").unlink(missing_ok=True)
            print(f"[openfe_runner] error: time limit of {args.time_limit:g}s exceeded; log: {log}", file=sys.stderr)
            return 124
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    wall = time.perf_counter() - t0
    ok = rc == 0 and all((out / n).is_file() for n in ("train.parquet", "test.parquet", "features.json"))
    if not ok:
        print(_tail(log), file=sys.stderr)
        print(f"[openfe_runner] error: OpenFE failed (worker exit {rc}); log: {log}", file=sys.stderr)
        return rc if rc not in (0, None) else 3
    meta = json.loads((out / "features.json").read_text())
    print(f"[openfe_runner] {meta['count']} features in {wall:.1f}s -> {out}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="print 'openfe ok <version> (<python>)' and exit")
    p.add_argument("--train")
    p.add_argument("--test")
    p.add_argument("--target", default="label")
    p.add_argument("--out")
    p.add_argument("--n-jobs", type=int, default=DEFAULTS["n_jobs"])
    p.add_argument("--max-features", type=int, default=DEFAULTS["max_features"],
                   help="keep the top k of OpenFE's ranked features")
    p.add_argument("--time-limit", type=float, default=DEFAULTS["time_limit"],
                   help="seconds for fit+transform; <=0 for none (exit 124 when exceeded)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                   help="auto: classification for non-numeric or integer targets with <20 values")
    p.add_argument("--categorical", nargs="*", default=None,
                   help="categorical feature columns (default: the non-numeric ones)")
    p.add_argument("--n-data-blocks", type=int, default=DEFAULTS["n_data_blocks"],
                   help="OpenFE successive-halving blocks (power of 2; OpenFE's default is 8); "
                        "0 = auto: 1 when there are <= --min-candidate-features candidates, else 8")
    p.add_argument("--min-candidate-features", type=int, default=DEFAULTS["min_candidate_features"])
    p.add_argument("--no-install", action="store_true", help="never pip-install openfe")
    p.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(raw_argv)
    args.raw_argv = raw_argv

    if args.check:
        return check(allow_install=not args.no_install)
    if not (args.train and args.test and args.out):
        p.error("--train, --test and --out are required (or --check)")
    if args.n_jobs < 1:
        p.error("--n-jobs must be >= 1")
    if args.n_data_blocks < 0 or args.n_data_blocks & (args.n_data_blocks - 1):
        p.error("--n-data-blocks must be 0 (auto) or a power of 2")
    if args._worker:
        return _worker_main(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
