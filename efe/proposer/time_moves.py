"""Move library of the time-series offline proposer: invertible normalizations, rendered as programs.

A program written here is a chain of moves (log, Box-Cox, detrending, seasonal adjustment,
scaling, ...) rendered into a complete, readable transform program whose manifest comment lets
the next generation recover the chain. ``transform`` applies the steps in order and
``inverse_transform`` undoes them in reverse; every step learns its parameters from the observed
history only, depends on a value's time position (never on later values), and is exactly
invertible on the whole real line, so forecasts that overshoot the history stay finite.
``propose`` is a real search operator: it adds, removes or swaps one move, weighted by the
dataset context and the evaluator's feedback, and needs no LLM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from efe.core.contracts import EVOLVE_END, EVOLVE_START
from efe.core.moves_manifest import MANIFEST as MANIFEST  # re-exported: the marker the rendered programs carry
from efe.core.moves_manifest import manifest_line, read_manifest
from efe.proposer.moves_common import NoMoveAvailable as NoMoveAvailable  # re-exported: what propose raises
from efe.proposer.moves_common import pick, rule_weight

KINDS = ("log", "boxcox", "detrend", "difference", "seasonal_adjust", "robust_scale", "recent_scale",
         "level_anchor")
# At most one move per group; a chain keeps the groups in this order (stabilise the variance,
# then remove the trend, then the season, then put the result on a common scale).
GROUP = {"log": "variance", "boxcox": "variance", "detrend": "trend", "difference": "trend",
         "seasonal_adjust": "season", "robust_scale": "scale", "recent_scale": "scale", "level_anchor": "scale"}
STAGE = {"variance": 0, "trend": 1, "season": 2, "scale": 3}
DEFAULT_PARAMS: dict[str, tuple] = {"detrend": (1.0,), "recent_scale": ("horizon", 2)}
RECENT_BASES = ("horizon", "season")
SAFE_REASON = re.compile(r"not finite|inverse|overflow|\binf|round.trip", re.I)
FLAT_REASON = re.compile(r"collapsed|constant", re.I)


@dataclass(frozen=True)
class Move:
    kind: str
    params: tuple = ()

    def describe(self) -> str:
        return f"{self.kind}({', '.join(str(p) for p in self.params)})"


# --------------------------------------------------------------------------- candidates


def candidate_moves(context: dict, feedback: dict | None = None) -> list[tuple[Move, float]]:
    """Every sensible move for this dataset, with a positive weight from context and feedback."""
    season = int(context.get("season") or 1)
    lengths = context.get("length") or {}
    median_len = float(lengths.get("median") or lengths.get("min") or 0)
    positive = _num(context.get("positive_fraction"))
    zeros = _num(context.get("zero_fraction"))
    cv = min(_num(context.get("median_cv")), 2.0) / 2.0
    trend = _num(context.get("median_trend_strength"))
    seasonal = _num(context.get("median_seasonal_strength"))
    spread = min(_num(context.get("level_spread_log10")), 4.0) / 4.0
    text = str(context.get("description") or "").lower()

    # Variance stabilisation pays on positive, multiplicative (growing, high-CV) series.
    variance = max(0.05, 0.15 + positive * (0.5 + 1.0 * trend + 0.5 * cv) - 0.5 * zeros)
    if re.search(r"exponential|growth|multiplicative|compound", text):
        variance *= 1.5
    out: list[tuple[Move, float]] = [
        (Move("log"), variance),
        (Move("boxcox"), 0.7 * variance),
        (Move("detrend", (1.0,)), 0.15 + 1.2 * trend),
        (Move("detrend", (0.5,)), 0.1 + 0.8 * trend),
        (Move("difference"), 0.05 + 0.3 * trend),
        (Move("robust_scale"), 0.3 + 0.3 * cv + 0.4 * spread),
        (Move("recent_scale", ("horizon", 2)), 0.3 + 0.4 * trend + 0.4 * spread),
        (Move("level_anchor"), 0.2 + 0.3 * trend),
    ]
    if season >= 2 and median_len >= 2 * season:
        boost = 1.3 if re.search(r"season|weekly|daily|hourly|monthly", text) else 1.0
        out.append((Move("seasonal_adjust"), (0.1 + 1.5 * seasonal) * boost))
    if season >= 2 and median_len >= 3 * season:
        out.append((Move("recent_scale", ("season", 3)), 0.25 + 0.3 * seasonal + 0.3 * spread))

    fb = feedback or {}
    reason = str(fb.get("reason") or "")
    worse = _worse(fb)
    weighted = []
    for move, w in out:
        if reason and SAFE_REASON.search(reason) and move.kind in ("log", "boxcox", "difference"):
            w *= 0.3  # the riskiest maps numerically; a gate complained about finiteness or round trip
        if reason and FLAT_REASON.search(reason) and move.kind in ("detrend", "difference", "seasonal_adjust"):
            w *= 0.3
        if worse:
            w *= 1.3 if GROUP[move.kind] == "scale" else (0.5 if move.kind == "difference" else 1.0)
        weighted.append((move, float(max(w, 1e-3))))
    return weighted


def _num(value, default: float = 0.0) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return value if np.isfinite(value) else default


# --------------------------------------------------------------------------- rendering

_COMMON = '''EXP_CAP = 650.0  # exp() arguments are capped: inverse_transform stays finite on any overshoot
FLAT = 1e-6      # a step that would flatten the history (relative range) falls back to identity


def _as_float(values):
    """A float copy: inputs are never modified."""
    return np.array(values, dtype="float64", copy=True)


def _finite(x):
    return x[np.isfinite(x)]


def _plain(value, default=0.0):
    """A fitted number as a plain float (NaN or inf becomes the default)."""
    value = float(value)
    return value if math.isfinite(value) else default


def _flattens(before, after):
    """True when a step maps a non-constant history to (nearly) a constant."""
    ok = np.isfinite(before) & np.isfinite(after)
    if ok.sum() < 2:
        return False
    span = float(np.ptp(before[ok]))
    return span > 0 and float(np.ptp(after[ok])) <= FLAT * span
'''

_SHIFT = '''

def _positive_shift(x):
    """(offset, floor): x + offset > 0 on the history; below floor a map continues linearly."""
    f = _finite(x)
    if len(f) == 0:
        return 0.0, 1.0
    low = float(np.min(f))
    offset = 0.0
    if low <= 0:
        margin = max(0.1 * float(np.std(f)), 1e-3 * float(np.max(np.abs(f))))
        offset = -low + (margin if margin > 0 else 1.0)
    return _plain(offset), _plain(0.5 * (low + offset), 1.0)
'''

_SPREAD = '''

def _spread(f):
    """Robust spread of finite values: IQR/1.349, else MAD*1.4826, else std, else 1."""
    if len(f) < 2:
        return 1.0
    std = float(np.std(f))
    q75, q25 = np.percentile(f, [75, 25])
    scale = float(q75 - q25) / 1.349
    if scale <= 1e-3 * std:
        scale = 1.4826 * float(np.median(np.abs(f - np.median(f))))
    if scale <= 1e-3 * std:
        scale = std
    return _plain(scale, 1.0) if scale > 0 else 1.0
'''

_HELPERS: dict[str, tuple[str, str]] = {
    "log": ("log(y + offset), continued linearly below a floor so that it is invertible everywhere", '''

def _fit_log(x, meta):
    offset, floor = _positive_shift(x)
    return {"kind": "log", "offset": offset, "floor": floor}


def _fwd_log(x, p, pos):
    u, t = x + p["offset"], p["floor"]
    return np.where(u >= t, np.log(np.maximum(u, t)), math.log(t) + (u - t) / t)


def _inv_log(z, p, pos):
    t = p["floor"]
    lt = math.log(t)
    u = np.where(z >= lt, np.exp(np.minimum(z, EXP_CAP)), t + (z - lt) * t)
    return u - p["offset"]
'''),
    "boxcox": ("Box-Cox with lambda in [0, 1] fitted on the history (shifted positive, scaled by its median)", '''

def _boxcox(u, lam):
    return np.log(u) if lam == 0 else (np.power(u, lam) - 1.0) / lam


def _fit_boxcox(x, meta):
    offset, _ = _positive_shift(x)
    f = _finite(x) + offset
    scale = _plain(np.median(f), 1.0) if len(f) else 1.0
    scale = scale if scale > 0 else 1.0
    u = f / scale
    floor = _plain(0.5 * np.min(u), 1.0) if len(u) else 1.0
    lam = 1.0
    if len(u) >= 4 and np.ptp(u) > 0:
        grid = np.linspace(0.0, 1.0, 11)
        llf = [float(stats.boxcox_llf(g, u)) for g in grid]
        llf = [v if math.isfinite(v) else -np.inf for v in llf]
        lam = float(grid[int(np.argmax(llf))])
    return {"kind": "boxcox", "offset": offset, "scale": scale, "floor": floor, "lambda": lam}


def _fwd_boxcox(x, p, pos):
    u, t, lam = (x + p["offset"]) / p["scale"], p["floor"], p["lambda"]
    zt = float(_boxcox(t, lam))
    slope = t ** (lam - 1.0)
    return np.where(u >= t, _boxcox(np.maximum(u, t), lam), zt + (u - t) * slope)


def _inv_boxcox(z, p, pos):
    t, lam = p["floor"], p["lambda"]
    zt = float(_boxcox(t, lam))
    slope = t ** (lam - 1.0)
    w = np.maximum(z, zt)
    log_u = w if lam == 0 else np.log1p(lam * w) / lam
    u = np.where(z >= zt, np.exp(np.minimum(log_u, EXP_CAP)), t + (z - zt) / slope)
    return u * p["scale"] - p["offset"]
'''),
    "detrend": ("linear trend fitted on the history (or its last part) removed at every position", '''

def _fit_detrend(x, meta, tail=1.0):
    n = len(x)
    pos = np.arange(n, dtype="float64")
    ok = np.isfinite(x)
    sel = ok & (pos >= int((1.0 - tail) * n))
    if sel.sum() < 3:
        sel = ok
    if sel.sum() < 3 or np.ptp(x[sel]) == 0:
        return {"kind": "detrend", "intercept": 0.0, "slope": 0.0}
    t, v = pos[sel], x[sel]
    tc = t - t.mean()
    slope = float(np.sum(tc * (v - v.mean())) / np.sum(tc * tc))
    intercept = float(v.mean() - slope * t.mean())
    if _flattens(x, x - (intercept + slope * pos)):
        return {"kind": "detrend", "intercept": 0.0, "slope": 0.0}
    return {"kind": "detrend", "intercept": _plain(intercept), "slope": _plain(slope)}


def _fwd_detrend(x, p, pos):
    return x - (p["intercept"] + p["slope"] * pos)


def _inv_detrend(z, p, pos):
    return z + (p["intercept"] + p["slope"] * pos)
'''),
    "difference": ("change from the previous observed value; the inverse cumulates from the last level", '''

def _differences(x):
    """x minus the previous finite value (0 at the first finite value, NaN stays NaN)."""
    n = len(x)
    if n == 0:
        return x.copy()
    ok = np.isfinite(x)
    last = np.maximum.accumulate(np.where(ok, np.arange(n), -1))
    prev_idx = np.concatenate([[-1], last[:-1]])
    prev = np.where(prev_idx >= 0, x[np.maximum(prev_idx, 0)], np.nan)
    return np.where(ok & ~np.isfinite(prev), 0.0, x - prev)


def _fit_difference(x, meta):
    f = _finite(x)
    if len(f) < 2 or _flattens(x, _differences(x)):
        return {"kind": "difference", "active": False, "last": 0.0}
    return {"kind": "difference", "active": True, "last": _plain(f[-1])}


def _fwd_difference(x, p, pos):
    return _differences(x) if p["active"] else x


def _inv_difference(z, p, pos):
    if not p["active"]:
        return z
    ok = np.isfinite(z)
    out = p["last"] + np.cumsum(np.where(ok, z, 0.0), axis=-1)
    return np.where(ok, out, np.nan)
'''),
    "seasonal_adjust": ("additive seasonal profile (period meta['season']) removed, aligned on time positions", '''

def _fit_seasonal_adjust(x, meta):
    m = int(meta.get("season") or 1)
    identity = {"kind": "seasonal_adjust", "period": 0, "profile": []}
    if m < 2 or len(x) < 2 * m or np.isfinite(x).sum() < 2 * m:
        return identity
    level = pd.Series(x).rolling(m, center=True, min_periods=max(2, m // 2)).mean().to_numpy()
    detrended = x - level
    profile = []
    for phase in range(m):
        values = _finite(detrended[phase::m])
        profile.append(float(np.mean(values)) if len(values) else 0.0)
    profile = np.asarray(profile) - float(np.mean(profile))
    if _flattens(x, x - profile[np.arange(len(x)) % m]):
        return identity
    return {"kind": "seasonal_adjust", "period": m, "profile": [_plain(v) for v in profile]}


def _fwd_seasonal_adjust(x, p, pos):
    if not p["period"]:
        return x
    return x - np.asarray(p["profile"], dtype="float64")[pos % p["period"]]


def _inv_seasonal_adjust(z, p, pos):
    if not p["period"]:
        return z
    return z + np.asarray(p["profile"], dtype="float64")[pos % p["period"]]
'''),
    "robust_scale": ("(y - median) / robust spread of the history", '''

def _fit_robust_scale(x, meta):
    f = _finite(x)
    center = _plain(np.median(f)) if len(f) else 0.0
    return {"kind": "robust_scale", "center": center, "scale": _spread(f)}


def _fwd_robust_scale(x, p, pos):
    return (x - p["center"]) / p["scale"]


def _inv_robust_scale(z, p, pos):
    return z * p["scale"] + p["center"]
'''),
    "recent_scale": ("(y - mean) / std of the last k observations (k from the horizon or the season)", '''

def _fit_recent_scale(x, meta, basis="horizon", mult=2):
    horizon = int(meta.get("prediction_length") or 1)
    season = int(meta.get("season") or 1)
    base = season if basis == "season" and season >= 2 else horizon
    window = max(int(mult * base), 5)
    f = _finite(x)
    recent = f[-window:]
    if len(recent) == 0:
        return {"kind": "recent_scale", "window": window, "center": 0.0, "scale": 1.0}
    center = _plain(np.mean(recent))
    scale = max(float(np.std(recent)), 0.1 * float(np.std(f)))
    return {"kind": "recent_scale", "window": window, "center": center,
            "scale": _plain(scale, 1.0) if scale > 0 else 1.0}


def _fwd_recent_scale(x, p, pos):
    return (x - p["center"]) / p["scale"]


def _inv_recent_scale(z, p, pos):
    return z * p["scale"] + p["center"]
'''),
    "level_anchor": ("(y - last observed level) / mean absolute one-step change of the history", '''

def _fit_level_anchor(x, meta):
    f = _finite(x)
    if len(f) == 0:
        return {"kind": "level_anchor", "level": 0.0, "scale": 1.0}
    scale = float(np.mean(np.abs(np.diff(f)))) if len(f) > 1 else 0.0
    if not scale > 1e-3 * float(np.std(f)):
        scale = float(np.std(f))
    return {"kind": "level_anchor", "level": _plain(f[-1]), "scale": _plain(scale, 1.0) if scale > 0 else 1.0}


def _fwd_level_anchor(x, p, pos):
    return (x - p["level"]) / p["scale"]


def _inv_level_anchor(z, p, pos):
    return z * p["scale"] + p["level"]
'''),
}
_NEEDS = {"log": (_SHIFT,), "boxcox": (_SHIFT,), "robust_scale": (_SPREAD,)}


def _check(move: Move) -> None:
    if move.kind not in KINDS:
        raise ValueError(f"unknown move kind {move.kind!r}; known: {', '.join(KINDS)}")
    p = tuple(move.params)
    if move.kind == "detrend":
        if p and not (len(p) == 1 and isinstance(p[0], (int, float)) and not isinstance(p[0], bool)
                      and 0.0 < float(p[0]) <= 1.0):
            raise ValueError(f"detrend takes one parameter, the fitted tail fraction in (0, 1]; got {p!r}")
    elif move.kind == "recent_scale":
        if p and not (len(p) == 2 and p[0] in RECENT_BASES and isinstance(p[1], int)
                      and not isinstance(p[1], bool) and p[1] >= 1):
            raise ValueError(f"recent_scale takes (basis in {RECENT_BASES}, multiple >= 1); got {p!r}")
    elif p:
        raise ValueError(f"move {move.kind} takes no parameters, got {p!r}")


def _fit_call(move: Move) -> str:
    params = move.params or DEFAULT_PARAMS.get(move.kind, ())
    if move.kind == "detrend":
        return f"_fit_detrend(x, meta, tail={float(params[0])!r})"
    if move.kind == "recent_scale":
        return f'_fit_recent_scale(x, meta, basis="{params[0]}", mult={int(params[1])})'
    return f"_fit_{move.kind}(x, meta)"


def _comment(text: str) -> str:
    return re.sub(r"[\r\n\x00-\x1f]+", " ", text).strip()


def render_program(moves: list[Move], rationale: str = "") -> str:
    """A complete transform program applying ``moves`` as a chain (inverse in reverse order)."""
    moves = list(moves)
    for move in moves:
        _check(move)
    manifest = manifest_line([[m.kind, list(m.params)] for m in moves])
    kinds = list(dict.fromkeys(m.kind for m in moves))
    helpers = _COMMON
    for block in dict.fromkeys(b for k in kinds for b in _NEEDS.get(k, ())):
        helpers += block
    for kind in kinds:
        helpers += _HELPERS[kind][1]
    fit, forward, inverse = [], [], []
    for i, move in enumerate(moves):
        fit += [f"# {i + 1}. {move.describe()}: {_HELPERS[move.kind][0]}",
                f"steps.append({_fit_call(move)})",
                f"x = _fwd_{move.kind}(x, steps[{i}], pos)"]
        forward.append(f"x = _fwd_{move.kind}(x, steps[{i}], pos)  # {i + 1}. {move.describe()}")
    for i in reversed(range(len(moves))):
        inverse.append(f"x = _inv_{moves[i].kind}(x, steps[{i}], pos)  # undo {i + 1}. {moves[i].describe()}")
    indent = lambda lines: "".join(" " * 8 + line + "\n" for line in lines)
    why = f"# Why: {_comment(rationale)}\n" if rationale.strip() else ""
    listing = "".join(f"#   {i + 1}. {_comment(m.describe())}: {_HELPERS[m.kind][0]}\n"
                      for i, m in enumerate(moves)) or "#   (none: identity)\n"
    needs_stats = "boxcox" in kinds
    needs_pandas = "seasonal_adjust" in kinds
    imports = "import math\n\nimport numpy as np\n" + ("import pandas as pd\n" if needs_pandas else "") \
        + ("from scipy import stats\n" if needs_stats else "")
    return f'''"""Transform program written by efe's offline proposer from its move library (efe.proposer.time_moves)."""

