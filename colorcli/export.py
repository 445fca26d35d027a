"""Export a checkpoint's generator to a verified, self-describing ONNX model.

The graph is the generator alone (the contract in :mod:`colorcli.metadata`). Every export
is checked before it is written: ``onnx.checker``, then onnxruntime against PyTorch on
random L maps and real photos at several sizes. An fp32 model that disagrees by more than
:data:`FP32_TOLERANCE` is refused and nothing is left on disk. fp16 and int8 models are
compared with the fp32 graph on sample photos so their cost in quality is printed with
their size. :mod:`colorcli.export_checks` does the measuring; this module decides. torch,
onnx and onnxruntime's quantization tools are imported lazily: this module is only used
with the ``[train]`` extra installed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from colorcli import __version__, export_checks, imageio, metadata
from colorcli.atomic import write_atomic
from colorcli.export_checks import ParityCase, QualityCase
from colorcli.imageio import INPUT_SUFFIXES

PRECISIONS = ("fp32", "fp16", "int8")
FP32_TOLERANCE = 1e-4  # largest |ONNX - PyTorch| in normalised a,b units an fp32 export may show
DEFAULT_OPSET = 18  # the lowest opset torch's dynamo exporter emits natively
MAX_CALIBRATION_IMAGES = 64


class ExportError(RuntimeError):
    """The export failed: unreadable checkpoint, failed check, unwritable output."""


class ExportUsageError(ExportError):
    """The arguments cannot work (missing input, bad output folder, bad option value)."""


@dataclass
class ExportReport:
    output: Path
    info: metadata.ModelInfo
    parity: list[ParityCase]
    size_bytes: int
    fp32_size_bytes: int
    quantization: str = ""  # int8 only: "static (N calibration images)" or "dynamic"
    quality: list[QualityCase] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max(c.max_abs_diff for c in self.parity)


def export_model(
    checkpoint_path: str | Path,
    output: str | Path,
    render_size: int | None = None,
    opset: int | None = None,
    precision: str = "fp32",
    calibration: str | Path | None = None,
    log: Callable[[str], None] = print,
    temperature: float | None = None,
    colour_gain: float = 1.0,
    context_size: int = 0,
) -> ExportReport:
    """Export the generator of a checkpoint (file or run directory) to ``output``.

    Raises :class:`ExportUsageError` for arguments that cannot work and :class:`ExportError`
    when the checkpoint is unusable or a check fails; in both cases ``output`` is untouched.
    """
    from colorcli import checkpoint

    output = Path(output)
    calibration_images = _check_arguments(checkpoint_path, output, render_size, opset, precision, calibration)
    if not 0 < colour_gain <= 4:
        raise ExportUsageError(f"--colour-gain must be in (0, 4] (got {colour_gain})")
    if context_size != 0 and context_size < 8:
        raise ExportUsageError(f"--context-size must be 0 (off) or at least 8 (got {context_size})")
    try:
        ckpt_file = checkpoint.resolve(checkpoint_path)
        state = checkpoint.load(ckpt_file)
    except checkpoint.CheckpointError as exc:
        raise ExportError(str(exc)) from None
    except Exception as exc:  # torch.load on arbitrary bytes can raise KeyError, ValueError...
        raise ExportError(
            f"{checkpoint_path} is not a readable colorcli checkpoint ({type(exc).__name__})"
        ) from None
    generator = _load_plain_generator(state, ckpt_file)
    generator_args = dict(state["generator_args"])
    if temperature is not None:
        _set_temperature(generator, temperature, ckpt_file)
    if getattr(generator, "classes", None) is not None:
        generator_args["temperature"] = generator.classes.temperature
    size = render_size or state.get("image_size")
    if not size:
        raise ExportUsageError(f"{ckpt_file} records no training image size; pass --render-size N")
    if context_size >= int(size):
        raise ExportUsageError(
            f"--context-size {context_size} is not below the render size {size}, so it would never run"
        )
    info = metadata.ModelInfo(
        arch=state["arch"],
        render_size=int(size),
        precision=precision,
        colorcli_version=__version__,
        checkpoint_sha256=checkpoint.sha256(ckpt_file),
        training_data=dict(state.get("data") or {}),
        metrics=dict(state.get("metrics") or {}),
        generator_args=generator_args,
        colour_gain=colour_gain,
        context_size=context_size,
    )

    log(f"exporting {info.arch} generator from {ckpt_file} (render size {info.render_size})")
    graph = subpixel_form(generator) if precision == "int8" else generator
    fp32 = to_onnx(graph, opset or DEFAULT_OPSET, info.render_size)
    _set_metadata(fp32, replace(info, precision="fp32"))
    fp32_bytes = _checked_bytes(fp32)
    inputs = export_checks.parity_inputs(info.render_size)
    # against the generator as trained, so a rewritten graph is checked too
    parity = _parity(generator, fp32_bytes, inputs)
    _log_parity(log, "fp32", parity)
    worst = max(c.max_abs_diff for c in parity)
    if not worst <= FP32_TOLERANCE:  # written so that NaN fails too
        raise ExportError(
            f"ONNX and PyTorch disagree by {worst:.3g} (> {FP32_TOLERANCE:g}); the model was not written. "
            "Try another --opset, or report this with the checkpoint's architecture"
        )

    report = ExportReport(output, info, parity, len(fp32_bytes), len(fp32_bytes))
    final_bytes = fp32_bytes
    if precision != "fp32":
        if precision == "fp16":
            reduced = to_fp16(fp32)
        else:
            reduced, report.quantization = to_int8(fp32_bytes, calibration_images, info.render_size)
            log(f"int8 quantization: {report.quantization}")
        _set_metadata(reduced, info)
        final_bytes = _checked_bytes(reduced)
        report.parity = _parity(generator, final_bytes, inputs)
        _log_parity(log, precision, report.parity)
        if not np.isfinite(report.max_abs_diff):
            raise ExportError(f"the {precision} model produces non-finite values; the model was not written")
        report.size_bytes = len(final_bytes)
        report.quality = export_checks.quality_check(fp32_bytes, final_bytes, info.render_size)
        log_quality(log, precision, report)

    _write_atomically(final_bytes, output)
    log(f"wrote {output} ({_mb(report.size_bytes)}, {precision})")
    return report


# -- arguments and checkpoint ---------------------------------------------------------------


def _check_arguments(
    checkpoint_path: str | Path,
    output: Path,
    render_size: int | None,
    opset: int | None,
    precision: str,
    calibration: str | Path | None,
) -> list[Path]:
    if not Path(checkpoint_path).exists():
        raise ExportUsageError(f"{checkpoint_path}: no such checkpoint file or run directory")
    if precision not in PRECISIONS:
        raise ExportUsageError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if render_size is not None and render_size < 8:
        raise ExportUsageError(f"--render-size must be at least 8 (got {render_size})")
    if opset is not None and not 18 <= opset <= 23:
        raise ExportUsageError(f"--opset must be between 18 and 23 (got {opset})")
    if output.is_dir():
        raise ExportUsageError(
            f"{output} is a directory; give the model's file name, e.g. {output}/model.onnx"
        )
    # so that -o can never name the checkpoint being read, a training photo or a device
    if output.suffix.lower() != ".onnx":
        raise ExportUsageError(f"-o {output}: give a file name ending in .onnx")
    if output.exists() and not output.is_file():
        raise ExportUsageError(f"-o {output} is not a regular file; give a file name for the model")
    # missing folders are made when the model is written (write_atomic), as train --out makes
    # its run folder; until then the nearest existing one must take them
    folder = next(p for p in (output.parent, *output.absolute().parents) if p.exists())
    if not folder.is_dir():
        raise ExportUsageError(f"{folder} is a file, not a folder; give another -o")
    try:  # a real probe: permission bits say nothing about read-only mounts or root
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise ExportUsageError(f"output folder {folder} is not writable ({exc.strerror})") from None
    if calibration is None:
        return []
    if precision != "int8":
        raise ExportUsageError("--calibration only applies to --precision int8")
    images = calibration_files(calibration)
    if not images:
        suffixes = ", ".join(sorted(INPUT_SUFFIXES))
        raise ExportUsageError(f"--calibration {calibration}: no images ({suffixes}) found")
    return images


def calibration_files(folder: str | Path) -> list[Path]:
    """Up to :data:`MAX_CALIBRATION_IMAGES` images of ``folder`` (:func:`imageio.find_images`)."""
    root = Path(folder)
    if not root.is_dir():
        raise ExportUsageError(f"--calibration {root}: no such folder")
    return imageio.find_images(root)[:MAX_CALIBRATION_IMAGES]


def _load_plain_generator(state: dict[str, Any], source: Path) -> Any:
    from colorcli import checkpoint
    from colorcli.models import registry

    try:
        generator = checkpoint.load_generator(state)
    except registry.UnknownArchitecture as exc:
        raise ExportError(f"{source}: {exc} (was it written by a newer colorcli?)") from None
    except (RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ExportError(
            f"{source}: the weights do not fit architecture {state['arch']!r} ({first})"
        ) from None
    generator = plain_weights(generator)
    broken = [
        n for n, t in generator.state_dict().items() if t.is_floating_point() and not t.isfinite().all()
    ]
    if broken:
        raise ExportError(
            f"{source}: {len(broken)} of the generator's weight tensors hold NaN or infinity (first "
            f"{broken[0]}): the run diverged before it was saved; export an earlier checkpoint"
        )
    return generator


def _set_temperature(generator: Any, temperature: float, source: Path) -> None:
    classes = getattr(generator, "classes", None)
    if classes is None:
        raise ExportUsageError(
            f"--temperature applies to colour-class models (trained with --colour-bins); "
            f"{source} predicts a,b directly"
        )
    if not temperature > 0:
        raise ExportUsageError(f"--temperature must be positive (got {temperature})")
    classes.temperature = temperature


def plain_weights(module: Any) -> Any:
    """Fold every parametrisation (spectral norm) into a plain weight, so ONNX sees constants.

    ``module`` must already be in eval mode: spectral norm then uses its stored singular
    vectors instead of running another power iteration, which is the weight inference uses.
    """
    from torch.nn.utils import parametrize

    for sub in module.modules():
        if parametrize.is_parametrized(sub):
            for name in list(sub.parametrizations):
                parametrize.remove_parametrizations(sub, name, leave_parametrized=True)
    return module


def subpixel_form(generator: Any) -> Any:
    """A copy of an eval-mode generator whose U-Net up-steps (transposed convolution, batch
    norm) are plain convolutions and pixel shuffles (``Up.as_subpixel``): the same map, but
    one that onnxruntime quantizes whole. In fp32 it ran 7 % slower (230 against 214 ms at
    384 px, 2 cores), so only int8 exports use it; there it made inference 1.8× faster
    (140 -> 77 ms).
    """
    import copy

    from torch import nn

    from colorcli.models.layers import Up

    generator = copy.deepcopy(generator)
    for seq in list(generator.modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        for i, layer in enumerate(seq):
            if isinstance(layer, Up):
                norm = seq[i + 1] if i + 1 < len(seq) and isinstance(seq[i + 1], nn.BatchNorm2d) else None
                seq[i] = layer.as_subpixel(norm)
                if norm is not None:
                    seq[i + 1] = nn.Identity()
    return generator


# -- ONNX graph -------------------------------------------------------------------------------


def to_onnx(generator: Any, opset: int, render_size: int) -> Any:
    """The generator as an ``onnx.ModelProto`` with dynamic batch, height and width."""
    import torch

    multiple = int(getattr(generator, "multiple", 16))
    # batch 2 and sides that are not multiples of the generator's stride: torch.export
    # specialises sizes 0 and 1, and the padding branch must be traced to reach the graph
    side = max(render_size, 2 * multiple)
    example = torch.rand(2, 1, side + multiple // 2 + 1, side + multiple // 4 + 1) * 2 - 1
    dim = torch.export.Dim.DYNAMIC
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                generator,
                (example,),
                input_names=[metadata.INPUT_NAME],
                output_names=[metadata.OUTPUT_NAME],
                opset_version=opset,
                dynamic_shapes=({0: dim, 2: dim, 3: dim},),
                dynamo=True,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # torch.onnx raises many types; the first line names the operator
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"torch could not export the generator to ONNX ({first})") from None
    model = program.model_proto
    _name_dynamic_dims(model)
    return model


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # the exporter logs missing torchvision ops and warns about its own deprecations: noise
    # for a user, who sees the parity figures instead
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _name_dynamic_dims(model: Any) -> None:
    # the exporter names dims after its symbols (s53, "Min(s53, ...)"); output H, W equal input's
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for i, name in ((0, "batch"), (2, "height"), (3, "width")):
            dims[i].dim_param = name


def _set_metadata(model: Any, info: metadata.ModelInfo) -> None:
    own = info.to_props()
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in own]
    del model.metadata_props[:]
    for key, value in [*kept, *own.items()]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def _checked_bytes(model: Any) -> bytes:
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise ExportError(f"the exported graph is not valid ONNX ({first})") from None
    return model.SerializeToString()


def to_fp16(model: Any) -> Any:
    """Weights and arithmetic in float16 for GPUs; the graph's input and output stay float32."""
    import onnx_ir
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(model, keep_io_types=True)
    # It keeps some initializers float32 (Resize's scales) but relabels their value_info as
    # float16, which the checker rejects; an initializer carries its own type, so drop the label.
    initializers = {t.name for t in converted.graph.initializer}
    kept = [v for v in converted.graph.value_info if v.name not in initializers]
    del converted.graph.value_info[:]
    converted.graph.value_info.extend(kept)
    # the converter appends the float32 output casts after their consumers; ONNX wants order
    graph = onnx_ir.from_proto(converted)
    graph.graph.sort()
    return onnx_ir.to_proto(graph)


