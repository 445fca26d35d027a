"""Error reporting shared by the commands: one line on stderr, the right exit code."""

from __future__ import annotations

from typing import NoReturn

import typer

EXIT_FAILURE = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (1 failure, 2 usage)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def usage_error(message: str) -> NoReturn:
    fail(message, EXIT_USAGE)