{EVOLVE_START}
{manifest}
# Moves, applied in order by transform and undone in reverse order by inverse_transform:
{listing}{why}{imports}

{helpers}

class TransformProgram:
    """A chain of history-fitted, exactly invertible steps; state["steps"][i] holds step i's parameters."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, y_hist: np.ndarray, meta: dict) -> dict:
        meta = dict(meta or {{}})
        x = _as_float(y_hist)
        pos = np.arange(len(x))
        steps = []
{indent(fit)}        return {{"hist_len": int(len(x)), "steps": steps}}

    def transform(self, y: np.ndarray, state: dict) -> np.ndarray:
        x = _as_float(y)
        pos = np.arange(x.shape[-1])
        steps = state["steps"]
{indent(forward)}        return x

    def inverse_transform(self, z: np.ndarray, state: dict) -> np.ndarray:
        x = _as_float(z)
        pos = int(state["hist_len"]) + np.arange(x.shape[-1])
        steps = state["steps"]
{indent(inverse)}        return x
{EVOLVE_END}


def build_transform_program(seed: int = 0) -> TransformProgram:
    return TransformProgram(seed)
'''


def parse_moves(source: str) -> list[Move] | None:
    """The moves of a program rendered here; None without a (well-formed) manifest."""
    entries = read_manifest(source)
    if entries is None:
        return None
    try:
        moves = [Move(str(kind), tuple(params)) for kind, params in entries]
        for move in moves:
            _check(move)
    except (ValueError, TypeError):
        return None
    return moves


# --------------------------------------------------------------------------- proposing


def propose(parent_source: str, context: dict, feedback: dict, rng: np.random.Generator,
            max_moves: int = 4, kinds: tuple[str, ...] | None = None, reason_chars: int = 120) -> tuple[str, str]:
    """One search step from the parent: add, remove or swap a move. Deterministic given ``rng``.

    ``kinds`` (a proposer role's slice of the library) limits what is added or swapped in; the
    memory rules in ``feedback["rules"]`` (move descriptor -> helped / no effect / failed) reweight.
    ``feedback`` also holds the parent's ``valid`` and ``reason``, ``mase_ratio``, ``help_rate`` and
    ``harm_rate``. ``max_moves`` (conf ``proposer.moves.max_moves``) caps the chain; ``reason_chars``
    is how much of an invalid parent's reason the description quotes.
    """
    feedback = feedback or {}
    current = parse_moves(parent_source) or []
    rules = feedback.get("rules")
    candidates = [(m, w * rule_weight(rules, move_key(m))) for m, w in candidate_moves(context, feedback)]
    if kinds is not None and (any(m.kind in kinds for m, _ in candidates) or current):
        candidates = [(m, w) for m, w in candidates if m.kind in kinds]
    limit = max(1, min(int(max_moves), len(STAGE)))
    used = {GROUP[m.kind] for m in current}
    addable = [(m, w) for m, w in candidates if GROUP[m.kind] not in used]
    if not current and not addable:
        raise NoMoveAvailable(f"no normalization move applies to dataset {context.get('name')!r}")

    if feedback.get("valid") is False and current:
        gone = current[-1]
        return _result(current[:-1], f"remove {gone.describe()} (the parent was invalid: "
                                     f"{_comment(str(feedback.get('reason') or 'failed a gate'))[:reason_chars]})")
    worse = _worse(feedback)
    better = feedback.get("mase_ratio") is not None and not worse and _num(feedback.get("mase_ratio"), 1.0) < 1.0
    probs = {"add": 0.3, "remove": 0.35, "swap": 0.35} if worse else \
        {"add": 0.6, "remove": 0.1, "swap": 0.3} if better else {"add": 0.6, "remove": 0.15, "swap": 0.25}
    if not current:
        probs = {"add": 1.0}
    elif not addable or len(current) >= limit:
        probs.pop("add")
    actions = list(probs)
    p = np.asarray([probs[a] for a in actions])
    action = actions[int(rng.choice(len(actions), p=p / p.sum()))]

    if action == "add":
        new = pick(addable, rng)
        return _result(_insert(current, new), f"add {new.describe()}{_because(new, context)}")
    index = _pick_removal(current, worse, rng)
    gone = current[index]
    rest = current[:index] + current[index + 1:]
    if action == "swap":
        left = {GROUP[m.kind] for m in rest}
        choices = [(m, w) for m, w in candidates if m != gone and GROUP[m.kind] not in left]
        if choices:
            new = pick(choices, rng)
            return _result(_insert(rest, new), f"swap {gone.describe()} for {new.describe()}"
                                               f"{_because(new, context)}")
    why = " (the parent forecast worse than the identity)" if worse else ""
    return _result(rest, f"remove {gone.describe()}{why}")


def _worse(feedback: dict) -> bool:
    ratio = feedback.get("mase_ratio")
    if ratio is not None and _num(ratio, 1.0) > 1.0:
        return True
    return _num(feedback.get("harm_rate")) > max(0.5, _num(feedback.get("help_rate")))


def _because(move: Move, context: dict) -> str:
    """A short reason from the context, for the program's 'Why' line."""
    trend = _num(context.get("median_trend_strength"))
    facts = {
        "variance": f"positive share {_num(context.get('positive_fraction')):.2f}, median CV "
                    f"{_num(context.get('median_cv')):.2f}, trend strength {trend:.2f}",
        "trend": f"median trend strength {trend:.2f}",
        "season": f"median seasonal strength {_num(context.get('median_seasonal_strength')):.2f} "
                  f"at period {context.get('season')}",
        "scale": f"median CV {_num(context.get('median_cv')):.2f}",
    }
    return f" ({facts[GROUP[move.kind]]})"


def _insert(moves: list[Move], new: Move) -> list[Move]:
    """Insert ``new`` after every move of the same or an earlier stage."""
    rank = STAGE[GROUP[new.kind]]
    at = sum(1 for m in moves if STAGE[GROUP[m.kind]] <= rank)
    return moves[:at] + [new] + moves[at:]


def _result(moves: list[Move], description: str) -> tuple[str, str]:
    return render_program(moves, description), description


def move_key(move: Move) -> str:
    """A move as the memory rules name it: ``kind(param, ...)``."""
    return f"{move.kind}({', '.join(str(p) for p in move.params)})"


def _pick_removal(moves: list[Move], worse: bool, rng: np.random.Generator) -> int:
    """Index of the move to remove: the newest one is the likeliest cause of a loss."""
    w = np.ones(len(moves))
    w[-1] *= 3.0 if worse else 1.5
    return int(rng.choice(len(moves), p=w / w.sum()))
