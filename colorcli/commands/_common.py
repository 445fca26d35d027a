"""Error reporting shared by the commands: one line on stderr, the right exit code."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import NoReturn

import typer

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_STDOUT_CLOSED = 141  # 128 + SIGPIPE, as a tool killed by it exits (Windows has no SIGPIPE)

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


def stdout_closed() -> NoReturn:
    """Exit quietly once standard output's reader has gone (``| head``), with no second
    BrokenPipeError when Python flushes it on the way out."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise typer.Exit(EXIT_STDOUT_CLOSED)
