"""Package a training run as the shipped default model in weights/.

    python training/release_default.py runs/default-colour/checkpoints/best.pt \
        runs/default-colour/checkpoints/last.pt [--render-size 256] [--temperature 0.38] [--colour-gain 1] \
        [--context-size 0] [--rare-colours 0]

Several checkpoints of one run are averaged weight by weight (a "model soup", Wortsman et al.
2022): GAN weights wander from epoch to epoch, and their average scored better than either on
both evaluation sets. Writes ``weights/colorcli-default.onnx`` (int8, statically calibrated on
training photos: a bit under half the fp32 size at the same quality, see the export report it
prints) and ``weights/colorcli-default.pt``: the generator and discriminator, weights stored in
bfloat16 to stay small, for ``colorcli train --init`` (fine-tuning) and ``colorcli export``
(other precisions, e.g. fp16 for GPUs). Optimiser state is dropped.

``--base CHECKPOINT --share S`` moves the soup back toward the checkpoint it was fine-tuned from,
weight by weight: S of the soup and 1 - S of the base (WiSE-FT, Wortsman et al. 2022, whose
blends kept most of a fine-tune's gain while losing less on photos unlike its training data).
Layers the soup grew since (``train --init`` with more blocks or ``--imagenet-encoder``) are
blended toward their start: the output layers that start at zero are scaled by S, the others
kept, so what a grown branch adds is S of what it adds in the soup.

``--rare-colours P`` (colour-class models) divides the model's colour distribution by the
training photos' colour prior to the power P, by adding to its output bias (logit adjustment,
``colorcli.rebalance``); it is stored in both files, so every export of the checkpoint colours
alike, and a fine-tuning run starts from it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from colorcli import checkpoint, color, data
from colorcli.export import export_model
from colorcli.models import registry
from colorcli.rebalance import BINS, ColourRarity

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
HEAD_BIAS = "head.conv.bias"  # the colour-class head's logits' bias (models/colour_classes.py)
KEEP = (
    "format",
    "arch",
    "generator_args",
    "discriminator_args",
    "epoch",
    "step",
    "colorcli_version",
    "data",
    "config",
    "image_size",
    "metrics",
)


def averaged(states: list[dict]) -> dict:
    """The last state, with each network's floating-point weights averaged over ``states``."""
    result = dict(states[-1])
    for net in ("generator", "discriminator"):
        result[net] = {
            k: torch.stack([s[net][k].float() for s in states]).mean(0) if v.is_floating_point() else v
            for k, v in states[-1][net].items()
        }
    return result


def blended(soup: dict, base: dict, share: float) -> dict:
    """``soup``'s weights moved toward ``base``'s: ``share`` of the soup, ``1 - share`` of the base."""
    grown = registry.build_generator(soup["arch"], soup["generator_args"]).state_dict()

    def starts_at_zero(key: str) -> bool:  # a layer's bias goes with its weight: most start at 0
        return not grown.get(f"{key.rpartition('.')[0]}.weight", grown[key]).any()

    result = dict(soup)
    for net in ("generator", "discriminator"):
        mixed = {}
        for k, v in soup[net].items():
            if not v.is_floating_point():
                mixed[k] = v
            elif k in base[net]:
                mixed[k] = torch.lerp(base[net][k].float(), v.float(), share)
            elif net == "generator" and k in grown and starts_at_zero(k):
                mixed[k] = v.float() * share
            elif net == "generator" and k in grown:
                mixed[k] = v
            else:
                raise ValueError(f"--base has no {net} weight {k}, which the soup did not grow")
        result[net] = mixed
    return result


def slim_checkpoint(state: dict, path: Path) -> None:
    slim = {k: state[k] for k in KEEP if k in state}
    for net in ("generator", "discriminator"):
        slim[net] = {
            k: v.to(torch.bfloat16) if v.is_floating_point() else v
            for k, v in state[net].items()
            if not k.startswith(checkpoint.FROZEN)  # runs saved before the encoder was left out
        }
    checkpoint.save(slim, path)


