"""Copy the training photos of red things out of the recipe's archives, to draw them more often.

    python training/red_photos.py /tmp/red [--share 0.1] [--copies 3]
    colorcli train ... --data ../shared/data/ARCHIVE.tar.gz ... --data /tmp/red

Picks, from the train split of each archive of the shipped recipe except people128 (whose red
is lips and clothes beside skin), the photos whose 64 px centre crop has at least ``--share``
of its pixels clearly red (chroma ≥ 20, the red family of ``colorcli evaluate --hues``), and
writes ``--copies`` copies of each under ``DIR/train/c1/`` ... so that a run given DIR beside
the archives draws each of them ``copies + 1`` times as often. The copies lie under ``train/``,
so none lands in the run's validation split. Prints how the draws' hue shares change.
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

import numpy as np
from hue_shares import NAMES, RECIPE, SIZE, photo_maps, row

from colorcli import data

PEOPLE = "people128"
RED = NAMES.index("red")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="where train/c1/ ... are written")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the archives' folder")
    parser.add_argument(
        "--share", type=float, default=0.1, help="least share of a photo's pixels that are red"
    )
    parser.add_argument("--copies", type=int, default=3, help="extra copies of each photo picked")
    args = parser.parse_args()

    counts, picked = [], []
    for name in RECIPE:
        archive = args.data / f"{name}.tar.gz"
        train, _, _ = data.select(data.find_records([archive]), warn=lambda _: None)
        archive_counts, _ = photo_maps(train)
        counts.append(archive_counts)
        red = archive_counts[:, RED] / SIZE**2 >= args.share
        if name == PEOPLE:
            picked.append(np.zeros(len(train), bool))
            continue
        picked.append(red)
        members = {rec.key.split(":", 1)[1] for rec, r in zip(train, red, strict=True) if r}
        with tarfile.open(archive) as tf:
            for member in tf:
                if member.name in members:
                    photo = tf.extractfile(member).read()
                    for copy in range(1, args.copies + 1):
                        path = args.folder / "train" / f"c{copy}" / f"{name}_{Path(member.name).name}"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(photo)
        print(f"{name}: {len(members)} of {len(train)} photos picked")

    per_photo, chosen = np.concatenate(counts), np.concatenate(picked)
    draws = 1 + args.copies * chosen
    print(f"\n| draws | {' | '.join(NAMES)} | red : orange |\n|---|{'---|' * (len(NAMES) + 1)}")
    print(row("each photo once", per_photo.sum(0)))
    print(row(f"picked photos {args.copies + 1}×", (per_photo * draws[:, None]).sum(0)))
    print(f"\npicked photos: {chosen.sum()}, {draws[chosen].sum() / draws.sum():.0%} of the draws")


if __name__ == "__main__":
    main()
