"""`colorcli evaluate`: score models against a folder of colour photos."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from colorcli.commands._common import CONTEXT_SIZE_HELP, fail, usage_error, warnings_as_lines

if TYPE_CHECKING:  # the engine pulls in numpy and Pillow: only when the command runs
    from PIL import Image

    from colorcli.evaluate import Candidate, Evaluation, PhotoScores


def evaluate(
    directory: Path = typer.Argument(
        ..., help="Folder of colour photos (searched recursively); grey ones are skipped."
    ),
    model: list[Path] | None = typer.Option(
        None,
        "--model",
        "-m",
        metavar="MODEL.onnx",
        help="ONNX model to score; repeat to compare. Default: the shipped model.",
    ),
    render_size: int | None = typer.Option(
        None,
        "--render-size",
        min=8,
        help="Models run on the grey resized to N×N, as colorize does. Default: each model's own size.",
    ),
    context_size: int | None = typer.Option(None, "--context-size", min=0, help=CONTEXT_SIZE_HELP),
    max_side: int = typer.Option(
        512, "--max-side", min=16, help="Shrink photos to at most this many pixels a side before scoring."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Score only the first N colour photos (sorted by path)."
    ),
    grid: Path | None = typer.Option(
        None,
        "--grid",
        metavar="FILE.png",
        help="Write a comparison sheet (original, grey, one column per model; first 8 photos) here.",
    ),
    per_photo: Path | None = typer.Option(
        None,
        "--per-photo",
        metavar="FILE.csv",
        help="Also write every photo's figures here, a row per photo and model (PSNR and its gain "
        "over grey, SSIM, a,b error and AUC, colourfulness and its ratio to the original's).",
    ),
    hues: bool = typer.Option(
        False,
        "--hues",
        help="Also show, per hue of the originals (red, orange/skin, yellow, green, cyan/blue, "
        "violet/pink), how often each model gives it back, grey or another hue (always in --json).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of a table."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """Turn colour photos grey, colour them with each model and compare with the originals.

    Per model, beside a grey baseline (a,b = 0): PSNR, SSIM, mean a,b error, a,b AUC and colourfulness.

    a,b AUC: Zhang et al. 2016; colourfulness: Hasler and Süsstrunk 2003.

    With --hues, also how each hue of the originals comes back: as itself, grey or another hue.
    """
    from colorcli import evaluate as engine
    from colorcli import imageio, runtime
    from colorcli.atomic import write_atomic
    from colorcli.pipeline import Colorizer

    if not directory.is_dir():
        usage_error(f"{directory} is not a folder; give a folder of colour photos")
    for flag, path, suffix in (("--grid", grid, ".png"), ("--per-photo", per_photo, ".csv")):
        if path is not None:
            _check_output(flag, path, suffix, directory)
    warnings_as_lines()
    photos = imageio.find_images(directory)
    if not photos:
        fail(f"no photos in {directory} (looked for {', '.join(sorted(imageio.INPUT_SUFFIXES))})")

    if device not in runtime.DEVICES:
        usage_error(f"--device {device}: choose one of {', '.join(runtime.DEVICES)}")
    try:
        paths = model or [runtime.default_model_path()]
        colorizers = [
            Colorizer(p, device=device, render_size=render_size, context_size=context_size) for p in paths
        ]
        # model_candidate opens each model now, so a bad one fails before any photo is read
        candidates = [engine.model_candidate(n, c) for n, c in zip(_names(paths), colorizers, strict=True)]
    except ValueError as exc:
        usage_error(str(exc))
    except (runtime.ModelLoadError, runtime.DeviceError) as exc:  # exit 1, as in colorize
        fail(str(exc))

    scores: list[engine.PhotoScores] = []  # kept only for --per-photo: a few figures a photo
    keep = scores.append if per_photo is not None else None
    try:
        evaluation, rows = _run(
            photos, candidates, max_side, engine.GRID_MAX_ROWS if grid else 0, limit, keep
        )
    except imageio.ImageError as exc:
        fail(str(exc))
    if evaluation.photos == 0:
        fail(
            f"none of the {len(photos)} files in {directory} is a readable colour photo "
            f"({len(evaluation.skipped_grey)} grey, {len(evaluation.unreadable)} unreadable)"
        )
    if grid is not None:
        try:
            grid.parent.mkdir(parents=True, exist_ok=True)
            engine.render_grid(rows, ["original", *(c.name for c in evaluation.results)]).save(grid)
        except OSError as exc:
            fail(f"cannot write the grid to {grid}: {exc.strerror or exc}")
    if per_photo is not None:
        table = engine.per_photo_csv(scores, [r.name for r in evaluation.results]).encode()
        try:
            write_atomic(per_photo, lambda fh: fh.write(table))
        except OSError as exc:
            fail(f"cannot write the per-photo figures to {per_photo}: {exc.strerror or exc}")

    if as_json:
        document = {"directory": str(directory), "max_side": max_side, **evaluation.to_dict()}
        if grid is not None:
            document["grid"] = str(grid)
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_table(evaluation, directory, max_side, grid)
        if hues:
            _print_hues(evaluation)


def _check_output(flag: str, path: Path, suffix: str, photos: Path) -> None:
    """Before any photo is scored: an output path that cannot be written would throw the
    evaluation away at the end, and one among the photos would replace one (or be scored as
    one next time)."""
    if path.is_dir():
        usage_error(f"{flag} {path} is a folder; give a file name")
    if path.suffix.lower() != suffix:
        kind = "PNG" if suffix == ".png" else "CSV"
        usage_error(f"{flag} {path}: it is written as {kind}; give a file name ending in {suffix}")
    if path.exists() and not path.is_file():
        usage_error(f"{flag} {path} is not a regular file; give a file name")
    if path.absolute().resolve().is_relative_to(photos.absolute().resolve()):
        usage_error(f"{flag} {path} is inside {photos}, among the photos evaluated; write it elsewhere")
    folder = next(p for p in (path.parent, *path.absolute().parent.parents) if p.exists())
    if not folder.is_dir():
        usage_error(f"{flag} {path}: {folder} is a file, in the way of the folder it should go in")
    if not os.access(folder, os.W_OK | os.X_OK):
        usage_error(f"{flag} {path}: {folder} is not writable")


def _names(paths: list[Path]) -> list[str]:
    """File stems, or the paths as given where two models share a stem or one is the grey
    baseline's name."""
    from colorcli.evaluate import GREY_NAME

    stems = [p.stem for p in paths]
    return [
        s if stems.count(s) == 1 and s != GREY_NAME else str(p) for s, p in zip(stems, paths, strict=True)
    ]


