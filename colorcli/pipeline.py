"""Colouring many photos: discovery, sharding, and the threaded decode -> batched inference -> encode
pipeline, behind the :class:`Colorizer` Python API.

Decoding and encoding run in a thread pool (Pillow, numpy and onnxruntime release the GIL)
while the calling thread batches render-size inputs for onnxruntime. Every stage is bounded,
and discovery is a generator, so memory stays flat however many files there are, but for a
digest of each input and output (:class:`Claims`) that stops two inputs writing one file.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import io
import itertools
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from colorcli import color, imageio, render, runtime
from colorcli.atomic import write_atomic

_SUFFIX_FORMATS = {".jpg": "jpg", ".jpeg": "jpg", ".jpe": "jpg", ".jfif": "jpg", ".png": "png"}
_SUFFIX_FORMATS |= {".webp": "webp", ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp"}
DEFAULT_QUALITY = 92
# share of the context pass in the blended a,b. On the held-out photos at render size 384 and
# context 192, 0.5 and 0.7 scored alike; 0.3 kept more of the render size's patches of false colour.
CONTEXT_WEIGHT = 0.5


@dataclass(frozen=True)
class Job:
    """One photo to colour and where its result goes."""

    source: Path
    target: Path


@dataclass
class Result:
    """What happened to one input: status is ok, failed, skipped or planned (--dry-run)."""

    input: str
    output: str | None
    status: str
    error: str | None = None
    ms: float = 0.0
    megapixels: float = 0.0
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None or k in ("output", "error")}


@dataclass(frozen=True)
class WriteOptions:
    format: str = "keep"  # keep | jpg | png | webp | tiff | bmp
    quality: int = DEFAULT_QUALITY
    overwrite: bool = False
    skip_existing: bool = False
    compare: bool = False


# ---------------------------------------------------------------------------------------------
# discovery


def target_suffix(source: Path, fmt: str) -> str:
    if fmt != "keep":
        return imageio.OUTPUT_FORMATS[fmt][1]
    return source.suffix if source.suffix.lower() in _SUFFIX_FORMATS else ".png"


def discover(
    inputs: Iterable[str], output: Path | None, fmt: str, recursive: bool = True
) -> Iterator[Job | Result]:
    """Jobs for files, folders (mirrored under OUTPUT, default ``FOLDER-colorized``) and globs.

    Streams: folders are walked lazily, in sorted order. Inputs that do not exist come out as
    failed :class:`Result` s. Folder walks never enter an output folder and survive symlink loops.
    """
    for raw in inputs:
        path = Path(raw)
        try:
            path.stat()
        except FileNotFoundError:
            pass
        except OSError as exc:  # a name too long, a folder in the path not searchable
            yield Result(raw, None, "failed", f"cannot look it up: {exc.strerror or exc}")
            continue
        if path.is_dir():
            yield from _folder_jobs(path, output, fmt, recursive)
        elif path.is_file():
            yield _loose_job(path, output, fmt)
        elif glob.has_magic(raw):
            matches = _pattern_inputs(raw, output, fmt, recursive)
            if matches is None:
                yield Result(raw, None, "failed", "the pattern matches no files")
            yield from discover(matches or [], output, fmt, recursive)
        else:
            yield Result(raw, None, "failed", "no such file or folder")


def _pattern_inputs(pattern: str, output: Path | None, fmt: str, recursive: bool) -> list[str] | None:
    """A pattern's matches that are inputs, sorted (None when it matches nothing at all)."""
    matches = sorted(glob.glob(pattern, recursive=recursive))
    if not matches:
        return None
    ours = _outputs_among(matches, output, fmt)
    return [match for match in matches if os.path.realpath(match) not in ours]


