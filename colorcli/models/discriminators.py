"""Discriminators over the concatenated (L, a, b) image.

Both return *pre-tanh* score maps ``z``. The paper's last layer is a tanh, whose output
t = tanh(z) lies in (-1, 1); reading it as a probability p = (1 + t) / 2 gives exactly
p = sigmoid(2z). The trainer therefore applies binary cross-entropy on the logits 2z
(numerically stable, never log(0)), which is BCE on the tanh output mapped to [0, 1]:
the tanh is kept, and real/fake is decided by t > 0.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel, stride, padding)
    # initialised before spectral norm wraps the weight, so the init reaches the real parameter
    nn.init.xavier_uniform_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _normed(conv: nn.Conv2d, norm: str) -> list[nn.Module]:
    if norm == "spectral":
        return [spectral_norm(conv)]
    if norm == "batch":
        return [conv, nn.BatchNorm2d(conv.out_channels)]
    raise ValueError(f"unknown discriminator norm {norm!r}; use 'spectral' or 'batch'")


class PatchDiscriminator(nn.Module):
    """N×N PatchGAN (pix2pix ``NLayerDiscriminator``): 4×4 convs, stride 2 then 1, widths
    ``width`` -> ``8 * width``; with 3 layers each score sees a 70×70 patch."""

    def __init__(self, width: int = 64, layers: int = 3, norm: str = "spectral") -> None:
        super().__init__()
        mods: list[nn.Module] = [_conv(3, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        cin = width
        for i in range(1, layers + 1):
            cout = width * min(2**i, 8)
            stride = 2 if i < layers else 1
            mods += [*_normed(_conv(cin, cout, 4, stride, 1), norm), nn.LeakyReLU(0.2, True)]
            cin = cout
        mods.append(_conv(cin, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, lab: torch.Tensor) -> torch.Tensor:
        return self.net(lab)


class PixelDiscriminator(nn.Module):
    """1×1 (pixel-wise) PatchGAN: five 1×1 convolutions; the first without normalisation,
    the middle three with spectral or batch norm, the last without. Widths go
    ``width, 2w, 4w, 4w``. Every layer runs at every pixel, so the default width is 16: at 64 the
    discriminator cost more than the 16.6 M-parameter generator (measured in training/bench_train.py).

    ``context`` > 0 adds that many input channels after L, a, b: the generator's bottleneck
    features at the pixel's place (the trainer's ``disc_context``; not in the paper). Seeing L
    alone, the discriminator can only judge how saturated a colour is for its lightness, which
    a colour gain does as well; with the scene beside it, it can judge the colour itself."""

    pixelwise = True  # each output depends on one pixel: the loss may sample pixels

    def __init__(self, width: int = 16, norm: str = "spectral", context: int = 0) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width, 4 * width]
        first = _conv(3 + context, widths[0], 1)
        if context:
            # drawn as for L, a, b alone, context at zero: 256 context inputs would otherwise
            # shrink the colour's initial weights 10× (Xavier) and bury it, and the
            # discriminator stalled at chance. So it starts as the plain pixel discriminator
            # and takes up the scene as far as that helps
            nn.init.xavier_uniform_(first.weight[:, :3])
            nn.init.zeros_(first.weight[:, 3:])
        mods: list[nn.Module] = [first, nn.LeakyReLU(0.2, True)]
        for cin, cout in itertools.pairwise(widths):
            mods += [*_normed(_conv(cin, cout, 1), norm), nn.LeakyReLU(0.2, True)]
        mods.append(_conv(widths[-1], 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, lab: torch.Tensor) -> torch.Tensor:
        return self.net(lab)
