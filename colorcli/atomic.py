"""Atomic file creation, for every file colorcli writes (images, models, checkpoints)."""

from __future__ import annotations

import errno
import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(
    path: Path, write: Callable[[BinaryIO], object], sync: bool = False, replace: bool = True
) -> None:
    """Create ``path`` through a temporary file in its folder and a rename: a reader, or a
    process killed at any moment, sees the old file or the whole new one, never half of it.

    ``sync`` flushes the data to disk before the rename (models and checkpoints: worth the
    wait; thousands of photos: left to the OS). ``replace=False`` raises FileExistsError
    rather than replace a file that appeared meanwhile (another process writing there too).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a folder is needed; FileExistsError means the result
        in_the_way = str(path.parent)
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way of its folder", in_the_way) from None
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        # mkstemp creates files 0600; the result gets the permissions any new file would
        os.chmod(tmp, 0o666 & ~_umask())
        if replace:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# most file systems take names of up to 255 bytes; mkstemp adds 8 characters and ".tmp"
_NAME_MAX = 255
_ADDED = len(".") + len(".") + 8 + len(".tmp")


def _temporary_prefix(name: str) -> str:
    """A hidden prefix naming the file, short enough that the temporary name fits wherever
    the final one does (its bytes cut, not its characters: the OS counts bytes)."""
    return "." + os.fsdecode(os.fsencode(name)[: _NAME_MAX - _ADDED]) + "."


def _publish_new(tmp: str, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless that exists: a hard link, unlike a rename, fails then."""
    try:
        os.link(tmp, path)
    except OSError as exc:
        # a file system without hard links (FAT, some network shares): check, then rename
        if isinstance(exc, FileExistsError) or path.exists():
            raise FileExistsError(errno.EEXIST, "the file exists", str(path)) from None
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
