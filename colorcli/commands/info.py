"""`colorcli info`."""

from __future__ import annotations

from colorcli.commands._common import fail


def info() -> None:
    """Not implemented yet."""
    fail("'info' is not implemented yet")