class Reads:
    """Every file a run given ``inputs`` (files, folders, patterns) reads, known before it starts.

    :class:`Claims` meets inputs one by one, so an early job's output could replace, under
    --overwrite, an input a later job has yet to read (``colorize dir a.png -o . --overwrite``:
    ``dir/a.png``'s result is ``./a.png``). A path list on standard input is known only as it
    streams; :class:`Claims` covers that.
    """

    def __init__(self, inputs: Iterable[str], output: Path | None, fmt: str, recursive: bool = True) -> None:
        self._files: set[str] = set()
        self._folders: list[tuple[Path, Path | None, bool]] = []  # (root, output inside it, recursive)
        self._recursive = recursive
        for raw in inputs:
            self._add(raw, output, fmt)

    def _add(self, raw: str, output: Path | None, fmt: str) -> None:
        path = Path(raw)
        if not _exists(path):
            pass
        elif path.is_dir():
            root, out = path.resolve(), _folder_output(path, output).resolve()
            self._folders.append((root, out if out.is_relative_to(root) else None, self._recursive))
        elif path.is_file():
            self._files.add(os.path.realpath(path))
        elif glob.has_magic(raw):
            for match in _pattern_inputs(raw, output, fmt, self._recursive) or []:
                self._add(match, output, fmt)

    def __contains__(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        if str(real) in self._files:
            return True
        if real.suffix.lower() not in imageio.INPUT_SUFFIXES or not _exists(real):
            return False
        for root, out, recursive in self._folders:
            if real.is_relative_to(root) and not (out is not None and real.is_relative_to(out)):
                parts = real.relative_to(root).parts
                if (recursive or len(parts) == 1) and not any(p.startswith(".") for p in parts):
                    return True
        return False


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; False for one the system cannot look up, whose name is too long
    say: it holds nothing to read, and writing it fails with the reason, for that file alone."""
    try:
        return path.exists()
    except OSError:
        return False


def _outputs_among(matches: list[str], output: Path | None, fmt: str) -> set[str]:
    """The matches of a pattern that this run writes itself, as real paths (symbolic links
    followed): what lies under ``output``, or else each match's default result (and --compare
    picture) beside it. A rerun of ``colorize 'scans/*.jpg'`` must not colour the last run's
    results."""
    if output is not None:
        root = output.resolve()
        return {os.path.realpath(m) for m in matches if Path(m).resolve().is_relative_to(root)}
    ours = set()
    for match in map(Path, matches):
        if match.is_dir():
            ours.add(os.path.realpath(default_output(match)))
        else:  # in any format: a rerun with another --format must not colour them either
            for suffix in {target_suffix(match, fmt), *(s for _, s in imageio.OUTPUT_FORMATS.values())}:
                target = _loose_job(match, None, fmt).target.with_suffix(suffix)
                ours.update(os.path.realpath(t) for t in (target, compare_path(target)))
    return ours


def _loose_job(path: Path, output: Path | None, fmt: str) -> Job:
    suffix = target_suffix(path, fmt)
    if output is None:
        return Job(path, path.with_name(f"{path.stem}-colorized{suffix}"))
    return Job(path, (output / _relative_part(path)).with_suffix(suffix))


def _relative_part(path: Path) -> Path:
    """Where a file given by name lands under -o: its path relative to the working folder (an
    absolute path inside it, as ``find "$PWD"`` prints, included), else its bare name."""
    if not path.is_absolute() and ".." not in path.parts:
        return path
    absolute = Path(os.path.abspath(path))
    for folder in _working_folder_names():
        if absolute.is_relative_to(folder):
            return absolute.relative_to(folder)
    return Path(path.name)


def _working_folder_names() -> list[Path]:
    """The working folder, and the shell's name for it ($PWD) when that is reached through a
    symbolic link, so ``find "$PWD/"`` paths keep their tree there too."""
    names = [Path.cwd()]
    shell = os.environ.get("PWD")
    try:
        if shell and Path(shell) != names[0] and os.path.samefile(shell, names[0]):
            names.append(Path(shell))
    except OSError:
        pass
    return names


def default_output(folder: Path) -> Path:
    # beside the folder as named: a symbolic link's target may be a read-only archive mount
    absolute = Path(os.path.abspath(folder))
    return absolute.parent / f"{absolute.name}-colorized"


def _folder_output(folder: Path, output: Path | None) -> Path:
    return output if output is not None else default_output(folder)


def _folder_jobs(folder: Path, output: Path | None, fmt: str, recursive: bool) -> Iterator[Job | Result]:
    out_root = _folder_output(folder, output)
    if out_root.resolve() == folder.resolve():
        yield Result(str(folder), None, "failed", "-o is this folder itself; choose another output folder")
        return
    avoid = {out_root.resolve()}
    for path in _walk(folder, recursive, avoid):
        if isinstance(path, Result):
            yield path
            continue
        rel = path.relative_to(folder)
        yield Job(path, (out_root / rel).with_suffix(target_suffix(path, fmt)))


def _walk(root: Path, recursive: bool, avoid: set[Path]) -> Iterator[Path | Result]:
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen or folder.resolve() in avoid:
                continue  # a symlink loop, a folder reached twice, or our own output
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield Result(str(folder), None, "failed", f"cannot list folder: {exc.strerror or exc}")
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files, and our own temporary files
            try:
                if entry.is_dir():
                    subfolders.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() not in imageio.INPUT_SUFFIXES:
                    continue
                elif entry.is_file():
                    yield Path(entry.path)
                elif entry.is_symlink():  # its target is gone: say so, not leave the photo out unseen
                    target = os.readlink(entry.path)
                    yield Result(entry.path, None, "failed", f"a broken symbolic link (to {target})")
            except OSError:
                continue
        if recursive:
            stack.extend(reversed(subfolders))


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) -> (K, N); ValueError with a usable message otherwise."""
    # plain ASCII digits: int() also takes "1_0", "+2" and other scripts' digits
    match = re.fullmatch(r"([0-9]+)/([0-9]+)", text.strip())
    if match is None:
        raise ValueError(f"--shard expects K/N such as 2/8, not {text!r}")
    k, n = int(match[1]), int(match[2])
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K must be between 1 and N")
    return k, n