def training_photos(paths: list[str], folder: Path, per_archive: int) -> Path:
    """A few training photos from each ``--data`` path, evenly spread (int8 calibration, colour
    prior), written as PNG: archives, folders inside them and CIFAR batches alike."""
    for n, path in enumerate(paths):
        train = [r for r in data.find_records([path]) if r.split == "train"]
        for i, record in enumerate(train[:: max(1, len(train) // per_archive)][:per_archive]):
            data.to_rgb(record.open()).save(folder / f"{n:02d}-{i:03d}.png")
    return folder


def colour_prior(archives: list[str], per_archive: int = 60) -> ColourRarity:
    """The colour prior of the training photos, grey ones skipped as training skips them."""

    def ab_maps(folder: Path):
        for path in sorted(folder.iterdir()):
            rgb = np.array(data.to_rgb(Image.open(path)))
            if data.mean_chroma(rgb) >= data.GREY_CHROMA:
                lab = color.rgb_to_lab_nchw(torch.from_numpy(rgb).permute(2, 0, 1)[None] / 255.0)
                yield color.normalise_ab(lab[:, 1:])

    with tempfile.TemporaryDirectory() as tmp:
        return ColourRarity.from_batches(ab_maps(training_photos(archives, Path(tmp), per_archive)), 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "runs",
        type=Path,
        nargs="+",
        help="checkpoints (averaged when several), or a run folder (its checkpoints/best.pt)",
    )
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument(
        "--temperature",
        type=float,
        help="colour-class models: the annealed-mean temperature to ship (temperature_sweep.py)",
    )
    parser.add_argument(
        "--colour-gain", type=float, default=1.0, help="colour calibration stored in the model"
    )
    parser.add_argument(
        "--context-size", type=int, default=0, help="context pass stored in the model (0: none)"
    )
    parser.add_argument(
        "--rare-colours",
        type=float,
        default=0.0,
        help="colour-class models: divide the colour distribution by the training colour prior "
        "to this power (0: off)",
    )
    parser.add_argument("--base", type=Path, help="checkpoint the soup was fine-tuned from, to blend toward")
    parser.add_argument("--share", type=float, help="with --base: the soup's share of each weight")
    args = parser.parse_args()
    if (args.base is None) != (args.share is None):
        parser.error("--base and --share go together")
    if args.share is not None and not 0 < args.share < 1:
        parser.error(f"--share is the soup's share of each weight, between 0 and 1, not {args.share}")

    sources = [checkpoint.resolve(p) for p in args.runs]
    states = [checkpoint.load(p) for p in sources]
    state = averaged(states)
    if args.base is not None:
        try:
            state = blended(state, checkpoint.load(args.base), args.share)
        except ValueError as exc:
            parser.error(str(exc))
    if args.temperature is not None:
        # kept in the checkpoint too, so an fp16 export of it colours as the shipped model does
        state["generator_args"] = {**state["generator_args"], "temperature": args.temperature}
    if args.rare_colours:
        if HEAD_BIAS not in state["generator"]:
            parser.error("--rare-colours needs a colour-class model (train --colour-bins)")
        if state["generator_args"].get("colour_bins") != BINS:
            parser.error(f"--rare-colours counts the prior on {BINS}² cells; this model has other cells")
        offsets = colour_prior(state["config"]["data"]).logit_offsets(args.rare_colours)
        state["generator"][HEAD_BIAS] = state["generator"][HEAD_BIAS] + offsets
    slim_path = WEIGHTS / "colorcli-default.pt"
    slim_checkpoint(state, slim_path)
    epochs = ", ".join(str(s["epoch"]) for s in states)
    names = ", ".join(map(str, sources))
    blend = f", {args.share:g} of it and {1 - args.share:g} of {args.base}" if args.base else ""
    print(
        f"wrote {slim_path} ({slim_path.stat().st_size / 1e6:.1f} MB) from {names} (epochs {epochs}{blend})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        calib = training_photos(state["config"]["data"], Path(tmp), per_archive=13)
        export_model(
            slim_path,
            WEIGHTS / "colorcli-default.onnx",
            render_size=args.render_size,
            precision="int8",
            calibration=calib,
            colour_gain=args.colour_gain,
            context_size=args.context_size,
        )


if __name__ == "__main__":
    main()
