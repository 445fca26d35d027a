"""Copy a few images out of a tar archive, evenly spread over it (calibration and test sets)."""

from __future__ import annotations

import tarfile
from pathlib import Path


def spread(members: list, count: int) -> list:
    """``count`` of ``members``, evenly spread over them."""
    return members[:: max(1, len(members) // count)][:count]


def _extract(archive: str | Path, folder: Path, within: str, pick) -> Path:
    with tarfile.open(archive) as tf:
        for m in pick([m for m in tf if m.isfile() and within in m.name]):
            (folder / Path(m.name).name).write_bytes(tf.extractfile(m).read())
    return folder


def extract_spread(archive: str | Path, folder: Path, count: int, within: str = "") -> Path:
    """Write ``count`` files of ``archive`` whose path contains ``within``, evenly spread, to ``folder``."""
    return _extract(archive, folder, within, lambda members: spread(members, count))


def extract_rest(archive: str | Path, folder: Path, count: int, within: str = "") -> Path:
    """Write the files of ``archive`` whose path contains ``within`` that ``extract_spread`` with
    ``count`` leaves out."""

    def rest(members: list) -> list:
        taken = {m.name for m in spread(members, count)}
        return [m for m in members if m.name not in taken]

    return _extract(archive, folder, within, rest)