def in_shard(job: Job | Result, shard: tuple[int, int]) -> bool:
    """Deterministic split by a hash of the input path: the same on every machine, no coordination."""
    name = job.source if isinstance(job, Job) else job.input
    k, n = shard
    # a cryptographic digest, not crc32: CRC's low bits are linear in the input bits, so names
    # differing in one character can all land in the same shard
    digest = hashlib.blake2b(os.fsencode(str(name)), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n == k - 1


def read_path_list(stream: BinaryIO, nul: bool, head: bytes = b"") -> Iterator[str]:
    """Paths from standard input, one per line (or NUL-separated), streamed; ``head``: its first
    bytes, read already."""
    sep = b"\0" if nul else b"\n"
    pending = b""
    # read1: what the pipe holds now, so a slow producer's paths are coloured as they come
    read = getattr(stream, "read1", stream.read)
    for chunk in itertools.chain([head], iter(lambda: read(1 << 16), b"")):
        pending += chunk
        *complete, pending = pending.split(sep)
        for item in complete:
            yield from _decoded_path(item, nul)
    yield from _decoded_path(pending, nul)


def _decoded_path(item: bytes, nul: bool) -> Iterator[str]:
    if not nul:
        item = item.rstrip(b"\r")
    if item:
        yield os.fsdecode(item)


class Claims:
    """The inputs and outputs one run has met, so that no two inputs write the same file.

    Jobs run several at a time, so two jobs with one target would both find it free and the
    second rename would silently replace the first result. With ``compare``, each job's
    --compare picture is an output too (``a.jpg``'s is where ``a-compare.jpg``'s result goes).
    Kept as 8-byte digests: under 200 bytes a file, however long the paths.
    """

    def __init__(self, compare: bool = False, reads: Reads | None = None) -> None:
        self._compare = compare
        self._reads = reads
        self._outputs: dict[int, int] = {}  # output -> the input that writes it
        self._inputs: set[int] = set()

    def check(self, job: Job) -> Result | None:
        """None when ``job`` may go ahead (and it is claimed), else the Result it ends in."""
        source = _digest(job.source)
        written = [job.target, compare_path(job.target)] if self._compare else [job.target]
        outputs = [_digest(path) for path in written]
        if self._outputs.get(outputs[0]) == source:
            return Result(str(job.source), str(job.target), "skipped", note="given twice")
        for path, output in zip(written, outputs, strict=True):
            if output in self._outputs:
                return Result(
                    str(job.source),
                    str(job.target),
                    "failed",
                    f"another input of this run has the same output, {path}; "
                    "colour them into separate -o folders",
                )
        if any(output in self._inputs for output in outputs) or self._read_later(job, written):
            return Result(
                str(job.source), str(job.target), "failed", "the output would overwrite another input"
            )
        if source in self._outputs:
            return Result(str(job.source), str(job.target), "skipped", note="the output of another input")
        self._outputs.update(dict.fromkeys(outputs, source))
        self._inputs.add(source)
        return None

    def _read_later(self, job: Job, written: list[Path]) -> bool:
        # the job's own input is _target_problem's to report
        own = os.path.realpath(job.source)
        return self._reads is not None and any(
            os.path.realpath(path) != own and path in self._reads for path in written
        )


def _digest(path: Path) -> int:
    # symbolic links followed: d/x.png through a link to . is x.png
    absolute = os.fsencode(os.path.realpath(path))
    return int.from_bytes(hashlib.blake2b(absolute, digest_size=8).digest(), "big")


def plan(
    jobs: Iterable[Job | Result], options: WriteOptions, reads: Reads | None = None
) -> Generator[Result, None, None]:
    """What :meth:`Colorizer.run` would do, touching nothing: ``planned`` for each image it would
    colour, and the skipped and failed ones as the run would report them."""
    claims = Claims(options.compare, reads)
    for job in jobs:
        if isinstance(job, Job):
            job = (
                claims.check(job)
                or _target_problem(job, options)
                or Result(str(job.source), str(job.target), "planned")
            )
        yield job


# ---------------------------------------------------------------------------------------------
# colouring


@dataclass
class _Prepared:
    picture: imageio.Picture
    inputs: list[np.ndarray]  # (1, R, R) normalised L, then (1, C, C) for the context pass if any
    started: float


class Colorizer:
    """Colour photos with a colorcli ONNX model.

    Cheap to pickle: the onnxruntime session is created lazily, once per process, on first use,
    so a Colorizer can be shipped to Ray, Dask or Spark workers.

    >>> from colorcli import Colorizer
    >>> colour = Colorizer(model="model.onnx").colorize(PIL.Image.open("old.jpg"))
    """

    def __init__(
        self,
        model: str | Path | None = None,
        device: str = "auto",
        render_size: int | None = None,
        saturation: float = 1.0,
        batch_size: int = 4,
        workers: int = 0,
        threads: int = 0,
        max_megapixels: float = imageio.DEFAULT_MAX_MEGAPIXELS,
        context_size: int | None = None,
    ) -> None:
        if device not in runtime.DEVICES:
            raise ValueError(f"unknown device {device!r}; choose one of: {', '.join(runtime.DEVICES)}")
        if saturation < 0:
            raise ValueError("saturation must be >= 0")
        if render_size is not None and render_size < 8:
            raise ValueError("render size must be at least 8")
        if context_size is not None and 0 < context_size < 8:
            raise ValueError(f"context size must be 0 (off) or at least 8 (got {context_size})")
        self.model_path = None if model is None else Path(model)
        self.device = device
        self.saturation = saturation
        self.batch_size = max(1, batch_size)
        self.workers = workers or min(8, os.cpu_count() or 1)
        self.threads = threads
        self.max_megapixels = max_megapixels
        self._render_size = render_size
        self._context_size = context_size
        self._loaded: runtime.LoadedModel | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_loaded"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def model(self) -> runtime.LoadedModel:
        """The onnxruntime session, opened on first use (ModelLoadError/DeviceError if it cannot be)."""
        with self._lock:
            if self._loaded is None:
                self._loaded = runtime.load_model(self.model_path, self.device, self.threads)
            return self._loaded

    @property
    def render_size(self) -> int:
        return self._render_size or self.model.info.render_size

    @property
    def context_size(self) -> int:
        """Size of the context pass (0: none): the given one, else the model's own."""
        return self.model.info.context_size if self._context_size is None else self._context_size

    # --- single images -----------------------------------------------------------------------

    def colorize(self, image: Image.Image) -> Image.Image:
        """Colour one PIL image: 8-bit RGB (RGBA when it has alpha), full size, upright, sRGB-tagged."""
        picture = imageio.from_pil(image)
        (ab,) = self._predict([self._model_inputs(picture)])
        rendered = self._render(picture, ab, sixteen_bits=False)
        assert isinstance(rendered, Image.Image)
        result = rendered if rendered.mode == "RGBA" else rendered.convert("RGB")
        result.info["icc_profile"] = imageio.srgb_profile()
        if picture.exif:
            result.info["exif"] = picture.exif
        return result

    def colorize_stream(
        self,
        source: BinaryIO | str | Path,
        out: BinaryIO,
        fmt: str = "keep",
        quality: int = DEFAULT_QUALITY,
        name: str = "-",
    ) -> Result:
        """Colour one encoded image from ``source`` into ``out`` (for pipes). The :class:`Result`
        names the input ``name`` and the output ``-``; an image that cannot be read or encoded
        raises :class:`imageio.ImageError`."""
        started = time.perf_counter()
        picture = imageio.load(source, self.max_megapixels)
        (ab,) = self._predict([self._model_inputs(picture)])
        out_format = imageio.output_format(picture.format, fmt)
        imageio.check_encodable(picture.size, out_format)
        rgb = self._render(picture, ab, imageio.keeps_sixteen_bits(picture, out_format))
        try:
            imageio.encode(picture, rgb, out_format, quality, out)
        except Exception as exc:  # as _finish reports an encoder refusing one odd image
            raise imageio.ImageError(f"cannot encode: {type(exc).__name__}: {exc}") from None
        note = "; ".join(imageio.notes_for(picture, out_format)) or None
        return Result(name, "-", "ok", None, _ms(started), round(picture.megapixels, 3), note)

    # --- many files --------------------------------------------------------------------------

    def colorize_files(
        self,
        paths: Iterable[str | Path],
        output_dir: str | Path,
        options: WriteOptions | None = None,
        root: str | Path | None = None,
    ) -> Iterator[Result]:
        """Colour image files into ``output_dir``, yielding one :class:`Result` each.

        Each result takes its file's name, or with ``root`` its path relative to ``root``, so
        files of the same name in different folders of an archive do not meet.
        """
        options = options or WriteOptions()
        out = Path(output_dir)
        base = None if root is None else Path(os.path.abspath(root))

        def job(path: Path) -> Job | Result:
            try:
                relative = Path(os.path.abspath(path)).relative_to(base) if base else Path(path.name)
            except ValueError:
                return Result(str(path), None, "failed", f"not inside root {root}")
            return Job(path, (out / relative).with_suffix(target_suffix(path, options.format)))

        reads = Reads(map(str, paths), None, options.format) if isinstance(paths, list | tuple) else None
        return self.run((job(Path(p)) for p in paths), options, reads)

    def run(
        self,
        jobs: Iterable[Job | Result],
        options: WriteOptions,
        reads: Reads | None = None,
        on_abandoned: Callable[[Result], None] | None = None,
    ) -> Generator[Result, None, None]:
        """The pipeline: decode in threads, batch for the model, render and encode in threads.

        Results come out roughly in input order; failed inputs (a :class:`Result` among ``jobs``)
        pass straight through. ``reads``: every file the run reads, when known before it starts
        (:class:`Reads`), so that no output replaces one of them. Stopped early (closed, or an
        exception such as Ctrl-C inside it), the run drops queued work and lets the images being
        written finish; ``on_abandoned`` receives their results, which were never yielded.
        """
        _ = self.model  # open it before any thread starts, so model errors surface at once
        claims = Claims(options.compare, reads)
        in_flight = 2 * self.workers + self.batch_size
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="colorcli")
        try:
            pool.submit(render.rgbx_lut)  # built while the first images decode
            decoding: deque[tuple[Job, Future[_Prepared | Result]]] = deque()
            finishing: deque[Future[Result]] = deque()
            batch: list[tuple[Job, _Prepared]] = []

            def infer() -> None:
                predicted = self._predict([prepared.inputs for _, prepared in batch])
                for (job, prepared), ab in zip(batch, predicted, strict=True):
                    finishing.append(pool.submit(self._finish, job, prepared, ab, options))
                batch.clear()

            def take_decoded() -> Iterator[Result]:
                job, future = decoding.popleft()
                prepared = future.result()
                if isinstance(prepared, Result):
                    yield prepared
                    return
                batch.append((job, prepared))
                if len(batch) >= self.batch_size:
                    infer()

            def take_finished(limit: int) -> Iterator[Result]:
                while finishing and (len(finishing) > limit or finishing[0].done()):
                    result = finishing[0].result()  # popped after: a stop while it waits keeps it
                    finishing.popleft()
                    yield result

            for job in jobs:
                if isinstance(job, Job):
                    job = claims.check(job) or job
                if isinstance(job, Result):
                    yield job
                    continue
                decoding.append((job, pool.submit(self._prepare, job, options)))
                while len(decoding) >= in_flight:
                    yield from take_decoded()
                yield from take_finished(in_flight)
            while decoding:
                yield from take_decoded()
            if batch:
                infer()
            yield from take_finished(0)
        finally:
            # on Ctrl-C or an abandoned iterator, drop queued work instead of finishing it;
            # images being written complete or leave only their hidden temporary file
            pool.shutdown(wait=True, cancel_futures=True)
            if on_abandoned is not None:
                for future in finishing:
                    if not future.cancelled() and future.exception() is None:
                        on_abandoned(future.result())

    # --- stages ------------------------------------------------------------------------------

    def _model_inputs(self, picture: imageio.Picture) -> list[np.ndarray]:
        """The model's (1, R, R) normalised L: the grey squashed to the square render size, or
        to the photo's longer side when that is smaller; then, when R exceeds the context size
        C, the same at (1, C, C) for the context pass.

        Never upscaling keeps the model at the scale it learnt on: a thumbnail blown up to the
        render size grows false colour (on the validation split's 64 to 160 pixel photos, PSNR
        fell by more than a decibel), and a small input is quicker.
        """
        size = min(self.render_size, max(picture.size))
        context = self.context_size
        sizes = [size, context] if 0 < context < size else [size]
        return [self._lightness(picture, s) for s in sizes]

    def _lightness(self, picture: imageio.Picture, size: int) -> np.ndarray:
        # reducing_gap: a box reduction first makes big photos quick to shrink (8-bit only in Pillow)
        gap = None if picture.deep else 2.0
        small = np.asarray(
            Image.fromarray(picture.grey).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=gap)
        )
        full_scale = 65535.0 if picture.deep else 255.0
        lightness = color.grey_to_lightness(small.astype(np.float32) / np.float32(full_scale))
        return color.normalise_l(lightness)[None].astype(np.float32)

    def _predict(self, inputs: list[list[np.ndarray]]) -> list[np.ndarray]:
        """Each photo's (2, R, R) a,b from its model inputs (:meth:`_model_inputs`).

        Inputs of one shape run as one batch. A context pass sees the whole photo at about the
        scale the model was trained on, so its colours agree across an object; the render-size
        pass sees finer detail but can switch colour halfway along a large object (a cat's fur
        turning blue in patches). Their blend keeps most of both.
        """
        flat = [x for photo in inputs for x in photo]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(flat):
            by_shape.setdefault(x.shape, []).append(i)
        outputs: list[np.ndarray] = [np.empty(0)] * len(flat)
        for indices in by_shape.values():
            for i, ab in zip(indices, self.model.run(np.stack([flat[i] for i in indices])), strict=True):
                outputs[i] = ab
        results, start = [], 0
        for photo in inputs:
            ab, *context = outputs[start : start + len(photo)]
            start += len(photo)
            results.append(render.blend_context(ab, context[0], CONTEXT_WEIGHT) if context else ab)
        return results

    def _render(
        self, picture: imageio.Picture, ab: np.ndarray, sixteen_bits: bool
    ) -> Image.Image | np.ndarray:
        if not np.isfinite(ab).all():
            raise imageio.ImageError(
                "the model gave colours that are not numbers (NaN or infinity) for this photo: the model "
                "is broken; export it again from a good checkpoint, or at another --precision"
            )
        upsampled = render.upsample_ab(ab, picture.size, self.saturation * self.model.info.colour_gain)
        if sixteen_bits:
            return render.render16(picture.grey, upsampled)
        grey = _eight_bits(picture.grey) if picture.deep else picture.grey
        return render.render8(grey, upsampled, picture.alpha)

    def _prepare(self, job: Job, options: WriteOptions) -> _Prepared | Result:
        started = time.perf_counter()
        problem = _target_problem(job, options)
        if problem is not None:
            return problem
        try:
            picture = imageio.load(job.source, self.max_megapixels)
            return _Prepared(picture, self._model_inputs(picture), started)
        except imageio.ImageError as exc:
            return _failed(job, str(exc), started)
        except MemoryError:
            return _failed(job, "out of memory decoding this image; lower --workers", started)
        except Exception as exc:  # a decoder bug on one odd file must not stop the run
            return _failed(job, f"cannot decode: {type(exc).__name__}: {exc}", started)

    def _finish(self, job: Job, prepared: _Prepared, ab: np.ndarray, options: WriteOptions) -> Result:
        picture = prepared.picture
        fmt = _SUFFIX_FORMATS.get(job.target.suffix.lower(), "png")
        try:
            imageio.check_encodable(picture.size, fmt)
            rgb = self._render(picture, ab, imageio.keeps_sixteen_bits(picture, fmt))
            encode = functools.partial(imageio.encode, picture, rgb, fmt, options.quality)
            side = None
            if options.compare:  # encoded first: a compare picture the encoder refuses writes nothing
                try:
                    side = _compare_bytes(picture, rgb, fmt, options.quality)
                except Exception as exc:
                    return _failed(
                        job,
                        f"cannot encode the --compare picture: {type(exc).__name__}: {exc}",
                        prepared.started,
                    )
            # with --skip-existing, a run stopped between the two writes is finished by a rerun
            wrote = [_write_new(job.target, encode, options)]
            if side is not None:
                wrote.append(_write_new(compare_path(job.target), lambda fh: fh.write(side), options))
        except imageio.ImageError as exc:
            return _failed(job, str(exc), prepared.started)
        except FileExistsError as exc:
            return _failed(
                job,
                f"{exc.filename} exists; pass --overwrite to replace it or --skip-existing to keep it",
                prepared.started,
            )
        except OSError as exc:
            where = exc.filename or job.target
            return _failed(job, f"cannot write {where}: {exc.strerror or exc}", prepared.started)
        except Exception as exc:  # an encoder refusing one odd image must not stop the run
            return _failed(job, f"cannot encode: {type(exc).__name__}: {exc}", prepared.started)
        if not any(wrote):
            return Result(
                str(job.source), str(job.target), "skipped", None, _ms(prepared.started), note="output exists"
            )
        notes = imageio.notes_for(picture, fmt)
        if not wrote[0]:
            notes = ["kept the existing result, wrote its --compare picture", *notes]
        note = "; ".join(notes) or None
        return Result(
            str(job.source),
            str(job.target),
            "ok",
            None,
            _ms(prepared.started),
            round(picture.megapixels, 3),
            note,
        )


