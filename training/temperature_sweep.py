"""Choose a colour-class model's annealed-mean temperature and colour gain by measurement.

    python training/temperature_sweep.py runs/classes-gan/checkpoints/last.pt \
        --photos /tmp/eval/val --temperature 0.38 --temperature 0.7 --colour-gain 1 --colour-gain 1.1

Exports the checkpoint (fp32) once per temperature and scores it at each colour gain (as
``export --colour-gain`` would store it) with ``colorcli evaluate``'s metrics, one markdown
table per folder of photos. Lower temperatures move each pixel's colour from the mean of its
predicted distribution towards the mode; a gain scales a,b. Both buy colour with PSNR.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from colorcli.evaluate import evaluate, model_candidate
from colorcli.export import export_model
from colorcli.imageio import find_images
from colorcli.pipeline import Colorizer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, help="a colour-class checkpoint (train --colour-bins)")
    parser.add_argument("--photos", type=Path, action="append", required=True, help="folder of colour photos")
    parser.add_argument("--temperature", type=float, action="append", required=True)
    parser.add_argument("--colour-gain", type=float, action="append", help="default: 1 only")
    parser.add_argument("--render-size", type=int, default=256)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        candidates = []
        for t in args.temperature:
            model = Path(tmp) / f"t{t:g}.onnx"
            export_model(args.checkpoint, model, args.render_size, log=lambda _: None, temperature=t)
            candidates += [
                model_candidate(
                    f"T = {t:g}, gain {g:g}", Colorizer(model, render_size=args.render_size, saturation=g)
                )
                for g in args.colour_gain or [1.0]
            ]
        for folder in args.photos:
            result, _ = evaluate(find_images(folder), candidates)
            print(f"\n{folder}: {result.photos} photos, render size {args.render_size}\n")
            print(result.markdown("read-off"))


if __name__ == "__main__":
    main()
