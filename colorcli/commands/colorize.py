"""`colorcli colorize`: colour files, folders, globs, path lists or one piped image."""

from __future__ import annotations

import glob
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from colorcli.commands._common import (
    CONTEXT_SIZE_HELP,
    EXIT_FAILURE,
    fail,
    stdout_closed,
    usage_error,
    warnings_as_lines,
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from colorcli.discovery import Job, Result
    from colorcli.pipeline import Colorizer, WriteOptions

# imageio's output formats and the pipeline's defaults, repeated so that --help loads neither
# numpy nor Pillow (tests/test_colorize_cli.py checks that they agree)
FORMATS = ("keep", "jpg", "png", "webp", "tiff", "bmp")
QUALITY = 92
MAX_MEGAPIXELS = 180.0
_READABLE = "JPEG, PNG, WebP, TIFF, BMP, GIF, JPEG 2000 and HEIC files"


def colorize(
    inputs: list[str] = typer.Argument(
        ...,
        help="Image files, folders (recursed, mirrored under -o) and glob patterns; '-' reads paths from "
        "standard input, or one piped image which then goes to standard output.",
        show_default=False,
    ),
    output: str = typer.Option(
        None,
        "--output",
        "-o",
        help="Output folder (default: FOLDER-colorized beside each folder, NAME-colorized.EXT beside "
        "each file); '-' writes a single image to standard output.",
        show_default=False,
    ),
    model: Path = typer.Option(None, "--model", "-m", help="ONNX model (default: the shipped model)."),
    render_size: int = typer.Option(
        None,
        "--render-size",
        min=8,
        help="Square size the model runs at (default: the model's own); smaller photos run at theirs.",
    ),
    context_size: int | None = typer.Option(None, "--context-size", min=0, help=CONTEXT_SIZE_HELP),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available), cpu or cuda."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Images per model call."),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Decode/encode threads (0: one per core, at most 8)."
    ),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", help="Descend into sub-folders."),
    fmt: str = typer.Option(
        "keep", "--format", help=f"Output format: {', '.join(FORMATS[:-1])} or {FORMATS[-1]}."
    ),
    quality: int = typer.Option(QUALITY, "--quality", min=1, max=100, help="JPEG/WebP quality."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave outputs that exist alone."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs that exist."),
    skip_colour: bool = typer.Option(
        False, "--skip-colour", help="Leave photos in colour already alone (toned prints are still coloured)."
    ),
    saturation: float = typer.Option(
        1.0,
        "--saturation",
        min=0.0,
        help="Scale the predicted colour (1.0: the model's own, including any colour gain it "
        "was exported with).",
    ),
    compare: bool = typer.Option(False, "--compare", help="Also write NAME-compare.EXT: grey | colour."),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per image on stdout (messages go to stderr)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and the summary."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be written, touch nothing."),
    shard: str = typer.Option(None, "--shard", help="K/N: take the K-th of N deterministic slices."),
    null: bool = typer.Option(False, "--null", "-0", help="Paths on standard input are NUL-separated."),
    max_megapixels: float = typer.Option(
        MAX_MEGAPIXELS, "--max-megapixels", min=0.1, help="Refuse larger images (decompression-bomb guard)."
    ),
) -> None:
    """Colour black-and-white photos at full resolution, keeping their luminance and metadata."""
    from colorcli import discovery, imageio, pipeline, runtime

    if fmt not in FORMATS:
        usage_error(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if device not in runtime.DEVICES:
        usage_error(f"--device must be one of {', '.join(runtime.DEVICES)}, not {device!r}")
    if skip_existing and overwrite:
        usage_error("--skip-existing and --overwrite contradict each other; pick one")
    try:
        shard_range = discovery.parse_shard(shard) if shard else None
        colorizer = pipeline.Colorizer(
            model,
            device,
            render_size,
            saturation,
            batch_size,
            workers,
            max_megapixels=max_megapixels,
            context_size=context_size,
        )
    except ValueError as exc:
        usage_error(str(exc))
    options = pipeline.WriteOptions(fmt, quality, overwrite, skip_existing, compare, skip_colour)
    warnings_as_lines()

    # the first bytes tell an image from a list of paths: read them whole, as a pipe may bring fewer
    head = sys.stdin.buffer.read(16) if "-" in inputs and not sys.stdin.isatty() else b""
    stream_in = discovery.stdin_is_image(head)
    if inputs == ["-"] and not head and not sys.stdin.isatty():
        if output == "-":
            fail("standard input is empty: there is no image to colour")
        _say("no images found: standard input was empty (give it paths, one a line, or one image)")
        return  # as xargs -r: no paths, nothing to do
    if stream_in and inputs != ["-"]:
        usage_error("standard input holds an image; colour it on its own: colorcli colorize - < IMAGE > OUT")
    if not stream_in and not null and b"\0" in head:
        usage_error(
            "standard input is neither an image colorcli reads nor a list of paths "
            "(for NUL-separated paths, pass -0)"
        )
    named = Path(output) if output not in (None, "-") else None
    if named is not None and named.suffix.lower() in imageio.INPUT_SUFFIXES and not named.is_dir():
        usage_error(
            f"-o takes a folder, and {output} looks like an image file's name; to name one result, "
            f"colour it to standard output: -o - > {output}"
        )
    if output == "-" or stream_in:
        if stream_in and output not in (None, "-"):
            usage_error(
                f"a piped image is coloured to standard output, not into -o {output}; "
                "drop -o and redirect: > colour.png"
            )
        if sys.stdout.isatty():  # an image's bytes would garble the terminal
            usage_error("the colour image would go to the terminal; redirect it to a file: > colour.png")
        source = _one_input(inputs, stream_in)  # first: a folder given to -o - is the mistake to name
        if compare:
            usage_error("--compare writes NAME-compare beside a result file; a piped result has none")
        if skip_colour:
            usage_error("--skip-colour leaves files out of a run; a piped image always gets its result")
        if dry_run:
            _say(f"dry run: would write standard output  <-  {'standard input' if stream_in else source}")
            return
        _stream(colorizer, source, head if stream_in else None, options, as_json)
        return

    out_root = Path(output) if output else None
    jobs = _sharded(_expand_stdin(inputs, null, head), out_root, fmt, recursive, shard_range)
    # what the arguments name is known now, so no output replaces an input a later job reads
    reads = discovery.Reads([item for item in inputs if item != "-"], out_root, fmt, recursive)
    late: list[Result] = []
    if dry_run:
        results = pipeline.plan(jobs, options, reads)
    else:
        _open_model(colorizer, quiet)  # before -o is made: a bad model leaves no empty folder
        if out_root is not None:
            _check_writable(out_root)
        results = colorizer.run(jobs, options, reads, on_abandoned=late.append)
    # a path list on standard input can be read once only: no total, hence no ETA, for it
    count = (
        None if dry_run or "-" in inputs else lambda: _count(inputs, out_root, fmt, recursive, shard_range)
    )
    failed = _report(results, late, as_json, quiet, count, dry_run)
    if failed:
        raise typer.Exit(EXIT_FAILURE)


def _sharded(
    inputs: Iterable[str], out_root: Path | None, fmt: str, recursive: bool, shard: tuple[int, int] | None
) -> Iterator[Job | Result]:
    from colorcli import discovery

    jobs = discovery.discover(inputs, out_root, fmt, recursive)
    return jobs if shard is None else (job for job in jobs if discovery.in_shard(job, shard))


def _count(
    inputs: list[str], out_root: Path | None, fmt: str, recursive: bool, shard: tuple[int, int] | None
) -> int:
    from colorcli import discovery

    return sum(isinstance(job, discovery.Job) for job in _sharded(inputs, out_root, fmt, recursive, shard))


def _expand_stdin(inputs: list[str], null: bool, head: bytes) -> Iterator[str]:
    """The inputs, "-" replaced by the paths on standard input (``head``: its bytes read already)."""
    from colorcli import discovery

    for item in inputs:
        if item == "-":
            yield from discovery.read_path_list(sys.stdin.buffer, null, head)
        else:
            yield item


def _open_model(colorizer: Colorizer, quiet: bool) -> None:
    from colorcli import runtime

    try:
        loaded = colorizer.model
        size = colorizer.render_size
        context = colorizer.context_size
    except (runtime.ModelLoadError, runtime.DeviceError) as exc:
        fail(str(exc))
    if not quiet:
        sizes = f"render size {size}" + (f", context {context}" if 0 < context < size else "")
        _say(f"model {loaded.path.name} ({loaded.info.arch}, {sizes}) on {loaded.device}")


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create the output folder {folder}: {exc.strerror or exc}")
    if not os.access(folder, os.W_OK | os.X_OK):
        fail(f"the output folder {folder} is not writable; choose another with -o")


def _one_input(inputs: list[str], stream_in: bool) -> str:
    """The one input a pipe to standard output takes ("-" for a piped image), a pattern's match."""
    if len(inputs) != 1:
        usage_error("-o - writes one image to standard output; give exactly one input")
    if inputs[0] == "-" and not stream_in:
        usage_error("-o - colours one image piped in, and standard input holds paths; drop -o -")
    if Path(inputs[0]).is_dir():
        usage_error(f"-o - writes one image, and {inputs[0]} is a folder; drop -o - to colour the folder")
    if stream_in or not glob.has_magic(inputs[0]):
        return inputs[0]
    matches = glob.glob(inputs[0])
    if len(matches) != 1:
        usage_error(f"-o - writes one image, and {inputs[0]!r} matches {len(matches)} files")
    return matches[0]


def _stream(
    colorizer: Colorizer, name: str, piped_head: bytes | None, options: WriteOptions, as_json: bool
) -> None:
    """One image to standard output: from standard input (whose first bytes, read already, are
    ``piped_head``) or from the file ``name``."""
    import io

    from colorcli import imageio, runtime
    from colorcli.discovery import Result

    source = io.BytesIO(piped_head + sys.stdin.buffer.read()) if piped_head is not None else name
    started = time.perf_counter()
    buffer = io.BytesIO()
    try:
        result = colorizer.colorize_stream(source, buffer, options.format, options.quality, name=name)
    except (runtime.ModelLoadError, runtime.DeviceError) as exc:
        fail(str(exc))
    except imageio.ImageError as exc:
        if as_json:  # standard output holds the image, so the record goes to standard error
            _say(json.dumps(Result(name, "-", "failed", str(exc), _ms(started)).to_json()))
        fail(f"{name}: {exc}")
    try:
        _write_all(buffer.getbuffer())
    except BrokenPipeError:
        _say(f"error: standard output was closed before {name}'s colour image was written whole")
        stdout_closed()
    if as_json:
        _say(json.dumps(result.to_json()))


def _write_all(data: memoryview) -> None:
    """All of ``data`` to standard output: to a pipe whose reader has gone, one write stops
    short without an error, and only the next raises BrokenPipeError."""
    while data:
        data = data[sys.stdout.buffer.write(data) :]
    sys.stdout.buffer.flush()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 1)


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _report(
    results: Generator[Result, None, None],
    late: list[Result],
    as_json: bool,
    quiet: bool,
    count: Callable[[], int] | None,
    dry_run: bool,
) -> int:
    """Print per-image lines (or JSON, or a progress bar) and the summary; returns the failure count.

    ``late`` fills, once ``results`` is closed, with the images that were being written when the
    run stopped, so that the log and the summary name every result on disk. On a terminal,
    ``count`` (a second, metadata-only walk of the inputs) runs in a background thread and gives
    the bar its total, hence its ETA, without delaying the first image.
    """
    bar = None if quiet or not sys.stderr.isatty() else _progress()
    tally = _Tally(as_json, quiet, bar)
    stopped = True  # until the loop ends by itself: Ctrl-C and SIGTERM still get the summary
    try:
        if bar:
            bar.start()
            if count is not None:
                threading.Thread(target=lambda: bar.update(tally.task, total=count()), daemon=True).start()
        for result in results:
            tally.add(result)
            if tally.stdout_closed:
                break
        else:
            stopped = False
    finally:
        results.close()  # waits for the images being written, whose results go to ``late``
        for result in late:
            tally.add(result)
        if bar:
            bar.stop()
        why = "standard output was closed" if tally.stdout_closed else None
        _say(_summary(tally, stopped, dry_run, why))
    if tally.stdout_closed:
        stdout_closed()
    return tally.counts["failed"]


