"""Does a model colour faces of every skin tone alike? Figures per group of validation faces.

    python training/skin_tones.py [--model weights/colorcli-default.onnx] \
        [--archive ../shared/data/people128.tar.gz]

UTKFace's file names carry the dataset's own label (``utkface_AGE_GENDER_RACE_DATE.jpg``:
0 white, 1 black, 2 east Asian, 3 Indian, 4 other). The faces in the archive's ``val/`` folder,
never trained on, are sorted by that label and scored per group with ``colorcli evaluate``'s
metrics. Prints one markdown table; the grey baseline's figures are in brackets.
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
from pathlib import Path

from colorcli.evaluate import GREY_NAME, evaluate, model_candidate
from colorcli.imageio import find_images
from colorcli.pipeline import Colorizer

GROUPS = {"0": "white", "1": "black", "2": "east Asian", "3": "Indian", "4": "other"}


def extract_faces(archive: Path, folder: Path) -> dict[str, Path]:
    """Writes the archive's validation faces to one sub-folder of ``folder`` per label."""
    groups = {label: folder / label for label in GROUPS}
    for path in groups.values():
        path.mkdir()
    with tarfile.open(archive) as tf:
        for member in tf:
            name = Path(member.name)
            if member.isfile() and name.parent.name == "val" and name.name.startswith("utkface_"):
                label = name.stem.split("_")[3]
                (groups[label] / name.name).write_bytes(tf.extractfile(member).read())
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="ONNX model (default: the shipped one)")
    parser.add_argument("--archive", type=Path, default=Path("../shared/data/people128.tar.gz"))
    args = parser.parse_args()
    if not args.archive.is_file():
        parser.error(f"{args.archive} not found; run from the repository root or pass --archive")

    candidate = model_candidate("model", Colorizer(args.model))
    print("| faces | count | PSNR gain over grey | a,b error | a,b AUC | colourfulness × originals |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, folder in extract_faces(args.archive, Path(tmp)).items():
            result, _ = evaluate(find_images(folder), [candidate])
            scores = {r.name: r for r in result.results}
            grey, model = scores[GREY_NAME], scores["model"]
            print(
                f"| {GROUPS[label]} | {result.photos} | {model.psnr_gain:+.2f} dB "
                f"| {model.ab_error:.1f} ({grey.ab_error:.1f}) | {model.ab_auc:.3f} ({grey.ab_auc:.3f}) "
                f"| {model.colourfulness_ratio:.2f} |"
            )


if __name__ == "__main__":
    main()
