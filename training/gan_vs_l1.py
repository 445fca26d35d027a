"""Does the adversarial term give livelier colour at equal PSNR? The study's claim, measured.

    python training/gan_vs_l1.py GAN.onnx L1.onnx --photos /tmp/eval/heldout --photos /tmp/eval/val

Scores the GAN model as it is, and the L1-only twin at several ``--saturation`` values: an L1
model can always be made more colourful by scaling its a,b, so the fair comparison is the
colourfulness each reaches at the same PSNR. Prints one markdown table per folder of photos.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from colorcli.evaluate import evaluate, find_photos, model_candidate
from colorcli.pipeline import Colorizer

SATURATIONS = (1.0, 1.1, 1.2, 1.3, 1.5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("gan", type=Path, help="ONNX model trained with the adversarial term")
    parser.add_argument("l1", type=Path, help="ONNX model of the same recipe, L1 only")
    parser.add_argument("--photos", type=Path, action="append", required=True, help="folder of colour photos")
    parser.add_argument("--render-size", type=int, default=256)
    args = parser.parse_args()

    size = args.render_size
    candidates = [model_candidate("GAN", Colorizer(args.gan, render_size=size))]
    candidates += [
        model_candidate(f"L1 only, saturation {s:g}", Colorizer(args.l1, render_size=size, saturation=s))
        for s in SATURATIONS
    ]
    for folder in args.photos:
        result, _ = evaluate(find_photos(folder), candidates)
        print(f"\n{folder}: {result.photos} photos, render size {args.render_size}\n")
        print(result.markdown())


if __name__ == "__main__":
    main()
