"""The MAP-Elites grid of the latest openevolve checkpoint: each island's cells, coloured by fitness.

openevolve 0.4.0 keeps ``island_feature_maps`` in a checkpoint's ``metadata.json``: per island, a map
from a cell key (bin indices joined by "-", in the order of ``database.feature_dimensions``) to the id
of the program holding that cell. A program's bin is fixed when it is added, from the value range seen
so far, so bins are labelled as bins; the value range of each dimension is quoted under the figure.
openevolve uses max(feature_bins, ceil(archive_size ** (1 / dims))) bins per dimension.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from efe.report.plots import (
    FITNESS_CMAP,
    PATH_COLOR,
    Run,
    Skip,
    new_figure,
    read_json,
)
from efe.rundir.records import fitness_of


def latest_checkpoint(run_dir: Path) -> Path | None:
    # lazy: the adapter imports openevolve and the openai SDK (~1 s); the plots only read its checkpoint files
    from efe.search import openevolve_adapter as oe

    return oe.latest_checkpoint(Path(run_dir) / "evolution")


def database_config(run_dir: Path) -> dict:
    """openevolve's ``database`` section from the run's config.yaml ({} when it cannot be read)."""
    try:
        cfg = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
    except Exception:  # noqa: BLE001 - a missing or odd config only costs the axis names
        return {}
    stack = [cfg]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "feature_dimensions" in node:
                return node
            stack.extend(node.values())
    return {}


def plot_grid(run: Run, out: Path) -> Path | None:
    # lazy: as in latest_checkpoint
    from efe.search.openevolve_adapter import island_feature_maps

    checkpoint = latest_checkpoint(run.dir)
    if checkpoint is None:
        raise Skip(f"no openevolve checkpoint with a metadata.json in {run.dir / 'evolution' / 'checkpoints'}")
    meta = read_json(checkpoint / "metadata.json") or {}
    maps = island_feature_maps(meta)
    if not any(maps):
        raise Skip(f"{checkpoint / 'metadata.json'} has no island_feature_maps")

    db = database_config(run.dir)
    keys = [str(k).split("-") for m in maps for k in m]
    ndim = max(len(k) for k in keys)
    dims = [str(d) for d in db.get("feature_dimensions") or []]
    if len(dims) != ndim:
        dims = [f"dimension {i + 1}" for i in range(ndim)]
    axes_labels = [_axis_values([k[i] if i < len(k) else "0" for k in keys], _bins(db, dims, i)) for i in range(ndim)]

    def score(pid: str) -> float:
        program = read_json(checkpoint / "programs" / f"{pid}.json")
        value = fitness_of(program.get("metrics")) if isinstance(program, dict) else None
        if value is None and pid in run.programs:
            value = run.programs[pid].fitness
        return np.nan if value is None else value

    shape = tuple(len(a) for a in axes_labels[:2]) if ndim >= 2 else (len(axes_labels[0]),)
    grids = []
    winner_cells = []
    for m in maps:
        grid = np.full(shape, np.nan)
        cell_of_winner = None
        for key, pid in m.items():
            parts = str(key).split("-")
            index = tuple(axes_labels[i].index(parts[i] if i < len(parts) else "0") for i in range(min(ndim, 2)))
            value = score(str(pid))
            if np.isfinite(value) and not (np.isfinite(grid[index]) and grid[index] >= value):
                grid[index] = value  # with > 2 dimensions, the best program over the hidden ones
            if str(pid) == run.winner:
                cell_of_winner = index
        grids.append(grid)
        winner_cells.append(cell_of_winner)
    stacked = np.stack(grids)
    best = np.where(np.all(np.isnan(stacked), axis=0), np.nan,
                    np.nanmax(np.where(np.isnan(stacked), -np.inf, stacked), axis=0))
    finite = stacked[np.isfinite(stacked)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    title = (f"MAP-Elites grid — {run.label}: checkpoint {checkpoint.name.split('_')[-1]} "
             f"(iteration {meta.get('last_iteration', '?')})")
    note = _ranges_note(meta, dims)
    if ndim == 1:
        _draw_strip(run, out, grids, best, winner_cells, axes_labels[0], dims[0], (low, high), title, note)
    else:
        _draw_panels(run, out, grids, best, winner_cells, axes_labels, dims, (low, high), title, note)
    return out


def _bins(db: dict, dims: list[str], i: int) -> int | None:
    bins = db.get("feature_bins")
    if isinstance(bins, dict):
        bins = bins.get(dims[i]) if i < len(dims) else None
        return int(bins) if isinstance(bins, int) else None
    if not isinstance(bins, int):
        return None
    archive = db.get("archive_size")
    if isinstance(archive, int) and dims:
        bins = max(bins, int(pow(archive, 1 / len(dims)) + 0.99))
    return bins


def _axis_values(values: list[str], bins: int | None) -> list[str]:
    """Bin labels "0".."n-1" when the keys are bin indices, else the distinct values, sorted."""
    if all(v.lstrip("-").isdigit() for v in values):
        top = max([int(v) for v in values] + [(bins or 0) - 1])
        return [str(i) for i in range(min(0, min(int(v) for v in values)), top + 1)]
    return sorted(set(values))


def _ranges_note(meta: dict, dims: list[str]) -> str:
    stats = meta.get("feature_stats") or {}
    parts = []
    for dim in dims:
        s = stats.get(dim) or {}
        if isinstance(s.get("min"), (int, float)) and isinstance(s.get("max"), (int, float)):
            parts.append(f"{dim} {s['min']:.4g}–{s['max']:.4g}")
    note = "cell = the program openevolve keeps there; colour = its fitness; blank = empty"
    if parts:
        note += "; values seen: " + ", ".join(parts) + " (a program's bin is set from the range seen when it was added)"
    return note


def _draw_panels(run, out, grids, best, winner_cells, axes_labels, dims, limits, title, note):
    # lazy: matplotlib is slow to import; only drawing needs it
    from matplotlib.patches import Rectangle

    panels = [(f"island {i} ({int(np.isfinite(g).sum())} cells)", g, c) for i, (g, c) in
              enumerate(zip(grids, winner_cells))]
    any_cell = next((c for c in winner_cells if c is not None), None)
    panels.append((f"all islands, best per cell ({int(np.isfinite(best).sum())} cells)", best, any_cell))
    nx, ny = len(axes_labels[0]), len(axes_labels[1])
    cols = min(len(panels), 4)
    rows = -(-len(panels) // cols)
    side = max(2.8, min(4.5, 0.45 * max(nx, ny)))
    fig = new_figure(cols * side + 1.6, rows * side + 1.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for ax, (name, grid, cell) in zip(axes.flat, panels):
        image = ax.imshow(np.ma.masked_invalid(grid.T), origin="lower", cmap=FITNESS_CMAP, vmin=limits[0],
                          vmax=limits[1], aspect="auto")
        ax.set_facecolor("white")
        ax.set_xticks(range(nx), axes_labels[0], fontsize=7)
        ax.set_yticks(range(ny), axes_labels[1], fontsize=7)
        ax.set_xticks(np.arange(-0.5, nx), minor=True)
        ax.set_yticks(np.arange(-0.5, ny), minor=True)
        ax.grid(which="minor", color="#dddddd", lw=0.5)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel(f"{dims[0]} (bin)")
        ax.set_ylabel(f"{dims[1]} (bin)")
        ax.set_title(name, fontsize=9)
        if nx * ny <= 144:
            for (i, j), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    ax.text(i, j, f"{value:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if (value - limits[0]) < 0.5 * (limits[1] - limits[0]) else "black")
        if cell is not None:
            ax.add_patch(Rectangle((cell[0] - 0.5, cell[1] - 0.5), 1, 1, fill=False, ec=PATH_COLOR, lw=2.2))
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes, label="fitness (combined_score)", shrink=0.8)
    fig.suptitle(f"{title}\nred outline: the winner's cell ({str(run.winner or 'none')[:8]})", fontsize=11)
    fig.supxlabel(note, fontsize=7, color="#555555")
    fig.savefig(out, dpi=110)


def _draw_strip(run, out, grids, best, winner_cells, labels, dim, limits, title, note):
    # lazy: matplotlib is slow to import; only drawing needs it
    from matplotlib.patches import Rectangle

    rows = np.vstack(grids + [best])
    names = [f"island {i}" for i in range(len(grids))] + ["all (best)"]
    fig = new_figure(min(max(8.0, 0.25 * len(labels) + 3), 22.0), 1.6 + 0.45 * len(names))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(rows), cmap=FITNESS_CMAP, vmin=limits[0], vmax=limits[1], aspect="auto")
    step = max(1, len(labels) // 20)
    ax.set_xticks(range(0, len(labels), step), labels[::step], fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel(f"{dim} (bin)")
    ax.set_ylabel("island")
    for r, cell in enumerate(winner_cells):
        if cell is not None:
            ax.add_patch(Rectangle((cell[0] - 0.5, r - 0.5), 1, 1, fill=False, ec=PATH_COLOR, lw=2.2))
    ax.set_title(f"{title}\nred outline: the winner's cell ({str(run.winner or 'none')[:8]})", fontsize=10)
    fig.colorbar(image, ax=ax, label="fitness (combined_score)")
    fig.supxlabel(note, fontsize=7, color="#555555")
    fig.savefig(out, dpi=110)
