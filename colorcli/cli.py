"""The ``colorcli`` command line: a thin Typer layer; each command lives in ``colorcli.commands``.

Nothing heavy is imported here, so ``colorcli --help`` starts fast and the base install
never touches torch.
"""

from __future__ import annotations

import signal
import sys

import typer

from colorcli import __version__
from colorcli.commands import colorize, evaluate, export, info, train
from colorcli.commands._common import EXIT_TERMINATED, Terminated, raise_terminated

app = typer.Typer(
    name="colorcli",
    help="Colour black-and-white photos, whole folders at a time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("colorize")(colorize.colorize)
app.command("train")(train.train)
app.command("export")(export.export)
app.command("info")(info.info)
app.command("evaluate")(evaluate.evaluate)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"colorcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Colour black-and-white photos, whole folders at a time."""


def main() -> None:
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        app()
    except Terminated:
        typer.echo("error: terminated (SIGTERM)", err=True)
        sys.exit(EXIT_TERMINATED)
