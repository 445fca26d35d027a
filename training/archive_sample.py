"""Copy a few images out of a tar archive, evenly spread over it (calibration and test sets)."""

from __future__ import annotations

import tarfile
from pathlib import Path


def extract_spread(archive: str | Path, folder: Path, count: int, within: str = "") -> Path:
    """Write ``count`` files of ``archive`` whose path contains ``within``, evenly spread, to ``folder``."""
    with tarfile.open(archive) as tf:
        members = [m for m in tf if m.isfile() and within in m.name]
        for m in members[:: max(1, len(members) // count)][:count]:
            (folder / Path(m.name).name).write_bytes(tf.extractfile(m).read())
    return folder
