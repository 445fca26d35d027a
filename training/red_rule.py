"""The hue part of the red rule (training/trials.md), applied to a new release and the shipped one.

    python training/eval_photos.py /tmp/eval
    python training/red_rule.py NEW.onnx SHIPPED.onnx --eval /tmp/eval

Scores both models as ``colorcli colorize`` runs them (each at its own render size and context
pass, as exported) on the held-out photos, the validation split and its photos without people,
and prints, per set, the PSNR gain over grey, the colourfulness ratio and each hue family given
itself (``colorcli evaluate --hues``), then the verdict: red given red up at least 5 points on
the held-out photos and on ``val-things/``, and no other hue down more than 3 points on any of
the three sets. The rule's last step, not behind at equal PSNR by more than 0.01x, is
``gan_vs_l1.py NEW.onnx SHIPPED.onnx``'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from colorcli.evaluate import HUE_NAMES, Result, evaluate, model_candidate
from colorcli.imageio import find_images
from colorcli.pipeline import Colorizer
from colorcli.runtime import ModelLoadError

SETS = ("heldout", "val", "val-things")  # training/eval_photos.py's folders
RED_SETS = ("heldout", "val-things")  # where red must gain
RED_GAIN = 5.0  # points, at least
OTHER_LOSS = 3.0  # points, at most


def given_itself(result: Result) -> dict[str, float]:
    """Per hue family, the percentage of the originals' pixels of that hue given it back."""
    return {h: 100.0 * result.hues[h]["given"][h] for h in HUE_NAMES if result.hues[h]["share"] > 0}


def failures(name: str, new: dict[str, float], shipped: dict[str, float], red_sets: list[str]) -> list[str]:
    """The ways one set breaks the rule's hue part (empty: it holds there)."""
    broken = []
    for hue in new.keys() & shipped.keys():
        change = new[hue] - shipped[hue]
        if hue == "red" and name in red_sets and change < RED_GAIN:
            broken.append(f"{name}: red {change:+.1f} points (needs {RED_GAIN:+.0f})")
        elif hue != "red" and change < -OTHER_LOSS:
            broken.append(f"{name}: {hue} {change:+.1f} points (at most {-OTHER_LOSS:.0f})")
    return broken


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("new", type=Path, help="ONNX model of the new release")
    parser.add_argument("shipped", type=Path, help="ONNX model it must beat")
    parser.add_argument("--eval", type=Path, required=True, help="folder training/eval_photos.py wrote")
    parser.add_argument("--sets", nargs="+", default=SETS, help="its folders to score")
    parser.add_argument("--red-sets", nargs="+", default=RED_SETS, help="those where red must gain")
    args = parser.parse_args()

    try:
        candidates = [model_candidate(p.name, Colorizer(p)) for p in (args.new, args.shipped)]
    except ModelLoadError as exc:
        parser.error(str(exc))
    print("| set | model | PSNR gain over grey | colourfulness × originals | " + " | ".join(HUE_NAMES) + " |")
    print("|---|---|---|---|" + "---|" * len(HUE_NAMES))
    broken = []
    for name in args.sets:
        evaluation, _ = evaluate(find_images(args.eval / name), candidates)
        new, shipped = evaluation.results[1:]  # the grey baseline first
        for result in (new, shipped):
            hues = given_itself(result)
            cells = " | ".join(f"{hues[h]:.0f}%" if h in hues else "–" for h in HUE_NAMES)
            print(
                f"| {name} ({evaluation.photos}) | {result.name} | {result.psnr_gain:+.2f} dB | "
                f"{result.colourfulness_ratio:.3f} | {cells} |"
            )
        broken += failures(name, given_itself(new), given_itself(shipped), args.red_sets)
    print("\nthe red rule's hue part " + ("fails:\n  " + "\n  ".join(broken) if broken else "holds"))
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
