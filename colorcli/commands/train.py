"""`colorcli train`."""

from __future__ import annotations

from colorcli.commands._common import fail


def train() -> None:
    """Not implemented yet."""
    fail("'train' is not implemented yet")
