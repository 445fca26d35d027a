"""Does the adversarial term give livelier colour at equal PSNR? The study's claim, measured.

    python training/eval_photos.py /tmp/eval
    python training/gan_vs_l1.py GAN.onnx L1.onnx --photos /tmp/eval/heldout --photos /tmp/eval/val

Each model runs as ``colorcli colorize`` runs it: at its own render size and context pass (as
exported), unless ``--render-size`` or ``--context-size`` sets them for both (``--context-size
0``: no context pass). Its stored colour gain always applies.

Scores the GAN model and its L1-only twin, each at several ``--saturation`` values: any model
can be made more colourful by scaling its a,b, so the fair comparison is the most colour each
reaches, by a gain, without falling below the GAN's PSNR as trained (linear between the two
saturations around it). Prints one markdown table per folder of photos, the GAN's lead, and
how sure it is: a 95 % interval from resampling the photos (bootstrap), so a lead smaller than
the spread between photos is not read as a win.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from colorcli.evaluate import Candidate, PhotoScores, evaluate, model_candidate
from colorcli.imageio import find_images
from colorcli.pipeline import Colorizer

SATURATIONS = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5)
RESAMPLES = 2000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("gan", type=Path, help="ONNX model trained with the adversarial term")
    parser.add_argument("l1", type=Path, help="ONNX model of the same recipe, L1 only")
    parser.add_argument("--photos", type=Path, action="append", required=True, help="folder of colour photos")
    parser.add_argument(
        "--render-size", type=int, default=None, help="render size of both (default: each model's own)"
    )
    parser.add_argument(
        "--context-size",
        type=int,
        default=None,
        help="context pass of both, 0 for none (default: each model's own)",
    )
    args = parser.parse_args()

    run = {"render_size": args.render_size, "context_size": args.context_size}
    models = (("GAN", args.gan), ("L1 only", args.l1))
    colorizers = {name: [Colorizer(path, saturation=s, **run) for s in SATURATIONS] for name, path in models}
    candidates = [
        model_candidate(f"{name}, saturation {s:g}", colorizer)
        for name, _ in models
        for s, colorizer in zip(SATURATIONS, colorizers[name], strict=True)
    ]
    settings = "; ".join(
        f"{name}: render size {c[0].render_size}, context {c[0].context_size or 'none'}"
        for name, c in colorizers.items()
    )
    for folder in args.photos:
        gain, colour, original = per_photo(find_images(folder), candidates)
        print(f"\n{folder}: {len(original)} photos; {settings}\n")
        print("| model | PSNR gain over grey | colourfulness × originals |\n|---|---|---|")
        ratio = colour.mean(axis=1) / original.mean()
        for c, g, r in zip(candidates, gain.mean(axis=1), ratio, strict=True):
            print(f"| {c.name} | {g:+.2f} dB | {r:.3f} |")
        lead = gan_lead(gain, colour, original)
        rng = np.random.default_rng(0)
        picks = (rng.integers(0, len(original), len(original)) for _ in range(RESAMPLES))
        leads = [gan_lead(gain[:, i], colour[:, i], original[i]) for i in picks]
        low, high = np.nanpercentile(leads, [2.5, 97.5])
        print(
            f"\nAt the GAN's PSNR as trained ({gain[SATURATIONS.index(1.0)].mean():+.2f} dB), the most "
            f"colour each reaches by a gain: GAN ahead of its L1 twin by {lead:+.3f}x the originals' "
            f"(95 % interval over the photos {low:+.3f} to {high:+.3f})"
        )


def per_photo(photos: list[Path], candidates: list[Candidate]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each candidate's PSNR gain over grey and colourfulness on each colour photo (candidates ×
    photos), and each original's colourfulness, scored exactly as ``colorcli evaluate`` scores."""
    scores: list[PhotoScores] = []
    evaluate(photos, candidates, on_photo=scores.append)
    gain = [[m["psnr"] - s.figures[0]["psnr"] for m in s.figures[1:]] for s in scores]  # grey first
    colour = [[m["colourfulness"] for m in s.figures[1:]] for s in scores]
    return np.array(gain).T, np.array(colour).T, np.array([s.original_colourfulness for s in scores])


def gan_lead(gain: np.ndarray, colour: np.ndarray, original: np.ndarray) -> float:
    """The GAN's colourfulness ratio minus its twin's, each at the most colourful saturation that
    keeps the GAN's mean PSNR gain at saturation 1 (rows: the GAN at each of SATURATIONS, then
    the twin at each). NaN where the twin never reaches that PSNR."""
    psnr, ratio = gain.mean(axis=1), colour.mean(axis=1) / original.mean()
    n = len(SATURATIONS)
    target = psnr[SATURATIONS.index(1.0)]
    return most_colour(psnr[:n], ratio[:n], target) - most_colour(psnr[n:], ratio[n:], target)


def most_colour(psnr: np.ndarray, ratio: np.ndarray, target: float) -> float:
    """The colourfulness ratio where the curve (by rising saturation) last crosses ``target``
    PSNR, linear between saturations: the most colour a gain buys without losing PSNR beyond it."""
    for i in reversed(range(len(psnr) - 1)):
        lo, hi = sorted((psnr[i], psnr[i + 1]))
        if lo <= target <= hi:
            t = 0.0 if hi == lo else (psnr[i] - target) / (psnr[i] - psnr[i + 1])
            return float(ratio[i] + t * (ratio[i + 1] - ratio[i]))
    return float("nan")


if __name__ == "__main__":
    main()
