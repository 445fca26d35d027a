"""Every setting of a training run, with its default and the values it may take: the one place
both ``colorcli train`` (its options and ``--help``) and the training loop read them from. Free
of torch, so the base install can show ``colorcli train --help``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from colorcli.models import registry

MAX_IMAGE_SIZE = 1024  # training crops; a larger one is a typo (or a pixel size meant for colorize)

# flags, not recipe keys
_GENERATOR_SETTINGS = frozenset({"width", "depth", "blocks", "colour_bins", "imagenet_encoder"})


@dataclass
class TrainConfig:
    """Every setting of a run; saved as ``RUN_DIR/config.json`` and inside each checkpoint."""

    arch: str = "unet-sn"
    data: list[str] = field(default_factory=list)
    out: str = "runs/colorcli"
    epochs: int = 10
    batch_size: int = 32
    image_size: int = 32
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    seed: int = 0
    workers: int = 2
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # lr = base * max(lr_decay ** (step / lr_decay_steps), 1e-3), the reference code's schedule
    # with a floor; 0 = constant
    lr_decay: float = 0.1
    lr_decay_steps: int = 0
    adv_weight: float = 0.015
    l1_weight: float = 0.985
    real_label: float = 1.0  # < 1 is one-sided label smoothing
    disc_pixels: float = 1.0  # pixel discriminator: fraction of pixels its loss is estimated on
    disc_context: bool = False  # pixel discriminator also sees the generator's bottleneck features
    disc_hue: bool = False  # real colours reach the discriminator at the generator's chroma: it judges hue
    rebalance: float = 0.0  # weight rare colours in the L1 term (rebalance.py); 0: plain L1
    rebalance_hues: float = 0.0  # also weight rare hue families (red against orange); 0: off
    ce_weight: float = 1.0  # generators with colour_bins: weight of the colour-class cross-entropy
    class_weight: float = 0.0  # U-Nets with colour_bins: also name each photo's class from the bottleneck
    val_fraction: float = 0.05
    crop_scale: float = 0.8
    limit: int = 0  # use at most this many training images (0: all)
    epoch_size: int = 0  # images per epoch, drawn afresh each epoch (0: one full pass)
    val_limit: int = 2000
    samples: int = 8
    keep_epochs: int = 0  # also keep the last N epochs' checkpoints, for averaging them at release
    generator_args: dict[str, Any] = field(default_factory=dict)
    discriminator_args: dict[str, Any] = field(default_factory=dict)
    init: str = ""  # checkpoint whose weights start this run

    def check(self) -> None:
        """Raise :class:`ConfigError` for settings that cannot train, saying what is allowed."""
        arch = registry.get(self.arch)
        if self.image_size < arch.min_image_size:
            raise ConfigError(
                f"--image-size {self.image_size} is too small for {self.arch} "
                f"(at least {arch.min_image_size})"
            )
        if self.image_size > MAX_IMAGE_SIZE:
            raise ConfigError(
                f"--image-size {self.image_size} is larger than {MAX_IMAGE_SIZE}: a batch of such crops "
                "outgrows any machine's memory; train on smaller crops (colorize renders at any size)"
            )
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"unknown precision {self.precision!r}; use auto, fp32, bf16 or fp16")
        if not 0 < self.disc_pixels <= 1:
            raise ConfigError("--disc-pixels must be in (0, 1]")
        if not 0 <= self.rebalance <= 1 or not 0 <= self.rebalance_hues <= 1:
            raise ConfigError("--rebalance and --rebalance-hues must be in [0, 1]")
        if self.class_weight < 0:
            raise ConfigError("--class-weight must be 0 (off) or more")
        if min(self.adv_weight, self.l1_weight, self.ce_weight) < 0:
            raise ConfigError("--adv-weight, --l1-weight and --ce-weight must be 0 (off) or more")
        if not 0 < self.real_label <= 1:
            raise ConfigError("--real-label must be in (0, 1]: 1, or a little less for label smoothing")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("--epochs and --batch-size must be at least 1")
        if self.workers < 0:
            raise ConfigError("--workers must be 0 (decode in the training process) or more")
        if min(self.limit, self.epoch_size, self.val_limit) < 0:
            raise ConfigError("--limit, --epoch-size and --val-limit must be 0 (no limit) or more")
        if self.keep_epochs < 0:
            raise ConfigError("--keep-epochs must be 0 (keep only last.pt and best.pt) or more")
        if self.samples < 0:
            raise ConfigError("samples (validation images in each epoch's sample grid) must be 0 or more")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError("--val-fraction must be in [0, 1)")
        if not 0 < self.crop_scale <= 1:
            raise ConfigError(
                "crop_scale must be in (0, 1]: the share of the shorter side a crop keeps at least"
            )
        if not (self.lr_g > 0 and self.lr_d > 0 and self.lr_decay > 0) or self.lr_decay_steps < 0:
            raise ConfigError("--lr-g, --lr-d and --lr-decay must be positive, --lr-decay-steps 0 or more")
        least = {"width": 1, "depth": 1, "blocks": 0}
        sizes = {k: v for k, v in self.generator_args.items() if k in least}
        if any(not isinstance(v, int) or v < least[k] for k, v in sizes.items()):
            raise ConfigError(
                f"widths and depths must be whole numbers of at least 1, blocks 0 or more (got {sizes})"
            )

    @classmethod
    def fields(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        values = {k: v for k, v in values.items() if k not in _RETIRED}
        unknown = set(values) - cls.fields()
        if unknown:
            where = [f"{k} in [generator_args]" for k in sorted(unknown & _GENERATOR_SETTINGS)]
            where += ["disc_width as width in [discriminator_args]"] if "disc_width" in unknown else []
            hint = f" (a recipe sets {', '.join(where)})" if where else ""
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}{hint}")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for name, value in values.items():
            if not _has_type(value, types[name]):
                raise ValueError(f"setting {name} must be {_TYPE_WORDS[types[name]]}, not {value!r}")
        return cls(**values)


# settings that runs of earlier versions saved and that no longer do anything: their config.json
# still resumes
_RETIRED = frozenset({"log_every"})

# the annotations of TrainConfig (strings, under ``from __future__ import annotations``)
_TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "list[str]": "a list of strings",
    "dict[str, Any]": "a table",
}


def _has_type(value: Any, annotation: str) -> bool:
    if annotation == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # a bool is an int to Python, not to a recipe
        return False
    if annotation == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    wanted = {"int": int, "float": (int, float), "str": str, "dict[str, Any]": dict}[annotation]
    return isinstance(value, wanted)


# How a checkpoint was trained (crops, batch, losses, optimiser, discriminator input): what a run
# started with --init keeps unless its recipe or flags say otherwise, so fine-tuning the shipped
# model on a few photos trains it as it was trained. Data, length, seed and hardware stay the run's
# own, and so does class_weight: it names the classes of the data, which a folder of one's own
# photos may not have.
RECIPE_SETTINGS = (
    "batch_size", "image_size", "crop_scale", "lr_g", "lr_d", "beta1", "beta2", "lr_decay",
    "lr_decay_steps", "adv_weight", "l1_weight", "ce_weight", "rebalance", "rebalance_hues", "real_label",
    "disc_pixels", "disc_context", "disc_hue",
)  # fmt: skip


def recipe_of(state: dict[str, Any]) -> dict[str, Any]:
    """The :data:`RECIPE_SETTINGS` a checkpoint was trained with (those it records)."""
    saved = state.get("config") or {}
    return {k: saved[k] for k in RECIPE_SETTINGS if k in saved}


class ConfigError(ValueError):
    """A configuration that cannot train (bad size, unknown precision...)."""
