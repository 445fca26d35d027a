"""Training throughput: colorcli's architectures against the paper's reference code, one machine, one run.

    python training/bench_train.py --reference /path/to/GAN_image_colorizing

``--reference`` is a checkout of karoly-hars/GAN_image_colorizing (the study's own code; it is
not part of colorcli). Its bare training step (both networks, tensors already in memory, its
README's spectral-norm configuration, batch 32, fp32) is timed first; then colorcli's
``unet-sn`` end to end on CIFAR-10 (decoding, Lab conversion, both networks, optimiser steps,
metrics), and each architecture's training step at the paper's sizes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from colorcli.train_config import TrainConfig
from colorcli.trainer import Trainer

CIFAR = ["../shared/data/cifar10-train.tar.gz", "../shared/data/cifar10-test.tar.gz"]
CIFAR_TRAIN_IMAGES = 50_000


def reference_bare_step(repo: Path, steps: int, batch: int = 32) -> float:
    """Images/s of the reference's generator + spectral-norm discriminator update, fp32."""
    sys.path.insert(0, str(repo))
    from networks import Discriminator, Generator  # the reference's own modules

    gen, disc = Generator("batch"), Discriminator("spectral")
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce, l1 = torch.nn.BCELoss(), torch.nn.L1Loss()
    lab = torch.rand(batch, 3, 32, 32) * 2 - 1
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

    def step() -> None:
        opt_g.zero_grad()
        fake = torch.cat([lab[:, :1], gen(lab[:, :1])], 1)
        (0.015 * bce(disc(fake), ones) + 0.985 * l1(fake[:, 1:], lab[:, 1:])).backward()
        opt_g.step()
        opt_d.zero_grad()
        (bce(disc(lab), ones) + bce(disc(fake.detach()), zeros)).backward()
        opt_d.step()

    return batch / _time(step, steps)


def _time(step, steps: int, warmup: int = 3) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _scratch_data(root: Path) -> Path:
    """One random image in train/ and in val/: the step benchmark needs a data set, not its content."""
    import numpy as np
    from PIL import Image

    for split in ("train", "val"):
        (root / split).mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / split / "noise.png")
    return root


def colorcli_step(arch: str, size: int, batch: int, steps: int, **overrides) -> float:
    """Images/s of one colorcli training step on a uint8 batch in memory (Lab conversion included)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            arch=arch,
            data=[str(_scratch_data(Path(tmp)))],
            image_size=size,
            batch_size=batch,
            workers=0,
            **overrides,
        )
        trainer = Trainer(cfg, log=lambda m: None)
    trainer.gen.train()
    trainer.disc.train()
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    return batch / _time(lambda: trainer._batch(images, True), steps)


def colorcli_end_to_end(images: int, workers: int, **overrides) -> float:
    """Images/s of unet-sn training on CIFAR-10 from the archives: the whole loop, data included."""
    cfg = TrainConfig(
        arch="unet-sn",
        data=CIFAR,
        image_size=32,
        batch_size=32,
        workers=workers,
        epoch_size=images,
        val_limit=1,
        crop_scale=1.0,
        **overrides,
    )
    trainer = Trainer(cfg, log=lambda m: None)
    # a few steps first, untimed: the first calls create oneDNN's kernels, once per run
    trainer.cfg.epoch_size = 4 * cfg.batch_size
    trainer._run_epoch(True, _NoProgress())
    trainer.cfg.epoch_size = images
    start = time.perf_counter()
    trainer._run_epoch(True, _NoProgress())
    return images / (time.perf_counter() - start)


class _NoProgress:
    def start(self, *a: object) -> None: ...
    def advance(self, *a: object) -> None: ...
    def finish(self, *a: object) -> None: ...


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reference", type=Path, help="checkout of karoly-hars/GAN_image_colorizing")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--images", type=int, default=3200, help="images for the end-to-end measurement")
    # CIFAR's 32×32 WebPs decode in about 0.15 ms each (2 % of a step) in the training process
    # itself; a worker process would take CPU from the two compute threads instead
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    ref = None
    if args.reference:
        ref = reference_bare_step(args.reference, args.steps)
        print(
            f"reference bare step (unet + spectral-norm D, batch 32, fp32): {ref:7.1f} img/s, "
            f"one CIFAR-10 epoch >= {CIFAR_TRAIN_IMAGES / ref / 60:5.1f} min"
        )

    # the paper recipe, then with the 1×1 discriminator's loss estimated on a quarter of the pixels
    for what, pixels in (("", 1.0), (", D on 1/4 of pixels", 0.25)):
        e2e = colorcli_end_to_end(args.images, args.workers, disc_pixels=pixels)
        line = (
            f"colorcli unet-sn end to end (CIFAR-10 32 px, batch 32, auto precision{what}): "
            f"{e2e:7.1f} img/s, one epoch {CIFAR_TRAIN_IMAGES / e2e / 60:5.1f} min"
        )
        print(line + (f", {e2e / ref:4.2f}x the reference (target 3x; stretch 200 img/s)" if ref else ""))

    for arch, size, batch in (("unet-sn", 32, 32), ("unet-bn", 32, 32), ("resnet-sn", 256, 4)):
        for precision in ("fp32", "auto"):
            rate = colorcli_step(
                arch, size, batch, max(3, args.steps // (4 if size > 64 else 1)), precision=precision
            )
            epoch = f", CIFAR epoch {CIFAR_TRAIN_IMAGES / rate / 60:5.1f} min" if size == 32 else ""
            name = f"colorcli {arch:9s} step {size:3d} px batch {batch:2d} {precision:4s}"
            print(f"{name}: {rate:7.1f} img/s{epoch}")


if __name__ == "__main__":
    main()