def _write_new(path: Path, write: Callable[[BinaryIO], object], options: WriteOptions) -> bool:
    """Write ``path``; False when --skip-existing keeps one there. Without --overwrite, a file
    that appeared since :func:`_target_problem` looked (another process colouring into the same
    -o) is kept, not replaced: FileExistsError, or False with --skip-existing."""
    try:
        write_atomic(path, write, replace=options.overwrite)
    except FileExistsError:
        if options.skip_existing:
            return False
        raise
    except OSError as exc:
        if exc.filename is None:  # a full disk, say: name the file whose write failed
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    return True


def compare_path(target: Path) -> Path:
    """Where --compare writes its grey|colour picture: beside the result."""
    return target.with_name(f"{target.stem}-compare{target.suffix}")


def _compare_bytes(picture: imageio.Picture, rgb: Image.Image | np.ndarray, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    side = _side_by_side(picture, rgb)
    side.save(out, format=imageio.OUTPUT_FORMATS[fmt][0], quality=quality, icc_profile=imageio.srgb_profile())
    return out.getvalue()


def _side_by_side(picture: imageio.Picture, rgb: Image.Image | np.ndarray) -> Image.Image:
    colour = rgb.convert("RGB") if isinstance(rgb, Image.Image) else Image.fromarray(_eight_bits(rgb))
    grey = _eight_bits(picture.grey) if picture.deep else picture.grey
    width, height = picture.size
    side = Image.new("RGB", (2 * width, height))
    side.paste(Image.fromarray(grey).convert("RGB"), (0, 0))
    side.paste(colour, (width, 0))
    return side


def _eight_bits(samples: np.ndarray) -> np.ndarray:
    """16-bit samples as the nearest 8-bit ones."""
    return ((samples.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _target_problem(job: Job, options: WriteOptions) -> Result | None:
    started = time.perf_counter()
    try:
        if job.target.resolve() == job.source.resolve():
            return _failed(job, "the output would overwrite the input; choose another -o folder", started)
        exists = job.target.exists()
        compare = compare_path(job.target) if options.compare else None
        compare_exists = compare is not None and compare.exists()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, before Python 3.13
        return _failed(job, f"cannot check the output: {exc}", started)
    if exists and options.skip_existing and (compare is None or compare_exists):
        return Result(str(job.source), str(job.target), "skipped", None, _ms(started), note="output exists")
    keep = "pass --overwrite to replace it or --skip-existing to keep it"
    if exists and not (options.overwrite or options.skip_existing):
        return _failed(job, f"the output exists; {keep}", started)
    if compare_exists and not (options.overwrite or options.skip_existing):
        # found now, not after the result is written: a run reported failed would leave it
        return _failed(job, f"{compare} exists; {keep}", started)
    return None


def _failed(job: Job, error: str, started: float) -> Result:
    return Result(str(job.source), str(job.target), "failed", error, _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 1)


def stdin_is_image(head: bytes) -> bool:
    """Whether the first bytes of standard input are an image rather than a list of paths."""
    signatures = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"GIF8")
    jpeg2000 = (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xffO\xffQ")
    bmp = head[:2] == b"BM" and head[6:10] == b"\0\0\0\0"  # a path list could start with "BM"
    webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    heif = head[4:8] == b"ftyp"  # ISO media box: HEIC/HEIF (no path starts with 4 bytes, then "ftyp")
    # PGM/PPM/PBM, as netpbm and ImageMagick pipes carry them: "P5", blank, a comment or the width
    netpbm = re.match(rb"P[1-7]\s+[#0-9]", head) is not None
    return head.startswith(signatures + jpeg2000) or bmp or webp or heif or netpbm
