"""No output path destroys data: the one check every writing command makes, and staged writes.

:func:`check_output` refuses, with one line, an output that is one of the command's inputs or
holds one (never allowed: an input is read while the output is written), anything inside a frozen
program directory (never allowed: its files are hashed), and, unless ``overwrite=true``, an
existing file inside an efe run directory (a directory holding ``lineage.jsonl``, ``spec.json``,
``frozen/`` or ``manifest.json``: the run wrote it, not this command) and a non-empty directory. :func:`staged` writes the output beside its final path and moves it there only when
the command succeeded, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from efe.core.errors import EfeError

RUN_MARKERS = ("lineage.jsonl", "spec.json", "frozen", "manifest.json")


class OutputRefused(EfeError):
    """An output path that would overwrite or delete data the command did not write."""


def run_dir_holding(path: Path) -> Path | None:
    """The closest efe run, package or frozen directory that ``path`` lies in (``path`` itself excluded)."""
    for parent in path.parents:
        if any((parent / marker).exists() for marker in RUN_MARKERS):
            return parent
    return None


def check_output(output: str | Path, inputs: Iterable[str | Path] = (), *, overwrite: bool = False,
                 directory: bool = False) -> Path:
    """``output`` if writing there destroys nothing, else ``OutputRefused`` naming why.

    ``inputs``: every file and directory the command reads. ``directory``: the command writes a
    directory there (package, a Dask or Spark apply), else one file.
    """
    given = Path(output).expanduser()
    out = given.resolve()
    for source in inputs:
        src = Path(source).expanduser().resolve()
        if out == src or out in src.parents:
            relation = "is" if out == src else "holds"
            raise OutputRefused(f"output '{given}' {relation} the input '{source}'; write the output elsewhere")
    holder = run_dir_holding(out)
    frozen = next((p for p in out.parents if (p / "manifest.json").exists()), None)
    if frozen is not None:
        raise OutputRefused(f"output '{given}' lies inside the frozen program directory '{frozen}' (its files are "
                            "hashed: a changed or extra file makes it unusable); write the output elsewhere")
    if out.is_dir() and not directory:
        raise OutputRefused(f"output '{given}' is a directory; give a file path")
    if overwrite:
        return given
    hint = "choose a new path, or add overwrite=true to replace it"
    if out.is_dir() and any(out.iterdir()):
        raise OutputRefused(f"output '{given}' is a directory that is not empty; {hint}")
    if holder is not None and out.is_file():
        raise OutputRefused(f"output '{given}' is a file of the efe run directory '{holder}'; {hint}")
    if out.exists() and not out.is_dir() and directory:
        raise OutputRefused(f"output '{given}' is a file and this command writes a directory there; {hint}")
    return given


@contextmanager
def staged(output: str | Path) -> Iterator[Path]:
    """A fresh path beside ``output`` (same name at its end, so the same suffix) to write to.

    When the block ends without an error, whatever is at ``output`` is replaced by what was written;
    when it raises, what was written is removed and ``output`` is left as it was.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # not a hidden name: Spark and Hadoop skip paths starting with "." or "_" when they read a directory
    tmp = output.with_name(f"efe-tmp-{uuid.uuid4().hex[:8]}-{output.name}")
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if not tmp.exists():  # nothing written (zero rows): leave the output as it was
        return
    if output.is_dir() and not output.is_symlink():
        old = output.with_name(f"efe-old-{uuid.uuid4().hex[:8]}-{output.name}")
        os.replace(output, old)
        os.replace(tmp, output)
        _remove(old)
    else:
        if output.exists() and tmp.is_dir():
            output.unlink()
        os.replace(tmp, output)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
