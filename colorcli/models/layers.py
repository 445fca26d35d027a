"""Small building blocks shared by the generators."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad H and W up to a multiple, so any image size passes the strided layers.

    Returns the padded tensor and the original height and width to crop back to.
    """
    h, w = x.shape[-2], x.shape[-1]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # reflect needs the pad smaller than the side; replicate covers tiny inputs
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def xavier_init(module: nn.Module) -> None:
    """Uniform Xavier for every (transposed) convolution, as the paper initialises them."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
