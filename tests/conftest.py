"""Shared fixtures: tiny checkpoints of any architecture and a tiny exported ONNX model.

``tiny_checkpoint_factory(arch, **options)`` writes a real checkpoint (every key a trained
one has, via ``checkpoint.save``) and returns its path; ``tiny_onnx_model`` is a tiny
unet-sn (width 8, depth 2) exported in fp32 by ``export_model`` with render size 64.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

TINY_GENERATOR_ARGS = {
    "resnet-sn": {"width": 4, "blocks": 1},
    "unet-sn": {"width": 8, "depth": 2},
    "unet-bn": {"width": 8, "depth": 2},
    "unet-patch": {"width": 8, "depth": 2},
}
TINY_DISCRIMINATOR_ARGS = {
    "resnet-sn": {"width": 4, "layers": 2},
    "unet-sn": {"width": 4},
    "unet-bn": {"width": 4},
    "unet-patch": {"width": 4, "layers": 2},
}
TINY_DATA = {"name": "tiny-test", "train_images": 12, "val_images": 4, "image_size": 64}
TINY_METRICS = {"val_l1_ab": 0.123, "val_psnr": 21.5}


def make_tiny_checkpoint(
    path: Path,
    arch: str = "unet-sn",
    image_size: int | None = 64,
    generator_args: dict[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """A tiny checkpoint with random weights and non-trivial batch-norm statistics."""
    import torch

    from colorcli import __version__, checkpoint
    from colorcli.models import registry

    torch.manual_seed(seed)
    g_args = generator_args or TINY_GENERATOR_ARGS[arch]
    d_args = TINY_DISCRIMINATOR_ARGS[arch]
    gen = registry.build_generator(arch, g_args)
    disc = registry.build_discriminator(arch, d_args)
    with torch.no_grad():  # the generators start at "no colour" (zero head); a trained one has colour
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    # a few training-mode passes so running means/variances are not the 0/1 defaults that
    # would hide a batch-norm export mistake, and spectral norm's vectors are updated
    gen.train()
    disc.train()
    with torch.no_grad():
        for _ in range(3):
            ab = gen(torch.rand(2, 1, 32, 32) * 2 - 1)
            disc(torch.cat([torch.rand(2, 1, 32, 32), ab], dim=1))
    state = {
        "format": checkpoint.CHECKPOINT_FORMAT,
        "arch": arch,
        "generator_args": g_args,
        "discriminator_args": d_args,
        "generator": gen.state_dict(),
        "discriminator": disc.state_dict(),
        "optimizers": {},
        "schedulers": {},
        "epoch": 1,
        "step": 3,
        "rng": {"ranks": [{"torch": torch.get_rng_state()}]},
        "colorcli_version": __version__,
        "data": dict(TINY_DATA),
        "config": {"arch": arch, "image_size": image_size},
        "image_size": image_size,
        "metrics": dict(TINY_METRICS),
    }
    checkpoint.save(state, path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``factory(arch="unet-sn", image_size=64, generator_args=None, seed=0) -> Path``."""
    made: dict[tuple[Any, ...], Path] = {}

    def factory(
        arch: str = "unet-sn",
        image_size: int | None = 64,
        generator_args: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> Path:
        key = (arch, image_size, repr(sorted((generator_args or {}).items())), seed)
        if key not in made:
            folder = tmp_path_factory.mktemp(f"ckpt-{arch}")
            made[key] = make_tiny_checkpoint(folder / "tiny.pt", arch, image_size, generator_args, seed)
        return made[key]

    return factory


@pytest.fixture(scope="session")
def tiny_onnx_model(
    tiny_checkpoint_factory: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny unet-sn (width 8, depth 2), exported in fp32 with render size 64."""
    from colorcli.export import export_model

    out = tmp_path_factory.mktemp("onnx") / "tiny-unet-sn.onnx"
    export_model(tiny_checkpoint_factory("unet-sn", image_size=64), out, render_size=64, log=lambda _: None)
    return out


def nan_colour_model(model: Path, folder: Path) -> Path:
    """The model with its a,b multiplied by NaN, as a model that overflows gives them."""
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load(model)
    out = graph.graph.output[0].name
    for node in graph.graph.node:
        node.output[:] = [f"{name}-before" if name == out else name for name in node.output]
    graph.graph.initializer.append(numpy_helper.from_array(np.array([np.nan], np.float32), "nan"))
    graph.graph.node.append(helper.make_node("Mul", [f"{out}-before", "nan"], [out]))
    onnx.save(graph, folder / "broken.onnx")
    return folder / "broken.onnx"
