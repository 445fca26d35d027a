"""Tables for training/REPORT.md: the study's comparison, measured on our runs.

    python training/paper_report.py resnet-sn=runs/paper-resnet-sn unet-sn=runs/paper-unet-sn \
        unet-bn=runs/paper-unet-bn [--epoch 10] [--test-images 2000] [--grid training/paper-grid.png]

For each run: the four figures of the study's table "Losses after 10 epochs" (training and
validation) from its ``metrics.jsonl``, its wall-clock time per epoch, and ``colorcli evaluate``
on CIFAR-10's test split (the run's best checkpoint, exported to a temporary ONNX model). Prints
Markdown; the commentary beside it is written by hand.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from archive_sample import extract_spread

PAPER = {  # the study's table; Model 1 (resnet-sn) never finished an epoch
    "resnet-sn": None,
    "unet-sn": {"gen_adv": 0.8640, "gen_l1": 0.0825, "disc_loss": 0.5747, "disc_acc": 0.7320},
    "unet-bn": {"gen_adv": 0.8323, "gen_l1": 0.0812, "disc_loss": 0.5758, "disc_acc": 0.7367},
}
FIGURES = ("gen_adv", "gen_l1", "disc_loss", "disc_acc")
CIFAR_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-test.tar.gz"


def colorcli(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "colorcli", *args], check=True, capture_output=True, text=True
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", help="ARCH=RUN_DIR")
    parser.add_argument("--epoch", type=int, default=10)
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--grid", type=Path, default=Path("training/paper-grid.png"))
    args = parser.parse_args()
    runs = dict(r.split("=", 1) for r in args.runs)

    print(
        f"| figure after {args.epoch} epochs | "
        + " | ".join(f"{a} (paper) | {a} (ours, train / val)" for a in runs)
        + " |"
    )
    print("|---" * (1 + 2 * len(runs)) + "|")
    records = {}
    for arch, run in runs.items():
        lines = [json.loads(x) for x in (Path(run) / "metrics.jsonl").read_text().splitlines()]
        records[arch] = next((x for x in lines if x["epoch"] == args.epoch), lines[-1])
    for fig in FIGURES:
        cells = []
        for arch, rec in records.items():
            paper = PAPER.get(arch)
            cells.append(f"{paper[fig]:.4f}" if paper else "not reached")
            cells.append(f"{rec['train'][fig]:.4f} / {rec['val'][fig]:.4f}")
        print(f"| {fig} | " + " | ".join(cells) + " |")
    print()
    for arch, run in runs.items():
        lines = [json.loads(x) for x in (Path(run) / "metrics.jsonl").read_text().splitlines()]
        per_epoch = sum(x["seconds"] for x in lines) / len(lines)
        print(
            f"- {arch}: {len(lines)} epochs, {per_epoch / 60:.1f} min per epoch "
            f"(epoch {records[arch]['epoch']} shown), validation PSNR {records[arch]['val']['psnr']:.2f} dB"
        )
    print()

    with tempfile.TemporaryDirectory() as tmp:
        models = []
        for arch, run in runs.items():
            model = Path(tmp) / f"{arch}.onnx"
            colorcli("export", run, "-o", str(model), "--render-size", "32")
            models += ["--model", str(model)]
        (Path(tmp) / "test").mkdir()
        photos = extract_spread(CIFAR_TEST, Path(tmp) / "test", args.test_images)
        report = json.loads(
            colorcli("evaluate", str(photos), *models, "--json", "--max-side", "32", "--grid", str(args.grid))
        )
    print(f"`colorcli evaluate` on {report['photos']} CIFAR-10 test images (32×32):\n")
    print("| model | PSNR | +grey | SSIM | a,b error | a,b AUC | colourfulness | ×original |")
    print("|---|---|---|---|---|---|---|---|")
    for m in report["models"]:
        print(
            f"| {m['name']} | {m['psnr']:.2f} | {m['psnr_gain']:+.2f} | {m['ssim']:.4f} "
            f"| {m['ab_error']:.2f} | {m['ab_auc']:.4f} | {m['colourfulness']:.1f} "
            f"| {m['colourfulness_ratio']:.2f} |"
        )
    print(f"\ngrid: {args.grid}")


if __name__ == "__main__":
    main()