class _Tally:
    """The run's counts, and each result's JSON line, failure message, log line or bar step."""

    def __init__(self, as_json: bool, quiet: bool, bar: Progress | None) -> None:
        from colorcli.imageio import IN_COLOUR

        self.as_json, self.quiet, self.bar = as_json, quiet, bar
        self.counts = {"ok": 0, "failed": 0, "skipped": 0, "planned": 0}
        self.in_colour = 0  # results whose photo was in colour already
        self._in_colour_note = IN_COLOUR
        self.megapixels = 0.0
        self.started = time.perf_counter()
        self.stdout_closed = False  # its reader is gone (``| head``): the run stops as on Ctrl-C
        self.task = bar.add_task("colouring", total=None, failed=0, mps=0.0) if bar else None

    def add(self, result: Result) -> None:
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        self.megapixels += result.megapixels
        if result.status == "ok" and self._in_colour_note in (result.note or ""):
            self.in_colour += 1
        if self.as_json and not self.stdout_closed:
            try:
                _print_json(result.to_json())
            except BrokenPipeError:
                self.stdout_closed = True
        if result.status == "failed":
            message = f"failed: {_shown(result.input)}: {result.error}"
            (self.bar.console.print(message, markup=False, highlight=False) if self.bar else _say(message))
        elif self.bar is None and not self.quiet and not self.as_json:
            _say(_line(result))
        if self.bar is not None:
            elapsed = max(time.perf_counter() - self.started, 1e-9)
            self.bar.update(self.task, advance=1, failed=self.counts["failed"], mps=self.megapixels / elapsed)


