"""Peak memory of `colorcli colorize` and `colorcli evaluate` as a folder grows, and as a photo does.

    .venv/bin/python training/bench_memory.py [--model M.onnx] [--counts 100 1000 3000] [--side 320]

Writes ``max(--counts)`` colour JPEGs of ``--side`` pixels (crops of the held-out sample photos
of scikit-image, scikit-learn and matplotlib, with grain) into a temporary folder. Then runs the
real commands, each in a process of its own as a user would, on folders of each count (hard
links to the first N photos), and prints each run's peak resident memory (the child's
``ru_maxrss``): flat memory means the peak does not grow with the count. Last, ``colorize`` on
single grey photos of 12, 48 and 96 megapixels: what one large photo costs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_colorize import sample_photos
from PIL import Image


def build_photos(folder: Path, count: int, side: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    colour = [pixels for _, pixels in sample_photos() if pixels.ndim == 3]
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        pixels = colour[i % len(colour)]
        h, w = pixels.shape[:2]
        crop = min(h, w) * (0.5 + 0.5 * rng.random())
        y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        box = (int(x), int(y), int(x + crop), int(y + crop))
        im = Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC, box=box)
        grain = rng.normal(0, 3, (side, side, 3)).astype(np.float32)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.clip(np.asarray(im) + grain, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def linked(paths: list[Path], folder: Path) -> Path:
    folder.mkdir()
    for path in paths:
        os.link(path, folder / path.name)
    return folder


def peak(args: list[str]) -> tuple[float, float]:
    """Seconds and peak resident MB of ``colorcli ARGS`` in a process of its own."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "colorcli", *args]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # Popen.wait would not give the child's rusage
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed (run it to see why): {' '.join(command)}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="ONNX model (default: the shipped one)")
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--side", type=int, default=320)
    parser.add_argument("--evaluate-limit", type=int, default=0, help="0: evaluate every photo")
    args = parser.parse_args()
    model = ["--model", str(args.model)] if args.model else []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos = build_photos(root / "all", max(args.counts), args.side)
        print(f"{len(photos)} colour JPEGs of {args.side}×{args.side}; peak resident memory per run")
        print("| photos | colorize | evaluate |")
        print("|---|---|---|")
        for count in sorted(args.counts):
            folder = linked(photos[:count], root / f"n{count}")
            out = root / f"out{count}"
            colour_s, colour_mb = peak(["colorize", str(folder), "-o", str(out), *model])
            limit = ["--limit", str(args.evaluate_limit)] if args.evaluate_limit else []
            scored_s, scored_mb = peak(["evaluate", str(folder), "--json", *limit, *model])
            cells = f"{colour_mb:.0f} MB ({colour_s:.0f} s) | {scored_mb:.0f} MB ({scored_s:.0f} s)"
            print(f"| {count} | {cells} |")
        print("\n| one grey photo | colorize |")
        print("|---|---|")
        grey = np.asarray(Image.open(photos[0]).convert("L"))
        for megapixels in (12, 48, 96):
            side = round((megapixels * 1e6) ** 0.5)
            path = root / f"big{megapixels}.jpg"
            Image.fromarray(grey).resize((side, side), Image.Resampling.BILINEAR).save(path, quality=90)
            seconds, mb = peak(["colorize", str(path), "-o", str(root / f"big{megapixels}"), *model])
            print(f"| {megapixels} MP | {mb:.0f} MB ({seconds:.1f} s) |")


if __name__ == "__main__":
    main()
