"""Self-describing training checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint is a plain dict of tensors and primitives:

``format``, ``arch``, ``generator_args``, ``discriminator_args``, ``generator``,
``discriminator`` (state dicts), ``classifier`` (``--class-weight``'s head and optimizer, or
None), ``optimizers``, ``schedulers``, ``scaler`` (fp16 loss scaling), ``epoch`` (epochs
completed), ``step``, ``best_val_l1``, ``rng`` (``ranks``: each process's random state),
``colorcli_version``, ``data`` (summary), ``config`` (effective configuration),
``image_size`` and ``metrics`` (the last validation figures).

A generator's frozen ImageNet encoder (``--imagenet-encoder``) is not stored: its weights never
change and come from the package that ships them, so leaving them out saves 13.6 MB a checkpoint
(6.8 MB in a bfloat16 release). Checkpoints that hold them load as well.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

from colorcli.atomic import write_atomic

CHECKPOINT_FORMAT = 1
REQUIRED_KEYS = ("format", "arch", "generator_args", "generator")
FROZEN = "encoder."  # the generator's ImageNet encoder, see the module docstring


class CheckpointError(ValueError):
    """The file is missing, unreadable, or not a colorcli checkpoint."""


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or a run directory (its ``checkpoints/best.pt``, else ``last.pt``)."""
    p = Path(path)
    if p.is_dir():
        for name in ("best.pt", "last.pt"):
            if (p / "checkpoints" / name).is_file():
                return p / "checkpoints" / name
        raise CheckpointError(f"{p} is a directory with no checkpoints/best.pt or checkpoints/last.pt")
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file or run directory")
    return p


def save(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A process killed at any moment leaves either the old checkpoint or the new one.
    """
    import torch

    write_atomic(Path(path), lambda fh: torch.save(state, fh), sync=True)


def load(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint (a file or a run directory)."""
    import torch

    p = resolve(path)
    if p.suffix.lower() == ".onnx":
        raise CheckpointError(
            f"{p} is an exported ONNX model; give the checkpoint (.pt) or run folder it came from"
        )
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch.load raises many types for files that are not checkpoints
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, pickle.UnpicklingError):  # torch then advises loading unsafely: not ours to give
            first = "a pickle that is not plain tensors and numbers, or a damaged file"
        raise CheckpointError(f"{p} is not a readable colorcli checkpoint ({first})") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise CheckpointError(f"{p} is not a colorcli checkpoint (missing architecture or weights)")
    if state["format"] > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p} was written by a newer colorcli; upgrade colorcli to read it")
    return state


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_generator(state: dict[str, Any]) -> Any:
    """Rebuild the generator from a loaded checkpoint, in eval mode."""
    from colorcli.models import registry

    gen = registry.build_generator(state["arch"], state["generator_args"])
    load_generator_weights(gen, state["generator"])
    return gen.eval()


def generator_weights(gen: Any) -> dict[str, Any]:
    """The generator's state dict as stored: without its frozen ImageNet encoder."""
    return {k: v for k, v in gen.state_dict().items() if not k.startswith(FROZEN)}


def load_generator_weights(gen: Any, weights: dict[str, Any]) -> None:
    """Load stored weights strictly, taking the frozen ImageNet encoder's from its package
    when they were left out (:func:`generator_weights`)."""
    encoder = getattr(gen, "encoder", None)
    if encoder is not None and not any(k.startswith(FROZEN) for k in weights):
        encoder.load_imagenet()
        weights = {**{FROZEN + k: v for k, v in encoder.state_dict().items()}, **weights}
    gen.load_state_dict(weights)
