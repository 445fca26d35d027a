"""Error reporting shared by the commands: one line on stderr, the right exit code."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import warnings
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


def need_train_extra(command: str, modules: tuple[str, ...]) -> None:
    """Fail first thing, saying what to install, where ``command`` needs modules of the [train]
    extra that are not installed (the base install has no PyTorch)."""
    missing = [m for m in modules if not _installed(m)]
    if missing:
        them = "it" if len(missing) == 1 else "them"
        fail(f"{command} needs {' and '.join(missing)}; install {them} with: pip install 'colorcli[train]'")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it; a module half set up
        return False


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (1 failure, 2 usage)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def usage_error(message: str) -> NoReturn:
    fail(message, EXIT_USAGE)


def warnings_as_lines() -> None:
    """Print each warning as one ``warning: FILE: message`` line on stderr, not Python's
    two-line form, and each of Pillow's once for every file that raises it (not once a run)."""
    warnings.filterwarnings("always", module=r"PIL\.")
    warnings.showwarning = _warning_line


_said: set[str] = set()  # Pillow tries a file it cannot identify twice, warning twice


def _warning_line(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    from colorcli import imageio  # loaded by then: only decoding warns

    name = imageio.file_being_read()
    line = f"warning: {name}: {str(message).strip()}" if name else f"warning: {str(message).strip()}"
    if line not in _said:
        _said.add(line)
        typer.echo(line, err=True)


def stdout_closed() -> NoReturn:
    """Exit quietly once standard output's reader has gone (``| head``), with no second
    BrokenPipeError when Python flushes it on the way out."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise typer.Exit(EXIT_STDOUT_CLOSED)
