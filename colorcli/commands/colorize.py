"""`colorcli colorize`."""

from __future__ import annotations

from colorcli.commands._common import fail


def colorize() -> None:
    """Not implemented yet."""
    fail("'colorize' is not implemented yet")
