"""`colorcli evaluate`."""

from __future__ import annotations

from colorcli.commands._common import fail


def evaluate() -> None:
    """Not implemented yet."""
    fail("'evaluate' is not implemented yet")