def to_int8(fp32_bytes: bytes, calibration: Sequence[Path], render_size: int) -> tuple[Any, str]:
    """Quantize to int8: static QDQ over ``calibration`` images when given, else dynamic.

    Static quantization fixes each activation's range from the calibration photos, which
    suits convolutions; dynamic quantization needs no data but quantizes only the weights
    of Conv layers ahead of time and leaves the transposed convolutions in float.
    """
    import onnx
    from onnxruntime import quantization as q

    with tempfile.TemporaryDirectory(prefix="colorcli-int8-") as tmp:
        src, prepared, dst = Path(tmp, "fp32.onnx"), Path(tmp, "prep.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(fp32_bytes)
        try:
            q.quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        except Exception:  # pre-processing only improves quantization; plain fp32 still works
            prepared = src
        if calibration:
            reader = _CalibrationReader(calibration, render_size)
            # MinMax keeps a running range per tensor; the histogram methods hold every
            # activation of every calibration image in memory (9.5 GB for 32 images at 256)
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints progress
                    q.quantize_static(
                        str(prepared),
                        str(dst),
                        reader,
                        quant_format=q.QuantFormat.QDQ,
                        per_channel=True,
                        activation_type=q.QuantType.QUInt8,
                        weight_type=q.QuantType.QInt8,
                        calibrate_method=q.CalibrationMethod.MinMax,
                    )
            except ValueError:
                if reader.read:
                    raise
                raise ExportUsageError(
                    f"--calibration: none of its {len(reader)} images could be read; give a folder of photos"
                ) from None
            how = f"static QDQ, per-channel weights, {reader.read} calibration images"
            if reader.read < len(reader):
                how += f" ({len(reader) - reader.read} unreadable, skipped)"
        else:
            q.quantize_dynamic(str(prepared), str(dst), weight_type=q.QuantType.QUInt8)
            how = "dynamic (weights only; pass --calibration DIR for static quantization)"
        return onnx.load(str(dst)), how


class _CalibrationReader:
    """onnxruntime ``CalibrationDataReader`` over image files, one at a time, render size square."""

    def __init__(self, files: Sequence[Path], render_size: int) -> None:
        self.files = list(files)
        self.render_size = render_size
        self.read = 0  # images decoded since the last rewind
        self._iter: Iterator[Path] = iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def get_next(self) -> dict[str, np.ndarray] | None:
        for path in self._iter:
            try:
                # read as colorize reads it: Pillow's own convert("RGB") turns a 16-bit grey
                # scan white, and static ranges calibrated on white cost 2.8 dB on photos
                picture = imageio.load(path)
            except imageio.ImageError:
                continue  # an unreadable calibration file only costs one sample
            self.read += 1
            grey = picture.grey.astype(np.float32) / (65535.0 if picture.deep else 255.0)
            rgb = np.repeat(grey[..., None], 3, axis=-1)  # the neutral grey of the photo's L
            return {
                metadata.INPUT_NAME: export_checks.l_input(
                    export_checks.fit(export_checks.centre_square(rgb), self.render_size)
                )
            }
        return None

    def rewind(self) -> None:
        self._iter = iter(self.files)
        self.read = 0


# -- checks ---------------------------------------------------------------------------------


def _parity(generator: Any, model_bytes: bytes, inputs: Sequence[tuple[str, np.ndarray]]) -> list[ParityCase]:
    try:
        onnx_session = export_checks.session(model_bytes)
    except Exception as exc:  # onnxruntime's own exception types
        raise ExportError(f"onnxruntime cannot run the exported model ({str(exc)[:300]})") from None
    try:
        return export_checks.parity_check(generator, onnx_session, inputs)
    except export_checks.ShapeMismatch as exc:
        raise ExportError(str(exc)) from None


# -- reporting and writing --------------------------------------------------------------------


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _log_parity(log: Callable[[str], None], precision: str, cases: Sequence[ParityCase]) -> None:
    for c in cases:
        shape = "x".join(map(str, c.shape))
        log(f"  parity {precision} {c.name:<9} {shape:<14} max |Δab| {c.max_abs_diff:.3g}")
    worst = max(c.max_abs_diff for c in cases)
    log(f"{precision} ONNX vs PyTorch: max abs difference in a,b (normalised) {worst:.3g}")


def log_quality(log: Callable[[str], None], precision: str, report: ExportReport) -> None:
    """Print the size and colorization quality of a reduced-precision model against fp32."""
    log(
        f"size: {precision} {_mb(report.size_bytes)} vs fp32 {_mb(report.fp32_size_bytes)} "
        f"({report.size_bytes / report.fp32_size_bytes:.0%})"
    )
    log(f"  {'photo':<10} {'PSNR fp32':>10} {'PSNR ' + precision:>10} {'change':>8} {'vs fp32':>9}  (dB)")
    for c in report.quality:
        log(
            f"  {c.name:<10} {c.psnr_fp32:>10.2f} {c.psnr_other:>10.2f} "
            f"{c.psnr_other - c.psnr_fp32:>+8.2f} {c.psnr_vs_fp32:>9.2f}"
        )
    mean = [
        float(np.mean(v)) for v in zip(*((c.psnr_fp32, c.psnr_other) for c in report.quality), strict=True)
    ]
    log(
        f"quality: mean PSNR vs the original photos {mean[0]:.2f} dB (fp32) -> "
        f"{mean[1]:.2f} dB ({precision}), change {mean[1] - mean[0]:+.2f} dB"
    )


def _write_atomically(data: bytes, output: Path) -> None:
    try:
        write_atomic(output, lambda fh: fh.write(data), sync=True)
    except OSError as exc:
        raise ExportError(f"cannot write {output} ({exc.strerror})") from None
