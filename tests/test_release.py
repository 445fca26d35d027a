"""training/release_default.py's blend of a fine-tuned soup with the model it started from."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from colorcli import checkpoint
from colorcli.models.registry import build_generator

_script = Path(__file__).resolve().parent.parent / "training" / "release_default.py"
_spec = importlib.util.spec_from_file_location("release_default", _script)
release_default = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(release_default)
blended = release_default.blended

ARGS = {"width": 4, "depth": 2}


def _state(gen: torch.nn.Module, args: dict, disc: dict) -> dict:
    weights = checkpoint.generator_weights(gen)
    return {"arch": "unet-sn", "generator_args": args, "generator": weights, "discriminator": disc}


def _shaken(gen: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for name, p in gen.named_parameters():
            if not name.startswith(checkpoint.FROZEN):
                p.add_(torch.randn_like(p) * 0.1)
    return gen


def test_a_blend_moves_every_weight_and_a_grown_branch_toward_the_start():
    torch.manual_seed(0)
    base_gen = _shaken(build_generator("unet-sn", ARGS)).eval()
    grown_args = {**ARGS, "imagenet_encoder": True}
    soup_gen = build_generator("unet-sn", grown_args)
    soup_gen.encoder.load_imagenet()
    soup_gen.load_state_dict(base_gen.state_dict(), strict=False)
    soup_gen = _shaken(soup_gen).eval()  # fine-tuned: every trained weight moved, the fuse grown
    base = _state(base_gen, ARGS, {"w": torch.zeros(3)})
    soup = _state(soup_gen, grown_args, {"w": torch.ones(3)})

    half = blended(soup, base, 0.5)
    name = "stem.0.weight"
    assert torch.allclose(half["generator"][name], (base["generator"][name] + soup["generator"][name]) / 2)
    assert torch.equal(half["discriminator"]["w"], torch.full((3,), 0.5))
    # the grown branch adds half of what it adds in the soup: its zero-started output layer halves
    assert torch.equal(half["generator"]["fuse.2.weight"], soup["generator"]["fuse.2.weight"] * 0.5)
    assert torch.equal(half["generator"]["fuse.2.bias"], soup["generator"]["fuse.2.bias"] * 0.5)
    assert torch.equal(half["generator"]["fuse.0.weight"], soup["generator"]["fuse.0.weight"])

    l_in = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        near_base = checkpoint.load_generator(blended(soup, base, 1e-7)).eval()(l_in)
        assert (near_base - base_gen(l_in)).abs().max() < 1e-5
        assert (soup_gen(l_in) - base_gen(l_in)).abs().max() > 1e-2  # so the check above can fail


def test_a_blend_refuses_a_base_missing_a_weight_the_soup_did_not_grow():
    torch.manual_seed(0)
    gen = build_generator("unet-sn", ARGS)
    soup = _state(gen, ARGS, {"w": torch.ones(3)})
    base = _state(gen, ARGS, {})
    with pytest.raises(ValueError, match="--base has no discriminator weight w"):
        blended(soup, base, 0.5)
