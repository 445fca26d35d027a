"""Does the adversarial term give livelier colour at equal PSNR? The study's claim, measured.

    python training/gan_vs_l1.py GAN.onnx L1.onnx --photos /tmp/eval/heldout --photos /tmp/eval/val

Scores the GAN model as it is, and the L1-only twin at several ``--saturation`` values: an L1
model can always be made more colourful by scaling its a,b, so the fair comparison is the
colourfulness each reaches at the same PSNR. Prints one markdown table per folder of photos,
and the twin's colourfulness at the GAN's PSNR, interpolated between its two nearest
saturations.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from colorcli.evaluate import Result, evaluate, find_photos, model_candidate
from colorcli.pipeline import Colorizer

SATURATIONS = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("gan", type=Path, help="ONNX model trained with the adversarial term")
    parser.add_argument("l1", type=Path, help="ONNX model of the same recipe, L1 only")
    parser.add_argument("--photos", type=Path, action="append", required=True, help="folder of colour photos")
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--context-size", type=int, default=0, help="context pass of both (0: none)")
    args = parser.parse_args()

    run = {"render_size": args.render_size, "context_size": args.context_size}
    candidates = [model_candidate("GAN", Colorizer(args.gan, **run))]
    candidates += [
        model_candidate(f"L1 only, saturation {s:g}", Colorizer(args.l1, saturation=s, **run))
        for s in SATURATIONS
    ]
    for folder in args.photos:
        result, _ = evaluate(find_photos(folder), candidates)
        print(
            f"\n{folder}: {result.photos} photos, "
            f"render size {args.render_size}, context {args.context_size}\n"
        )
        print(result.markdown())
        gan, twin = result.results[1], result.results[2:]
        at = twin_at(gan.psnr_gain, twin)
        print(f"\nL1 only at the GAN's PSNR: {at} (GAN {gan.colourfulness_ratio:.3f}x)")


def twin_at(psnr_gain: float, twin: list[Result]) -> str:
    """The twin's colourfulness ratio at ``psnr_gain``, linear between the saturations around it
    (PSNR falls as the saturation rises)."""
    for hi, lo in itertools.pairwise(twin):
        if lo.psnr_gain <= psnr_gain <= hi.psnr_gain:
            t = (hi.psnr_gain - psnr_gain) / (hi.psnr_gain - lo.psnr_gain)
            return f"{hi.colourfulness_ratio + t * (lo.colourfulness_ratio - hi.colourfulness_ratio):.3f}x"
    return "out of the saturations' range"


if __name__ == "__main__":
    main()
