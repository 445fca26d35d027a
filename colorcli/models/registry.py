"""Architecture registry: a name maps to generator and discriminator constructors and their
default arguments. Checkpoints store the name and the arguments actually used, so a model is
rebuilt from a checkpoint alone (as nanoGPT's ``model_args`` and timm's ``create_model`` do).

This module imports no torch at import time: the CLI lists the names without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Architecture:
    name: str
    summary: str
    generator: str  # "module:Class" inside colorcli.models
    discriminator: str
    generator_args: dict[str, Any] = field(default_factory=dict)
    discriminator_args: dict[str, Any] = field(default_factory=dict)
    min_image_size: int = 16  # smallest training size the discriminator's receptive field fits


_UNET = {"width": 64, "depth": 4, "max_mult": 8, "dropout": 0.5, "blocks": 0, "imagenet_encoder": False}

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "resnet-sn",
            "ResNet generator + N×N spectral-norm PatchGAN (paper §1.1)",
            "resnet:ResNetGenerator",
            "discriminators:PatchDiscriminator",
            {"width": 64, "blocks": 9},
            {"width": 64, "layers": 3, "norm": "spectral"},
            min_image_size=32,
        ),
        Architecture(
            "unet-sn",
            "U-Net generator + 1×1 pixel PatchGAN, spectral norm (paper §1.2, the study's best)",
            "unet:UNetGenerator",
            "discriminators:PixelDiscriminator",
            _UNET,
            {"width": 16, "norm": "spectral"},
        ),
        Architecture(
            "unet-bn",
            "U-Net generator + 1×1 pixel PatchGAN, batch norm (paper §1.3)",
            "unet:UNetGenerator",
            "discriminators:PixelDiscriminator",
            _UNET,
            {"width": 16, "norm": "batch"},
        ),
        Architecture(
            "unet-patch",
            "U-Net generator + N×N spectral-norm PatchGAN (pix2pix's pairing; not in the paper)",
            "unet:UNetGenerator",
            "discriminators:PatchDiscriminator",
            _UNET,
            {"width": 64, "layers": 3, "norm": "spectral"},
            min_image_size=32,
        ),
    )
}


class UnknownArchitecture(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}")


def get(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UnknownArchitecture(name) from None


class UnknownSetting(ValueError):
    """A generator or discriminator setting the architecture does not have (``depth`` for a ResNet),
    or one of the wrong type (``dropout = "x"`` in a recipe)."""


# what a recipe's value must be, by the type of the constructor's default
_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _fits(value: Any, default: Any) -> bool:
    if isinstance(value, bool) or isinstance(default, bool):  # to Python a bool is an int
        return type(value) is type(default)
    return isinstance(value, (int, float) if isinstance(default, float) else type(default))


def _construct(name: str, part: str, target: str, args: dict[str, Any]) -> Any:
    import importlib
    import inspect

    module, cls = target.split(":")
    constructor = getattr(importlib.import_module(f"colorcli.models.{module}"), cls)
    accepted = inspect.signature(constructor).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(args) - set(accepted))
        if unknown:
            raise UnknownSetting(
                f"{name}'s {part} has no setting {', '.join(unknown)} (it has: {', '.join(accepted)})"
            )
    for key, value in args.items():
        default = accepted[key].default if key in accepted else None
        if type(default) in _KINDS and not _fits(value, default):
            raise UnknownSetting(
                f"{name}'s {part} setting {key} must be {_KINDS[type(default)]}, not {value!r}"
            )
    return constructor(**args)


def generator_args(name: str, **overrides: Any) -> dict[str, Any]:
    """The registry defaults for ``name`` updated with ``overrides`` (None values ignored)."""
    return {**get(name).generator_args, **{k: v for k, v in overrides.items() if v is not None}}


def growth(name: str, own: dict[str, Any], asked: dict[str, Any]) -> dict[str, Any]:
    """The settings in ``asked`` that grow a generator of ``name`` trained with ``own`` without
    changing what it computes: more U-Net bottleneck blocks, which start as the identity, and
    the ImageNet encoder, whose features start at zero weight."""
    if not get(name).generator.endswith(":UNetGenerator"):
        return {}
    grown: dict[str, Any] = {}
    blocks = asked.get("blocks")
    if blocks is not None and blocks > own.get("blocks", 0):
        grown["blocks"] = blocks
    if asked.get("imagenet_encoder") and not own.get("imagenet_encoder", False):
        grown["imagenet_encoder"] = True
    return grown


def discriminator_args(name: str, **overrides: Any) -> dict[str, Any]:
    return {**get(name).discriminator_args, **{k: v for k, v in overrides.items() if v is not None}}


def build_generator(name: str, args: dict[str, Any] | None = None) -> Any:
    """An ``nn.Module`` generator: (N, 1, H, W) normalised L -> (N, 2, H, W) normalised a,b."""
    return _construct(name, "generator", get(name).generator, generator_args(name, **(args or {})))


def build_discriminator(name: str, args: dict[str, Any] | None = None) -> Any:
    """An ``nn.Module`` discriminator: (N, 3, H, W) normalised Lab -> score map of pre-tanh logits."""
    return _construct(
        name, "discriminator", get(name).discriminator, discriminator_args(name, **(args or {}))
    )
