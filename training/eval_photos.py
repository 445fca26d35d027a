"""Write the model card's two evaluation sets, so its figures can be measured again.

    python training/eval_photos.py /tmp/eval     # -> /tmp/eval/heldout (8 photos), /tmp/eval/val (269)
    colorcli evaluate /tmp/eval/heldout --hues   # and /tmp/eval/val, /tmp/eval/val-things (209)

``heldout/``: the colour sample photos of scikit-image, scikit-learn and matplotlib, which no
training archive holds (``../shared/data/README.md`` checked that), as lossless PNG.
``val/``: up to 60 photos from each archive's own ``val/`` split, evenly spread over it.
``val-things/``: the same without people128's: where red is in things, not in lips and skin
(half of ``val/``'s red pixels), the set to judge "red things red" on.

With ``--rest``, also ``val-rest/`` and ``val-rest-things/``: the ``val/`` photos the 60 leave out,
new photos for a trial after ``val/`` has been read. With ``--train N``, ``train/`` and
``train-things/``: N photos from each archive's ``train/`` split, where a trial can choose a
setting without reading any evaluation set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from archive_sample import extract_rest, extract_spread
from PIL import Image

ARCHIVES = ("imagenette160", "intel-scenes128", "flowers128", "tinyimagenet64", "people128")
VAL_PER_ARCHIVE = 60
PEOPLE = "people128"


def heldout_photos() -> list[tuple[str, np.ndarray]]:
    """The eight colour sample photos of scikit-image, scikit-learn and matplotlib, as 8-bit RGB."""
    import matplotlib.cbook
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = [(name, getattr(data, name)()) for name in ("astronaut", "coffee", "chelsea", "rocket")]
    photos.append(("motorcycle", data.stereo_motorcycle()[0]))
    photos += list(zip(("china", "flower"), load_sample_images().images, strict=True))
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        photos.append(("grace_hopper", np.asarray(Image.open(fh).convert("RGB"))))
    return photos


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="where heldout/ and val/ are written")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the archives' folder")
    parser.add_argument("--rest", action="store_true", help="also write val-rest/, val-rest-things/")
    parser.add_argument(
        "--train", type=int, default=0, metavar="N", help="also write N photos an archive to train/"
    )
    args = parser.parse_args()

    heldout = args.folder / "heldout"
    heldout.mkdir(parents=True, exist_ok=True)
    for name, pixels in heldout_photos():
        Image.fromarray(pixels).save(heldout / f"{name}.png")
    sets = {"val": lambda archive, folder: extract_spread(archive, folder, VAL_PER_ARCHIVE, "/val/")}
    if args.rest:
        sets["val-rest"] = lambda archive, folder: extract_rest(archive, folder, VAL_PER_ARCHIVE, "/val/")
    if args.train:
        sets["train"] = lambda archive, folder: extract_spread(archive, folder, args.train, "/train/")
    written = [heldout]
    for split, extract in sets.items():
        every, things = args.folder / split, args.folder / f"{split}-things"
        for name in ARCHIVES:
            for folder in (every, things) if name != PEOPLE else (every,):
                folder.mkdir(parents=True, exist_ok=True)
                extract(args.data / f"{name}.tar.gz", folder)
        written += [every, things]
    for folder in written:
        print(f"{folder}: {len(list(folder.iterdir()))} photos")


if __name__ == "__main__":
    main()
