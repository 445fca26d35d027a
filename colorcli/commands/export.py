"""`colorcli export`."""

from __future__ import annotations

from colorcli.commands._common import fail


def export() -> None:
    """Not implemented yet."""
    fail("'export' is not implemented yet")
