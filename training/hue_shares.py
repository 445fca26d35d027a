"""How the training photos' colour is shared among hue families, and whether drawing photos by
the rarity of their colours would change it.

    python training/hue_shares.py [--data ../shared/data/people128.tar.gz ...]

For each archive (default: the five of the shipped recipe) and for all together: the share of
the clearly coloured pixels (chroma ≥ 20, the centre crop of each training photo at 64 px)
in each hue family of ``colorcli evaluate --hues``, and red's ratio to orange/skin. Then the
same shares as a training run would see them if each photo were drawn in proportion to the
mean rarity weight of its pixels, by a,b cell (``--rebalance``'s weights) or by hue family
(``--rebalance-hues``'s), at strengths 0.5 and 1. Prints markdown tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from colorcli import color, data, metrics
from colorcli.rebalance import ColourRarity

RECIPE = ["imagenette160", "intel-scenes128", "flowers128", "tinyimagenet64", "people128"]
SIZE = 64
NAMES = [name for name, _ in metrics.HUE_FAMILIES]


def photo_maps(records: list[data.Record]) -> tuple[np.ndarray, torch.Tensor]:
    """Per photo: its coloured pixels' count in each hue family (N, families), and all photos'
    normalised a,b maps (N, 2, SIZE, SIZE)."""
    crops = data.ColourDataset(records, SIZE, augment=False)
    rgb = torch.stack([crops[i] for i in range(len(crops))]).float().div_(255.0)
    ab = color.rgb_to_lab_nchw(rgb)[:, 1:]
    pixels = ab.permute(0, 2, 3, 1).numpy()
    coloured = np.hypot(pixels[..., 0], pixels[..., 1]) >= metrics.COLOURED_CHROMA
    families = np.where(coloured, metrics.hue_family(pixels), -1).reshape(len(records), -1)
    counts = np.stack([(families == f).sum(1) for f in range(len(NAMES))], axis=1)
    return counts, color.normalise_ab(ab)


def row(label: str, counts: np.ndarray) -> str:
    shares = counts / counts.sum()
    cells = " | ".join(f"{s:.1%}" for s in shares)
    return f"| {label} | {cells} | {shares[0] / shares[1]:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = [Path("../shared/data") / f"{name}.tar.gz" for name in RECIPE]
    parser.add_argument(
        "--data", type=Path, action="append", help="archive or folder (default: the recipe's five)"
    )
    args = parser.parse_args()

    header = f"| photos | {' | '.join(NAMES)} | red : orange |\n|---|{'---|' * (len(NAMES) + 1)}"
    print(header)
    counts, maps = [], []
    for path in args.data or default:
        train, _, _ = data.select(data.find_records([path]), warn=lambda _: None)
        archive_counts, archive_maps = photo_maps(train)
        print(row(f"{path.name} ({len(train)})", archive_counts.sum(0)))
        counts.append(archive_counts)
        maps.append(archive_maps)
    per_photo, ab = np.concatenate(counts), torch.cat(maps)
    print(row(f"all ({len(per_photo)})", per_photo.sum(0)))

    print(f"\nDrawn by the mean rarity of each photo's pixels:\n\n{header}")
    for by, hue in (("a,b cell", False), ("hue family", True)):
        for strength in (0.5, 1.0):
            rarity = ColourRarity.from_batches([ab], 0.0 if hue else strength, strength if hue else 0.0)
            draws = rarity.weights(ab).mean((1, 2, 3)).double().numpy()
            print(row(f"by {by}, strength {strength:g}", (per_photo * draws[:, None]).sum(0)))


if __name__ == "__main__":
    main()
