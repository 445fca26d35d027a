"""Colouring many photos: the threaded decode -> batched inference -> encode pipeline, behind
the :class:`Colorizer` Python API. Which photos and where their results go is
:mod:`colorcli.discovery`'s.

Decoding and encoding run in a thread pool (Pillow, numpy and onnxruntime release the GIL)
while the calling thread batches render-size inputs for onnxruntime. Every stage is bounded,
so memory stays flat however many files there are.
"""

from __future__ import annotations

import functools
import io
import os
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
from colorcli.discovery import Claims, Job, Reads, Result, compare_path, format_of, target_suffix

DEFAULT_QUALITY = 92
# share of the context pass in the blended a,b. On the held-out photos at render size 384 and
# context 192, 0.5 and 0.7 scored alike; 0.3 kept more of the render size's patches of false colour.
CONTEXT_WEIGHT = 0.5


@dataclass(frozen=True)
class WriteOptions:
    """What a run writes, as ``colorize``'s --format, --quality, --overwrite, --skip-existing,
    --compare and --skip-colour set it."""

    format: str = "keep"  # keep | jpg | png | webp | tiff | bmp
    quality: int = DEFAULT_QUALITY
    overwrite: bool = False
    skip_existing: bool = False
    compare: bool = False
    skip_colour: bool = False  # leave photos in colour already (imageio.Picture.in_colour) alone


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
            if options.skip_colour and picture.in_colour:
                return _skipped(job, "in colour already", started)
            return _Prepared(picture, self._model_inputs(picture), started)
        except imageio.ImageError as exc:
            return _failed(job, str(exc), started)
        except MemoryError:
            return _failed(job, "out of memory decoding this image; lower --workers", started)
        except Exception as exc:  # a decoder bug on one odd file must not stop the run
            return _failed(job, f"cannot decode: {type(exc).__name__}: {exc}", started)

    def _finish(self, job: Job, prepared: _Prepared, ab: np.ndarray, options: WriteOptions) -> Result:
        picture = prepared.picture
        fmt = format_of(job.target)
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
            return _skipped(job, "output exists", prepared.started)
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
        exists = _output_exists(job.target)
        compare = compare_path(job.target) if options.compare else None
        compare_exists = compare is not None and _output_exists(compare)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, before Python 3.13
        return _failed(job, f"cannot check the output: {exc}", started)
    if exists and options.skip_existing and (compare is None or compare_exists):
        return _skipped(job, "output exists", started)
    keep = "pass --overwrite to replace it or --skip-existing to keep it"
    if exists and not (options.overwrite or options.skip_existing):
        return _failed(job, f"the output exists; {keep}", started)
    if compare_exists and not (options.overwrite or options.skip_existing):
        # found now, not after the result is written: a run reported failed would leave it
        return _failed(job, f"{compare} exists; {keep}", started)
    return None


def _output_exists(path: Path) -> bool:
    """Whether ``path`` exists; OSError where it cannot be looked up, as a symbolic link loop
    cannot (which Path.exists() takes for a missing file, and from Python 3.13 resolve() too)."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def _failed(job: Job, error: str, started: float) -> Result:
    return Result(str(job.source), str(job.target), "failed", error, _ms(started))


def _skipped(job: Job, why: str, started: float) -> Result:
    return Result(str(job.source), str(job.target), "skipped", None, _ms(started), note=why)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 1)
