"""`colorcli export`: a checkpoint's generator to a verified ONNX model."""

from __future__ import annotations

from pathlib import Path

import typer

from colorcli.commands._common import fail, need_train_extra, usage_error

PRECISION_HELP = (
    "fp32 (default), fp16 (for GPUs; float32 input and output) or int8 (onnxruntime quantization)."
)


def export(
    checkpoint: Path = typer.Argument(
        ...,
        help="A checkpoint file (.pt) or a training run directory (uses checkpoints/best.pt).",
        show_default=False,
    ),
    output: Path = typer.Option(..., "--output", "-o", help="The ONNX model to write.", show_default=False),
    render_size: int | None = typer.Option(
        None,
        "--render-size",
        help="Size the model colours at (default: the checkpoint's training image size).",
    ),
    opset: int | None = typer.Option(None, "--opset", help="ONNX opset, 18 to 23 (default: 18)."),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="Folder of photos for static int8 quantization (else dynamic)."
    ),
    temperature: float | None = typer.Option(
        None,
        "--temperature",
        help="Colour-class models (train --colour-bins): annealed-mean temperature; lower gives "
        "more vivid, less cautious colour (default: the checkpoint's, 0.38 unless trained otherwise).",
    ),
    colour_gain: float = typer.Option(
        1.0,
        "--colour-gain",
        help="Store a factor that colorize applies to the model's a,b (a colour calibration; "
        "colorize --saturation multiplies on top).",
    ),
    context_size: int = typer.Option(
        0,
        "--context-size",
        help="Store a context size: colorize then also runs the model on each larger photo shrunk "
        "to this size and blends those colours in, so objects keep one colour (0: off).",
    ),
) -> None:
    """Export a checkpoint's generator to ONNX, check it against PyTorch, and write its metadata.

    Nothing is written unless onnxruntime and PyTorch agree (fp32: within 1e-4).
    """
    need_train_extra("export", ("torch", "onnx"))
    from colorcli.export import ExportError, ExportUsageError, export_model

    try:
        export_model(
            checkpoint,
            output,
            render_size,
            opset,
            precision,
            calibration,
            typer.echo,
            temperature,
            colour_gain,
            context_size,
        )
    except ExportUsageError as exc:
        usage_error(str(exc))
    except ExportError as exc:
        fail(str(exc))
