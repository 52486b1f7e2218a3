"""The evolution tree: every program of ``lineage.jsonl`` as a node, parent -> child as an edge.

Layout: x is the iteration (or generation); each island has a horizontal lane. Inside a lane a
program continues its parent's row when it is the parent's first child, so a line of descent reads
as a horizontal line and every branch opens a row below; the child on the winner's line comes first,
which keeps the winning line straight. Migrants (copies moved between islands) sit in their new
island's lane at the iteration they arrived, drawn lighter, with a dashed edge from their source.
Drawn twice: a PNG, and a self-contained HTML page (inline SVG, tooltips, zoom, no network).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

from efe.rundir.records import MIGRANT, NO_PROGRAM, LineageEntry
from efe.report.plots import (
    FITNESS_CMAP,
    INVALID_COLOR,
    PATH_COLOR,
    Run,
    Skip,
    island_marker,
    new_figure,
)

LANE_GAP = 1.0


@dataclass
class Node:
    id: str
    entry: LineageEntry
    island: int
    x: float
    y: float = 0.0
    fitness: float | None = None
    invalid: bool = False
    migrant: bool = False


@dataclass
class Layout:
    nodes: dict[str, Node]
    lanes: list[tuple[int, float, float]]  # island, top y, bottom y (y grows downwards)
    no_program: list[tuple[float, LineageEntry]]   # x, entry
    no_program_y: float
    axis: str

    @property
    def height(self) -> float:
        return self.no_program_y + 1 if self.no_program else (self.lanes[-1][2] + 1 if self.lanes else 1)


def layout(run: Run, axis: str = "iteration") -> Layout:
    nodes: dict[str, Node] = {}
    no_program: list[tuple[float, LineageEntry]] = []
    latest = 0.0
    for entry in run.lineage:
        x = _number(getattr(entry, axis), 0.0)
        if entry.kind == NO_PROGRAM:
            no_program.append((x, entry))
            latest = max(latest, x)
            continue
        pid = entry.id
        if pid is None or str(pid) in nodes:
            continue
        migrant = entry.kind == MIGRANT
        if migrant and axis == "iteration":  # openevolve gives migrants no iteration of their own
            x = latest
        elif not migrant:
            latest = max(latest, x)
        island = entry.island
        nodes[str(pid)] = Node(str(pid), entry, island if island is not None else -1, x,
                               fitness=entry.fitness, invalid=entry.invalid, migrant=migrant)

    on_path = set(run.ancestry)
    children: dict[str, list[Node]] = {}
    roots: dict[int, list[Node]] = {}
    for node in nodes.values():
        parent = nodes.get(str(node.entry.parent))
        if parent is not None and parent.island == node.island and parent.id != node.id:
            children.setdefault(parent.id, []).append(node)
        else:
            roots.setdefault(node.island, []).append(node)
    order = lambda n: (n.id not in on_path, n.x, n.migrant)

    lanes = []
    top = 0.0
    for island in sorted(roots, key=lambda i: (i < 0, i)):
        rows = 0
        seen: set[str] = set()
        for root in sorted(roots[island], key=order):
            stack: list[tuple[Node, int | None]] = [(root, None)]
            while stack:
                node, row = stack.pop()
                if node.id in seen:
                    continue
                seen.add(node.id)
                if row is None:
                    row, rows = rows, rows + 1
                node.y = top + row
                kids = sorted(children.get(node.id, []), key=order)
                for i in range(len(kids) - 1, -1, -1):
                    stack.append((kids[i], row if i == 0 else None))
        lanes.append((island, top, top + max(rows, 1) - 1))
        top += max(rows, 1) + LANE_GAP
    return Layout(nodes, lanes, no_program, top, axis)


def _number(value, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _norm(lay: Layout):
    import matplotlib  # lazy: matplotlib is slow to import; only drawing needs it

    scores = [n.fitness for n in lay.nodes.values() if n.fitness is not None and not n.invalid]
    low, high = (min(scores), max(scores)) if scores else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    return matplotlib.colors.Normalize(low, high), matplotlib.colormaps[FITNESS_CMAP]


def _edges(run: Run, lay: Layout):
    """(parent, child, style) with style in {"path", "migrant", "plain"}."""
    path_edges = set(zip(run.ancestry[1:], run.ancestry[:-1]))
    out = []
    for node in lay.nodes.values():
        parent = lay.nodes.get(str(node.entry.parent))
        if parent is None or parent.id == node.id:
            continue
        style = "path" if (parent.id, node.id) in path_edges else ("migrant" if node.migrant else "plain")
        out.append((parent, node, style))
    return out


def _summary(run: Run, lay: Layout) -> str:
    nodes = list(lay.nodes.values())
    parts = [f"{sum(not n.migrant for n in nodes)} programs", f"{sum(n.invalid for n in nodes)} invalid",
             f"{sum(n.migrant for n in nodes)} migrants"]
    if lay.no_program:
        parts.append(f"{len(lay.no_program)} iterations without a program")
    text = ", ".join(parts)
    if run.winner in lay.nodes:
        win = lay.nodes[run.winner]
        score = f"{win.fitness:.4f}" if win.fitness is not None else "n/a"
        text += f"; winner {run.winner[:8]} (fitness {score}, {len(run.ancestry) - 1} steps from its root)"
    return text


# --------------------------------------------------------------------------------------------- PNG
def plot_tree(run: Run, out: Path, axis: str = "iteration") -> Path | None:
    # lazy: matplotlib is slow to import; only drawing needs it
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    lay = layout(run, axis)
    if not lay.nodes:
        raise Skip(f"{run.dir / 'lineage.jsonl'} names no program")
    norm, cmap = _norm(lay)
    xs = [n.x for n in lay.nodes.values()] + [x for x, _ in lay.no_program]
    span = max(xs) - min(xs) if xs else 1
    n = len(lay.nodes)
    fig = new_figure(min(max(10.0, 4 + 0.12 * span), 28.0), min(max(4.5, 2.0 + 0.2 * lay.height), 18.0))
    ax = fig.add_subplot()
    size = max(8.0, min(60.0, 4000.0 / max(n, 1)))

    for i, (island, top, bottom) in enumerate(lay.lanes):
        if i % 2:
            ax.axhspan(-(bottom + 0.5), -(top - 0.5), color="#f2f2f2", zorder=0)
    edges = _edges(run, lay)
    for style, kw in (("plain", dict(colors="#8c8c8c", linewidths=0.7, alpha=0.7, zorder=1)),
                      ("migrant", dict(colors="#8c8c8c", linewidths=0.8, alpha=0.5, linestyles="dashed", zorder=1)),
                      ("path", dict(colors=PATH_COLOR, linewidths=2.4, zorder=3))):
        segs = [[(p.x, -p.y), (c.x, -c.y)] for p, c, s in edges if s == style]
        if segs:
            ax.add_collection(LineCollection(segs, **kw))

    for island, _, _ in lay.lanes:
        marker = island_marker(island)
        for migrant, alpha in ((False, 1.0), (True, 0.35)):
            group = [nd for nd in lay.nodes.values()
                     if nd.island == island and nd.migrant == migrant and not nd.invalid and nd.fitness is not None]
            if group:
                ax.scatter([g.x for g in group], [-g.y for g in group], c=[g.fitness for g in group], cmap=cmap,
                           norm=norm, marker=marker, s=size, alpha=alpha, edgecolors="black", linewidths=0.3,
                           zorder=4)
    bad = [nd for nd in lay.nodes.values() if nd.invalid or nd.fitness is None]
    if bad:
        ax.scatter([b.x for b in bad], [-b.y for b in bad], marker="x", c=INVALID_COLOR, s=size, linewidths=1.2,
                   zorder=4)
    path = [lay.nodes[p] for p in run.ancestry if p in lay.nodes]
    if path:
        ax.scatter([p.x for p in path], [-p.y for p in path], facecolors="none", edgecolors=PATH_COLOR,
                   s=size * 2.2, linewidths=1.6, zorder=5)
        win = path[0]
        ax.scatter([win.x], [-win.y], marker="*", s=max(220.0, size * 5), c=[win.fitness if win.fitness is not None
                   else norm.vmax], cmap=cmap, norm=norm, edgecolors=PATH_COLOR, linewidths=1.5, zorder=6)
        ax.annotate(f"winner {win.id[:8]}", (win.x, -win.y), xytext=(8, 8), textcoords="offset points",
                    color=PATH_COLOR, fontsize=9, fontweight="bold", zorder=7)
    if lay.no_program:
        ax.scatter([x for x, _ in lay.no_program], [-lay.no_program_y] * len(lay.no_program), marker="|",
                   c=INVALID_COLOR, s=80, zorder=4)

    ticks = [-(top + bottom) / 2 for _, top, bottom in lay.lanes]
    labels = [f"island {i}" if i >= 0 else "island ?" for i, _, _ in lay.lanes]
    if lay.no_program:
        ticks.append(-lay.no_program_y)
        labels.append("no program")
    ax.set_yticks(ticks, labels)
    ax.set_ylim(-(lay.height - 0.3), 0.8)
    pad = max(1.0, 0.02 * span)
    ax.set_xlim(min(xs) - pad, max(xs) + pad * 2)
    ax.set_xlabel(lay.axis)
    ax.set_ylabel("island lane (a new row for each branch)")
    ax.set_title(f"Evolution tree — {run.label}\n{_summary(run, lay)}", fontsize=11)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="fitness (combined_score)", shrink=0.85)

    handles = [Line2D([], [], marker=island_marker(i), ls="", color="#555555", label=f"island {i}")
               for i, _, _ in lay.lanes if i >= 0]
    if bad:
        handles.append(Line2D([], [], marker="x", ls="", color=INVALID_COLOR, label="invalid"))
    if any(nd.migrant for nd in lay.nodes.values()):
        handles.append(Line2D([], [], marker="o", ls="--", color="#8c8c8c", alpha=0.4, label="migrant (from source)"))
    if path:
        handles.append(Line2D([], [], color=PATH_COLOR, lw=2.4, marker="*", markersize=12,
                              label="winner and its ancestry"))
    if lay.no_program:
        handles.append(Line2D([], [], marker="|", ls="", color=INVALID_COLOR, markersize=10, label="no program"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 7), fontsize=8, frameon=False)
    fig.savefig(out, dpi=110)
    return out


# -------------------------------------------------------------------------------------------- HTML
X_UNIT, ROW_UNIT, RADIUS, LEFT, TOP = 18.0, 18.0, 5.5, 90.0, 40.0


def write_tree_html(run: Run, out: Path, axis: str = "iteration") -> Path | None:
    import matplotlib  # lazy: matplotlib is slow to import; only drawing needs it

    lay = layout(run, axis)
    if not lay.nodes:
        raise Skip(f"{run.dir / 'lineage.jsonl'} names no program")
    norm, cmap = _norm(lay)
    color = lambda v: matplotlib.colors.to_hex(cmap(norm(v)))
    xs = [n.x for n in lay.nodes.values()] + [x for x, _ in lay.no_program]
    x0, x1 = min(xs), max(xs)
    px = lambda x: LEFT + (x - x0) * X_UNIT
    py = lambda y: TOP + y * ROW_UNIT
    width = px(x1) + 140
    height = py(lay.height) + 10

    parts = []
    for i, (island, top, bottom) in enumerate(lay.lanes):
        y_top, y_bottom = py(top - 0.5), py(bottom + 0.5)
        parts.append(f'<rect x="0" y="{y_top:.1f}" width="{width:.1f}" height="{y_bottom - y_top:.1f}" '
                     f'fill="{"#f4f4f4" if i % 2 else "#ffffff"}"/>')
        label = f"island {island}" if island >= 0 else "island ?"
        parts.append(f'<text x="6" y="{(y_top + y_bottom) / 2 + 4:.1f}" class="lane">{label}</text>')
    step = _tick_step(x1 - x0)
    tick = step * (x0 // step)
    while tick <= x1:
        if tick >= x0:
            parts.append(f'<line x1="{px(tick):.1f}" y1="{TOP - 22}" x2="{px(tick):.1f}" y2="{height:.1f}" '
                         f'class="grid"/><text x="{px(tick):.1f}" y="{TOP - 26}" class="tick">{tick:g}</text>')
        tick += step
    parts.append(f'<text x="{LEFT:.1f}" y="12" class="tick" text-anchor="start">{axis} →</text>')

    for parent, child, style in sorted(_edges(run, lay), key=lambda e: e[2] == "path"):
        parts.append(f'<line x1="{px(parent.x):.1f}" y1="{py(parent.y):.1f}" x2="{px(child.x):.1f}" '
                     f'y2="{py(child.y):.1f}" class="edge {style}"/>')
    on_path = set(run.ancestry)
    for node in sorted(lay.nodes.values(), key=lambda n: n.id in on_path):
        cx, cy = px(node.x), py(node.y)
        bad = node.invalid or node.fitness is None
        classes = (["node"] + (["migrant"] if node.migrant else []) + (["invalid"] if bad else [])
                   + (["on-path"] if node.id in on_path else []))
        if bad:
            shape = _svg_shape("x", cx, cy, RADIUS, 'fill="none"')
        else:
            kind = "star" if node.id == run.winner else island_marker(node.island)
            shape = _svg_shape(kind, cx, cy, RADIUS * (2 if kind == "star" else 1), f'fill="{color(node.fitness)}"')
        parts.append(f'<g class="{" ".join(classes)}" data-id="{html.escape(node.id)}">{shape}'
                     f'<title>{html.escape(_tooltip(node))}</title></g>')
    if run.winner in lay.nodes:
        win = lay.nodes[run.winner]
        parts.append(f'<text x="{px(win.x) + 12:.1f}" y="{py(win.y) - 9:.1f}" class="winner">winner '
                     f'{html.escape(win.id[:8])}</text>')
    if lay.no_program:
        y = py(lay.no_program_y)
        parts.append(f'<text x="6" y="{y + 4:.1f}" class="lane">no program</text>')
        for x, entry in lay.no_program:
            text = f"iteration {entry.iteration}: no program\n{entry.reason or ''}"
            parts.append(f'<g class="node"><line x1="{px(x):.1f}" y1="{y - 7:.1f}" x2="{px(x):.1f}" '
                         f'y2="{y + 7:.1f}" stroke="#9a9a9a" stroke-width="2"/>'
                         f'<title>{html.escape(text)}</title></g>')

    svg = (f'<svg id="tree" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.1f} {height:.1f}">' + "\n".join(parts) + "</svg>")
    stops = ", ".join(matplotlib.colors.to_hex(cmap(i / 8)) for i in range(9))
    title = f"Evolution tree — {run.label}"
    page = (_PAGE.replace("__TITLE__", html.escape(title))
            .replace("__SUMMARY__", html.escape(_summary(run, lay)))
            .replace("__WINNER__", html.escape(run.winner or "none"))
            .replace("__LOW__", f"{norm.vmin:.4g}").replace("__HIGH__", f"{norm.vmax:.4g}")
            .replace("__STOPS__", stops).replace("__AXIS__", html.escape(axis))
            .replace("__WIDTH__", f"{width:.1f}").replace("__HEIGHT__", f"{height:.1f}")
            .replace("__SVG__", svg))
    out.write_text(page, encoding="utf-8")
    return out


def _tick_step(span: float) -> float:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        if span / step <= 25:
            return float(step)
    return 10000.0


def _tooltip(node: Node) -> str:
    e = node.entry
    metrics = e.metrics
    lines = [f"{e.kind or 'program'} {node.id}",
             f"parent {e.parent}",
             f"island {e.island}   iteration {e.iteration}   generation {e.generation}",
             f"fitness {node.fitness:.4f}" if node.fitness is not None else "fitness n/a"]
    extra = [f"{k} {metrics[k]:+.4f}" if k == "delta_auc" else f"{k} {metrics[k]:.4g}"
             for k in ("delta_auc", "mase_ratio", "wql_ratio", "generated_feature_count")
             if isinstance(metrics.get(k), (int, float))]
    if extra:
        lines.append("   ".join(extra))
    lines.append(f"verdict {e.verdict}")
    if e.reason:
        lines.append(f"reason {e.reason[:400]}")
    if e.new_columns:
        lines.append("new columns: " + ", ".join(e.new_columns)[:400])
    if e.dropped_columns:
        lines.append("dropped: " + ", ".join(e.dropped_columns)[:400])
    if e.changes:
        lines.append(f"changes {str(e.changes)[:200]}")
    return "\n".join(lines)


def _svg_shape(kind: str, cx: float, cy: float, r: float, paint: str) -> str:
    def polygon(points):
        return f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" {paint}/>'

    if kind == "s":
        side = r * 1.8
        return f'<rect x="{cx - side / 2:.1f}" y="{cy - side / 2:.1f}" width="{side:.1f}" height="{side:.1f}" {paint}/>'
    if kind == "^":
        return polygon([(cx, cy - r * 1.1), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)])
    if kind == "v":
        return polygon([(cx, cy + r * 1.1), (cx + r, cy - r * 0.8), (cx - r, cy - r * 0.8)])
    if kind in ("D", "d"):
        return polygon([(cx, cy - r * 1.2), (cx + r, cy), (cx, cy + r * 1.2), (cx - r, cy)])
    if kind == "x":
        return (f'<path d="M{cx - r:.1f},{cy - r:.1f}L{cx + r:.1f},{cy + r:.1f}M{cx - r:.1f},{cy + r:.1f}'
                f'L{cx + r:.1f},{cy - r:.1f}" {paint}/>')
    if kind == "star":
        pts = [(cx + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
                cy - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5)) for i in range(10)]
        return polygon(pts)
    if kind in ("P", "p", "h", "H", "8", "<", ">"):
        sides = {"P": 4, "p": 5, "h": 6, "H": 6, "8": 8, "<": 3, ">": 3}[kind]
        turn = {"<": -math.pi / 2, ">": math.pi / 2, "P": math.pi / 4}.get(kind, 0.0)
        return polygon([(cx + r * math.sin(turn + 2 * math.pi * i / sides),
                         cy - r * math.cos(turn + 2 * math.pi * i / sides)) for i in range(sides)])
    return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" {paint}/>'


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:12px;color:#222}
h1{font-size:18px;margin:0 0 4px}
.meta{font-size:13px;color:#444;margin-bottom:6px}
.bar{display:flex;gap:14px;align-items:center;font-size:12px;flex-wrap:wrap;margin-bottom:6px}
.cbar{width:160px;height:12px;background:linear-gradient(to right,__STOPS__);border:1px solid #888;display:inline-block;vertical-align:middle}
button{font-size:13px;padding:1px 8px}
#view{border:1px solid #ccc;overflow:auto;max-height:78vh;cursor:grab;background:#fff}
#view.drag{cursor:grabbing}
#info{font-size:12px;background:#f7f7f7;border:1px solid #ddd;padding:6px;white-space:pre-wrap;min-height:3em}
.lane{font-size:12px;fill:#333}
.tick{font-size:10px;fill:#666;text-anchor:middle}
.grid{stroke:#e6e6e6;stroke-width:1}
.edge{stroke:#8c8c8c;stroke-width:1;opacity:.75}
.edge.migrant{stroke-dasharray:4 3;opacity:.5}
.edge.path{stroke:#d62728;stroke-width:3;opacity:1}
.node>*:not(title){stroke:#222;stroke-width:.6}
.node.migrant{opacity:.35}
.node.on-path>*:not(title){stroke:#d62728;stroke-width:2}
.node.invalid>*:not(title){stroke:#9a9a9a;stroke-width:2}
.node:hover>*:not(title){stroke:#ff7f0e;stroke-width:2.5}
.node{cursor:pointer}
.winner{font-size:12px;font-weight:bold;fill:#d62728}
</style></head><body>
<h1>__TITLE__</h1>
<div class="meta">__SUMMARY__<br>winner: <code>__WINNER__</code></div>
<div class="bar">
<span>fitness __LOW__ <span class="cbar"></span> __HIGH__</span>
<span>x: __AXIS__; one lane per island; marker shape = island</span>
<span>grey x = invalid; faded = migrant (dashed edge from its source); red = winner's ancestry</span>
<span><button id="zin">+</button> <button id="zout">&minus;</button> <button id="zfit">fit</button> <button id="z1">1:1</button>
(ctrl+wheel zooms, drag pans; hover a node for details, click to pin them below)</span>
</div>
<div id="view">__SVG__</div>
<div id="info">click a node</div>
<script>
(function(){
  var W=__WIDTH__, H=__HEIGHT__, k=1, view=document.getElementById('view'), svg=document.getElementById('tree');
  function zoom(f, cx, cy){
    var r=view.getBoundingClientRect(); cx=cx===undefined?r.width/2:cx; cy=cy===undefined?r.height/2:cy;
    var sx=(view.scrollLeft+cx)/k, sy=(view.scrollTop+cy)/k;
    k=Math.max(0.05, Math.min(20, f)); svg.setAttribute('width', W*k); svg.setAttribute('height', H*k);
    view.scrollLeft=sx*k-cx; view.scrollTop=sy*k-cy;
  }
  document.getElementById('zin').onclick=function(){zoom(k*1.5)};
  document.getElementById('zout').onclick=function(){zoom(k/1.5)};
  document.getElementById('z1').onclick=function(){zoom(1)};
  document.getElementById('zfit').onclick=function(){zoom(Math.min(1, (view.clientWidth-4)/W))};
  view.addEventListener('wheel', function(e){
    if(!e.ctrlKey) return; e.preventDefault();
    var r=view.getBoundingClientRect(); zoom(k*(e.deltaY<0?1.2:1/1.2), e.clientX-r.left, e.clientY-r.top);
  }, {passive:false});
  var drag=null;
  view.addEventListener('mousedown', function(e){drag=[e.clientX,e.clientY,view.scrollLeft,view.scrollTop]; view.classList.add('drag');});
  window.addEventListener('mouseup', function(){drag=null; view.classList.remove('drag');});
  window.addEventListener('mousemove', function(e){ if(!drag) return;
    view.scrollLeft=drag[2]-(e.clientX-drag[0]); view.scrollTop=drag[3]-(e.clientY-drag[1]); });
  var info=document.getElementById('info');
  Array.prototype.forEach.call(document.querySelectorAll('.node'), function(n){
    n.addEventListener('click', function(){ var t=n.querySelector('title'); if(t) info.textContent=t.textContent; });
  });
  if(W>view.clientWidth*3) zoom(Math.max(0.25,(view.clientWidth-4)/W));
})();
</script>
</body></html>
"""
