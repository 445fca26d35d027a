"""The contract between an exported ONNX model and the code that runs it.

``export`` writes these keys into the model's ``metadata_props``; ``colorize``, ``evaluate``
and ``info`` read them back with :func:`parse` and refuse a model they cannot interpret.
The graph itself is the generator: input ``l`` (N, 1, H, W) float32 normalised L, output
``ab`` (N, 2, H, W) float32 normalised a,b, with dynamic N, H and W. Plain dictionaries of
strings in and out, so this module needs neither onnx nor torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from colorcli import color

FORMAT_VERSION = 1
PREFIX = "colorcli."
INPUT_NAME = "l"
OUTPUT_NAME = "ab"
GRAPH_GENERATOR = "generator"


class ModelFormatError(ValueError):
    """The model's metadata is missing, from a newer format, or inconsistent."""


@dataclass(frozen=True)
class ModelInfo:
    arch: str
    render_size: int
    l_scale: float = color.L_SCALE
    l_offset: float = color.L_OFFSET
    ab_scale: float = color.AB_SCALE
    colour_space: str = color.NORMALISATION["colour_space"]
    graph: str = GRAPH_GENERATOR
    precision: str = "fp32"
    colorcli_version: str = ""
    checkpoint_sha256: str = ""
    training_data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    generator_args: dict[str, Any] = field(default_factory=dict)
    # a,b are multiplied by this before rendering: a calibration chosen at export, on top of
    # which ``colorize --saturation`` applies
    colour_gain: float = 1.0
    # > 0: colorize also runs the model on the photo shrunk to this size and blends those
    # colours in (colorcli.pipeline.CONTEXT_WEIGHT); 0: render size only
    context_size: int = 0
    format_version: int = FORMAT_VERSION

    def to_props(self) -> dict[str, str]:
        """Flat ``{key: string}`` pairs for ONNX ``metadata_props``."""
        values = {
            "format": self.format_version,
            "arch": self.arch,
            "render_size": self.render_size,
            "colour_space": self.colour_space,
            "l_scale": self.l_scale,
            "l_offset": self.l_offset,
            "ab_scale": self.ab_scale,
            "graph": self.graph,
            "precision": self.precision,
            "colorcli_version": self.colorcli_version,
            "checkpoint_sha256": self.checkpoint_sha256,
            "training_data": json.dumps(self.training_data, sort_keys=True),
            "metrics": json.dumps(self.metrics, sort_keys=True),
            "generator_args": json.dumps(self.generator_args, sort_keys=True),
            "colour_gain": self.colour_gain,
            "context_size": self.context_size,
        }
        return {PREFIX + k: str(v) for k, v in values.items()}


def _json_object(own: dict[str, str], key: str) -> dict[str, Any]:
    value = json.loads(own.get(key, "{}"))
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not a JSON object")
    return value


def parse(props: dict[str, str]) -> ModelInfo:
    """Read :class:`ModelInfo` from a model's metadata, or raise :class:`ModelFormatError`."""
    own = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
    if "format" not in own:
        raise ModelFormatError(
            "not a colorcli model (no colorcli metadata); export one with 'colorcli export'"
        )
    try:
        version = int(own["format"])
        if version > FORMAT_VERSION:
            raise ModelFormatError(
                f"model format {version} is newer than this colorcli understands "
                f"({FORMAT_VERSION}); upgrade colorcli"
            )
        if own.get("graph", GRAPH_GENERATOR) != GRAPH_GENERATOR:
            raise ModelFormatError(f"unsupported graph kind {own['graph']!r}")
        info = ModelInfo(
            arch=own["arch"],
            render_size=int(own["render_size"]),
            l_scale=float(own["l_scale"]),
            l_offset=float(own["l_offset"]),
            ab_scale=float(own["ab_scale"]),
            colour_space=own.get("colour_space", ""),
            graph=own.get("graph", GRAPH_GENERATOR),
            precision=own.get("precision", "fp32"),
            colorcli_version=own.get("colorcli_version", ""),
            checkpoint_sha256=own.get("checkpoint_sha256", ""),
            training_data=_json_object(own, "training_data"),
            metrics=_json_object(own, "metrics"),
            generator_args=_json_object(own, "generator_args"),
            colour_gain=float(own.get("colour_gain", "1")),
            context_size=int(own.get("context_size", "0")),
            format_version=version,
        )
    except (KeyError, ValueError) as exc:
        if isinstance(exc, ModelFormatError):
            raise
        raise ModelFormatError(f"colorcli metadata is incomplete or malformed: {exc}") from None
    theirs = {"l_scale": info.l_scale, "l_offset": info.l_offset, "ab_scale": info.ab_scale}
    if differ := [
        f"{k} {v}, not {color.NORMALISATION[k]}" for k, v in theirs.items() if v != color.NORMALISATION[k]
    ]:
        # the pipeline normalises with colorcli's own constants: another model's colours would be wrong
        raise ModelFormatError(
            f"the model normalises L and a,b otherwise ({', '.join(differ)}); this colorcli cannot run it"
        )
    if info.render_size < 8:
        raise ModelFormatError(f"render size {info.render_size} in the model's metadata is not usable")
    if not 0 < info.colour_gain <= 4:
        raise ModelFormatError(f"colour gain {info.colour_gain} in the model's metadata is not usable")
    if info.context_size and info.context_size < 8:
        raise ModelFormatError(f"context size {info.context_size} in the model's metadata is not usable")
    return info
