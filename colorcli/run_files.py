"""The files of a run folder that must stay consistent whenever a run is killed:
``metrics.jsonl``, trimmed back to the checkpoint's epoch on resume, and the checkpoints,
saved under a second name as a hard link where the file system allows, the last few
epochs kept for a release to average.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from colorcli import checkpoint
from colorcli.atomic import write_atomic


def trim_metrics(path: Path, epoch: int) -> None:
    """Drops the lines of epochs after ``epoch`` (the checkpoint's): a run stopped after writing
    an epoch's line but before its checkpoint trains that epoch again, and must not list it twice."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if _epoch_of(line) <= epoch]
    if len(kept) != len(lines):
        text = "".join(kept).encode()
        write_atomic(path, lambda fh: fh.write(text))


def _epoch_of(line: str) -> float:
    try:
        return json.loads(line).get("epoch", 0)
    except json.JSONDecodeError:  # a line cut short by a kill
        return math.inf


def save_as(state: dict[str, Any], path: Path, written: Path | None) -> None:
    """Save ``state`` at ``path``, as a second name for the file ``written`` already holding it
    where the file system allows: one write, not two. Each save renames a new file into place,
    so a name keeps its contents when another is saved over."""
    if written is not None:
        linking = path.with_name(f".{path.name}.link")
        try:
            linking.unlink(missing_ok=True)
            os.link(written, linking)
            os.replace(linking, path)
            return
        except OSError:  # a file system without hard links
            linking.unlink(missing_ok=True)
    checkpoint.save(state, path)


def keep_epoch(state: dict[str, Any], folder: Path, epoch: int, keep: int) -> None:
    """``folder``/epoch-NNN.pt for the last ``keep`` epochs (``state`` is already saved as
    ``folder``/last.pt): GAN weights wander from epoch to epoch, and a release averages the
    last few (training/release_default.py)."""
    save_as(state, folder / f"epoch-{epoch:03d}.pt", written=folder / "last.pt")
    for old in folder.glob("epoch-*.pt"):
        number = old.stem.removeprefix("epoch-")
        if number.isdigit() and int(number) <= epoch - keep:
            old.unlink(missing_ok=True)
