"""Copy the training photos of things of a hue out of the recipe's archives, to draw them more often.

    python training/hue_photos.py /tmp/hues --pick red:1 --pick yellow:1 [--share 0.1]
    colorcli train ... --data ../shared/data/ARCHIVE.tar.gz ... --data /tmp/hues

Picks, from the train split of each archive of the shipped recipe except people128 (whose red
and orange are lips, clothes and skin), the photos whose 64 px centre crop has at least
``--share`` of its pixels clearly of a ``--pick`` hue (chroma ≥ 20, the hue families of
``colorcli evaluate --hues``), and writes that pick's number of copies of each under
``DIR/train/c1/`` ... A photo picked for two hues gets the larger number, so that a run given
DIR beside the archives draws each picked photo ``copies + 1`` times as often. The copies lie
under ``train/``, so none lands in the run's validation split. Prints how the draws' hue
shares change.
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

import numpy as np
from hue_shares import NAMES, RECIPE, SIZE, photo_maps, row

from colorcli import data

PEOPLE = "people128"


def pick(text: str) -> tuple[int, int]:
    """``HUE:COPIES`` → (hue family index, copies)."""
    hue, _, copies = text.rpartition(":")
    if hue not in NAMES or not copies.isdigit():
        raise argparse.ArgumentTypeError(f"expected HUE:COPIES with HUE one of {', '.join(NAMES)}")
    return NAMES.index(hue), int(copies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="where train/c1/ ... are written")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the archives' folder")
    parser.add_argument(
        "--pick",
        type=pick,
        action="append",
        required=True,
        metavar="HUE:COPIES",
        help="a hue family and the extra copies of each of its photos (repeatable)",
    )
    parser.add_argument("--share", type=float, default=0.1, help="least share of a photo's pixels of the hue")
    args = parser.parse_args()

    counts, copies = [], []
    for name in RECIPE:
        archive = args.data / f"{name}.tar.gz"
        train, _, _ = data.select(data.find_records([archive]), warn=lambda _: None)
        archive_counts, _ = photo_maps(train)
        counts.append(archive_counts)
        extra = np.zeros(len(train), int)
        if name != PEOPLE:
            for hue, n in args.pick:
                extra = np.maximum(extra, n * (archive_counts[:, hue] / SIZE**2 >= args.share))
        copies.append(extra)
        wanted = {rec.key.split(":", 1)[1]: n for rec, n in zip(train, extra, strict=True) if n}
        with tarfile.open(archive) as tf:
            for member in tf:
                if member.name in wanted:
                    photo = tf.extractfile(member).read()
                    for copy in range(1, wanted[member.name] + 1):
                        path = args.folder / "train" / f"c{copy}" / f"{name}_{Path(member.name).name}"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(photo)
        print(f"{name}: {len(wanted)} of {len(train)} photos picked")

    per_photo, extra = np.concatenate(counts), np.concatenate(copies)
    draws = 1 + extra
    print(f"\n| draws | {' | '.join(NAMES)} | red : orange |\n|---|{'---|' * (len(NAMES) + 1)}")
    print(row("each photo once", per_photo.sum(0)))
    print(row("picked photos drawn more", (per_photo * draws[:, None]).sum(0)))
    chosen = extra > 0
    print(f"\npicked photos: {chosen.sum()}, {draws[chosen].sum() / draws.sum():.0%} of the draws")


if __name__ == "__main__":
    main()
