"""Carry a checkpoint's generator over to another architecture that shares it.

    python training/generator_only.py runs/default/checkpoints/last.pt unet-patch runs/default-unet-patch.pt

``colorcli train --init`` takes the architecture from the checkpoint and the discriminator
when one is present. The checkpoint written here holds the generator alone, filed under
``ARCH`` (which must build the same generator): ``--init`` from it keeps the trained generator
and starts ``ARCH``'s discriminator afresh. This is how the default model's colour stage
swapped unet-sn's pixel discriminator for an N×N PatchGAN.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import release_default

from colorcli import checkpoint
from colorcli.models import registry

# what the release keeps of a run, but no discriminator: the new architecture's starts afresh
KEEP = (*(k for k in release_default.KEEP if k != "discriminator_args"), "generator")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="checkpoint file or run folder")
    parser.add_argument("arch", choices=list(registry.ARCHITECTURES))
    parser.add_argument("output", type=Path)
    args = parser.parse_args()

    state = checkpoint.load(checkpoint.resolve(args.source))
    if registry.get(state["arch"]).generator != registry.get(args.arch).generator:
        parser.error(f"{args.arch} does not share {state['arch']}'s generator; nothing to carry over")
    checkpoint.save({**{k: state[k] for k in KEEP if k in state}, "arch": args.arch}, args.output)
    print(
        f"wrote {args.output}: {state['arch']} generator (epoch {state['epoch']}) as {args.arch}, "
        "no discriminator"
    )


if __name__ == "__main__":
    main()
