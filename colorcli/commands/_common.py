"""Error reporting shared by the commands: one line on stderr, the right exit code."""

from __future__ import annotations

import signal
from types import FrameType
from typing import NoReturn

import typer

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM

CONTEXT_SIZE_HELP = (
    "Also run the model on each photo shrunk to N×N and blend those colours in, so a large "
    "object keeps one colour (0: off; default: the model's own)."
)


class Terminated(BaseException):
    """SIGTERM, as Slurm, Kubernetes and ``kill`` send to stop a job. Raised in the main
    thread so the job unwinds as it does on Ctrl-C: temporary files are removed and ``train``
    says how to resume. A BaseException, so ``except Exception`` handlers let it through."""


def raise_terminated(signum: int, frame: FrameType | None) -> NoReturn:
    raise Terminated


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (1 failure, 2 usage)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def usage_error(message: str) -> NoReturn:
    fail(message, EXIT_USAGE)
