"""Are skies blue, leaves green and red things red? Per-hue figures for one or more models.

    python training/hue_families.py --photos DIR [--model A.onnx ...] [--render-size N]

Each colour photo under DIR is turned grey and coloured, as ``colorcli evaluate`` does. Every
pixel whose original is clearly coloured (CIE chroma at least 20) is put in a hue family by its
original's CIELAB hue angle, and the model's colour for it is put in one too, or counted as grey
when its chroma is under 10. Prints, per model, one markdown table: how often each family comes
back in its own family, how often grey, what it most often becomes instead, and its chroma
against the original's. Pixels are pooled over all photos.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from colorcli import color, metrics, render
from colorcli.evaluate import UNREADABLE, find_photos, load_photo, model_candidate
from colorcli.pipeline import Colorizer

NAMES = [name for name, _ in metrics.HUE_FAMILIES]


def tally(photos: list[Path], colorizer: Colorizer) -> tuple[np.ndarray, np.ndarray]:
    """The pooled hue confusion and, per family, the model's chroma sum over the original's."""
    candidate = model_candidate("model", colorizer)
    counts = np.zeros((len(NAMES), len(NAMES) + 1), dtype=np.int64)
    chroma = np.zeros((2, len(NAMES)))
    for path in photos:
        try:
            original = load_photo(path, 512)
        except UNREADABLE:
            continue
        if original is None:
            continue
        produced = candidate.colour(render.luminance8(original))
        original_ab, model_ab = (
            color.rgb_to_lab(rgb / np.float32(255))[..., 1:] for rgb in (original, produced)
        )
        counts += metrics.hue_confusion(original_ab, model_ab)
        original_c = np.hypot(original_ab[..., 0], original_ab[..., 1])
        coloured = original_c >= metrics.COLOURED_CHROMA
        family = metrics.hue_family(original_ab[coloured])
        for row, values in enumerate((original_c, np.hypot(model_ab[..., 0], model_ab[..., 1]))):
            chroma[row] += np.bincount(family, values[coloured], minlength=len(NAMES))
    return counts, chroma[1] / np.maximum(chroma[0], 1e-9)


def table(counts: np.ndarray, chroma_ratio: np.ndarray) -> str:
    rows = [
        "| original hue | share of coloured pixels | same hue | grey | most often instead "
        "| chroma × original |",
        "|---|---|---|---|---|---|",
    ]
    total = max(int(counts.sum()), 1)
    for index, name in enumerate(NAMES):
        row = counts[index]
        pixels = max(int(row.sum()), 1)
        count, other = max((int(row[j]), NAMES[j]) for j in range(len(NAMES)) if j != index)
        rows.append(
            f"| {name} | {row.sum() / total:.1%} | {row[index] / pixels:.0%} "
            f"| {row[metrics.HUE_GREY] / pixels:.0%} | {other} ({count / pixels:.0%}) "
            f"| {chroma_ratio[index]:.2f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, required=True, help="folder of colour photos")
    parser.add_argument(
        "--model", type=Path, action="append", help="ONNX model (default: the shipped one); repeatable"
    )
    parser.add_argument("--render-size", type=int, help="as colorcli colorize --render-size")
    args = parser.parse_args()
    photos = find_photos(args.photos)
    if not photos:
        parser.error(f"no photos under {args.photos}")
    for model in args.model or [None]:
        colorizer = Colorizer(model, render_size=args.render_size)
        print(f"\n{colorizer.model.path.name} on {len(photos)} photos in {args.photos}\n")
        print(table(*tally(photos, colorizer)))


if __name__ == "__main__":
    main()
