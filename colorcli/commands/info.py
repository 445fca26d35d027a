"""`colorcli info`: an exported model's metadata, inputs and outputs."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from colorcli.commands._common import fail


def info(
    model: Path | None = typer.Argument(
        None,
        help="An ONNX model written by 'colorcli export' (default: the shipped model).",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Show a model's metadata (architecture and its settings, render size, training data, metrics),
    inputs and outputs."""
    from colorcli import runtime

    if model is None:
        try:
            model = runtime.default_model_path()
        except runtime.ModelLoadError as exc:
            fail(str(exc))
    try:
        loaded = runtime.load_model(model, device="cpu", threads=1)
    except runtime.ModelLoadError as exc:
        fail(str(exc))
    description = describe(model, loaded)
    typer.echo(json.dumps(_finite(description), indent=2) if as_json else render(description))


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON has no such numbers (a run that diverged
    records them among its metrics), and strict parsers reject Python's ``NaN``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _tensors(args: list[Any]) -> list[dict[str, Any]]:
    return [{"name": a.name, "type": a.type, "shape": list(a.shape)} for a in args]


def describe(path: Path, loaded: Any) -> dict[str, Any]:
    """Everything ``info`` shows, as plain JSON-ready values."""
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "metadata": asdict(loaded.info),
        "inputs": _tensors(loaded.session.get_inputs()),
        "outputs": _tensors(loaded.session.get_outputs()),
    }


def render(d: dict[str, Any]) -> str:
    meta = d["metadata"]
    rows = [
        ("model", f"{d['path']} ({d['size_bytes'] / 1e6:.2f} MB)"),
        ("format", meta["format_version"]),
        ("architecture", meta["arch"]),
        ("render size", meta["render_size"]),
        ("precision", meta["precision"]),
        ("colour gain", f"{meta['colour_gain']:g}"),
        ("context size", meta["context_size"] or "off"),
        ("graph", meta["graph"]),
        ("colour space", meta["colour_space"]),
        ("normalisation", f"L/{meta['l_scale']:g} - {meta['l_offset']:g}, a,b/{meta['ab_scale']:g}"),
        ("colorcli", meta["colorcli_version"] or "unknown"),
        ("checkpoint", f"sha256 {meta['checkpoint_sha256']}" if meta["checkpoint_sha256"] else "unknown"),
    ]
    lines = [f"{k:<14}{v}" for k, v in rows]
    for title in ("generator_args", "training_data", "metrics"):
        lines.append(
            f"{title.replace('_', ' '):<14}none recorded" if not meta[title] else title.replace("_", " ")
        )
        lines += [f"  {k:<22}{_short(v)}" for k, v in sorted(meta[title].items())]
    for title in ("inputs", "outputs"):
        lines.append(f"{title}")
        lines += [f"  {t['name']:<6}{t['type']:<16}[{', '.join(map(str, t['shape']))}]" for t in d[title]]
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