def _run(
    photos: list[Path],
    candidates: Sequence[Candidate],
    max_side: int,
    grid_rows: int,
    limit: int | None,
    on_photo: Callable[[PhotoScores], None] | None,
) -> tuple[Evaluation, list[list[Image.Image]]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from colorcli import evaluate as engine

    # The bar goes to stderr, so --json output on stdout stays a clean document.
    console = Console(stderr=True)
    if not console.is_terminal:  # no bar at all: before rich 15, even a disabled one stopped by an
        # error printed a blank line first
        return engine.evaluate(photos, candidates, max_side, grid_rows, limit, on_photo=on_photo)
    with Progress(
        TextColumn("evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        # grey and unreadable files are not counted, so the bar may stop short of its total
        task = progress.add_task("evaluating", total=min(len(photos), limit or len(photos)))

        def scored(photo: PhotoScores) -> None:
            if on_photo is not None:
                on_photo(photo)
            progress.advance(task)

        return engine.evaluate(photos, candidates, max_side, grid_rows, limit, on_photo=scored)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _print_table(evaluation: Evaluation, directory: Path, max_side: int, grid: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{_count(evaluation.photos, 'photo')} from {directory}, at most {max_side} px a side",
        caption=(
            "PSNR in dB, +grey: gain over the grey baseline; ab err: mean a,b error; "
            f"colour: colourfulness, ×orig: over the originals' {evaluation.originals_colourfulness:.1f}"
        ),
    )
    table.add_column("model", overflow="fold")
    for header in ("PSNR", "+grey", "SSIM", "ab err", "ab AUC", "colour", "×orig"):
        table.add_column(header, justify="right", no_wrap=True)
    for r in evaluation.results:
        table.add_row(
            r.name,
            f"{r.psnr:.2f}",
            f"{r.psnr_gain:+.2f}",
            f"{r.ssim:.4f}",
            f"{r.ab_error:.2f}",
            f"{r.ab_auc:.4f}",
            f"{r.colourfulness:.1f}",
            f"{r.colourfulness_ratio:.2f}",  # originals are never grey, so never nan
        )
    console = Console()
    console.print(table)
    skipped = len(evaluation.skipped_grey) + len(evaluation.unreadable)
    if skipped:
        console.print(
            f"skipped {len(evaluation.skipped_grey)} grey and {len(evaluation.unreadable)} unreadable files"
        )
    if grid is not None:
        console.print(f"grid written to {grid}")


def _print_hues(evaluation: Evaluation) -> None:
    from rich.console import Console
    from rich.table import Table

    from colorcli import metrics
    from colorcli.evaluate import GREY_NAME

    table = Table(
        title=f"hues of the originals' coloured pixels (chroma ≥ {metrics.COLOURED_CHROMA:g})",
        caption=(
            f"same: given their own hue; grey: chroma under {metrics.GREY_CHROMA:g}; "
            "chroma: the model's over the originals'"
        ),
    )
    table.add_column("model", overflow="fold")
    table.add_column("hue", no_wrap=True)
    for header in ("pixels", "same", "grey"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("most often instead", no_wrap=True)
    table.add_column("chroma", justify="right", no_wrap=True)
    for r in evaluation.results:
        if r.name == GREY_NAME:
            continue
        table.add_section()
        for row, (hue, figures) in enumerate(r.hues.items()):
            given = figures["given"]
            other = max((h for h in given if h not in (hue, GREY_NAME)), key=given.__getitem__)
            ratio = figures["chroma_ratio"]
            if ratio is None:  # no original pixel of this hue: nothing came back any way
                same = grey = instead = chroma = "–"
            else:
                same, grey, chroma = f"{given[hue]:.0%}", f"{given[GREY_NAME]:.0%}", f"{ratio:.2f}"
                instead = f"{other} {given[other]:.0%}" if given[other] else "–"
            table.add_row("" if row else r.name, hue, f"{figures['share']:.1%}", same, grey, instead, chroma)
    Console().print(table)
