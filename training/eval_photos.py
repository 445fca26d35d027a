"""Write the model card's two evaluation sets, so its figures can be measured again.

    python training/eval_photos.py /tmp/eval     # -> /tmp/eval/heldout (8 photos), /tmp/eval/val (269)
    colorcli evaluate /tmp/eval/heldout --hues   # and /tmp/eval/val, /tmp/eval/val-things (209)

``heldout/``: the colour sample photos of scikit-image, scikit-learn and matplotlib, which no
training archive holds (``../shared/data/README.md`` checked that), as lossless PNG.
``val/``: up to 60 photos from each archive's own ``val/`` split, evenly spread over it.
``val-things/``: the same without people128's: where red is in things, not in lips and skin
(half of ``val/``'s red pixels), the set to judge "red things red" on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from archive_sample import extract_spread
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
    args = parser.parse_args()

    heldout = args.folder / "heldout"
    heldout.mkdir(parents=True, exist_ok=True)
    for name, pixels in heldout_photos():
        Image.fromarray(pixels).save(heldout / f"{name}.png")
    val, things = args.folder / "val", args.folder / "val-things"
    for name in ARCHIVES:
        for folder in (val, things) if name != PEOPLE else (val,):
            folder.mkdir(parents=True, exist_ok=True)
            extract_spread(args.data / f"{name}.tar.gz", folder, VAL_PER_ARCHIVE, within="/val/")
    for folder in (heldout, val, things):
        print(f"{folder}: {len(list(folder.iterdir()))} photos")


if __name__ == "__main__":
    main()