def _print_json(document: dict[str, Any]) -> None:
    """One JSON line on stdout, valid UTF-8 even for a file name that is not: its undecodable
    bytes (held as lone surrogates) go out as \\udcXX escapes, which JSON readers accept."""
    line = json.dumps(document, ensure_ascii=False) + "\n"
    sys.stdout.buffer.write(line.encode("utf-8", "backslashreplace"))
    sys.stdout.buffer.flush()


def _summary(tally: _Tally, stopped: bool, dry_run: bool, why: str | None) -> str:
    counts, elapsed, megapixels = tally.counts, time.perf_counter() - tally.started, tally.megapixels
    done, skipped, failed = counts["ok"], counts["skipped"], counts["failed"]
    if not any(counts.values()) and not stopped:
        return f"no images found (colorcli reads {_READABLE})"
    if dry_run:
        return f"dry run: {counts['planned']} to colour, {skipped} skipped, {failed} failed"
    summary = f"{done} coloured, {skipped} skipped, {failed} failed in {elapsed:.1f} s"
    if done:
        summary += f" ({done / elapsed:.2f} images/s, {megapixels / elapsed:.1f} MP/s)"
    if tally.in_colour:
        summary += f"; {tally.in_colour} of them in colour already (--skip-colour leaves such photos alone)"
    if stopped:
        summary = (
            f"stopped{f' ({why})' if why else ''}: {summary}; every result written is complete, "
            "and a rerun with --skip-existing finishes the job"
        )
    return summary


def _line(result: Result) -> str:
    note = f" [{result.note}]" if result.note else ""
    source, target = _shown(result.input), _shown(result.output or "")
    if result.status == "planned":
        return f"would write {target}  <-  {source}"
    return f"{result.status}: {source} -> {target} ({result.ms:.0f} ms){note}"


def _shown(name: str) -> str:
    """A file name on one line: a newline or other control character in it escaped."""
    return name if name.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def _progress() -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[mps]:.1f} MP/s"),
        TextColumn("failed: {task.fields[failed]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
