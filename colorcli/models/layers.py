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
    # reflect as far as the side allows, replicate the rest: no branch on the size, so an
    # exported graph pads tiny inputs exactly as PyTorch does
    rh, rw = min(ph, h - 1), min(pw, w - 1)
    x = F.pad(x, (0, rw, 0, rh), mode="reflect")
    x = F.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate")
    return x, h, w


def xavier_init(module: nn.Module) -> None:
    """Uniform Xavier for every (transposed) convolution, as the paper initialises them."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
