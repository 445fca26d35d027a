"""U-Net generator of the paper's §1.2 and §1.3, for any input size."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from colorcli.models import imagenet_encoder as encoders
from colorcli.models.colour_classes import ColourClasses
from colorcli.models.layers import Down, Dropout, ResidualBlock, Up, pad_to_multiple, xavier_init


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        Down(cin, cout),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


def _up(cin: int, cout: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [
        Up(cin, cout),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]
    if dropout > 0:
        layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


class UNetGenerator(nn.Module):
    """L (N, 1, H, W) -> a,b (N, 2, H, W) in [-1, 1].

    A 3×3 stem at full resolution, ``depth`` stride-2 4×4 convolutions down (BN, LeakyReLU),
    as many 4×4 transposed convolutions up (BN, ReLU) with skip connections, and a 1×1
    convolution with tanh. Widths double from ``width`` up to ``width * max_mult``. The
    reference code resized CIFAR to 35×35 to fit its unpadded stem; instead the input is
    reflect-padded to a multiple of 2**depth and the output cropped back.

    ``colour_bins`` > 0 replaces the tanh head with a distribution over that many a,b cells per
    axis at 1/``colour_stride`` resolution, read off at ``temperature`` (colour_classes.py; not
    in the paper).

    ``blocks`` residual blocks (3×3, the deepest width) at the bottleneck add capacity where the
    network sees the whole scene (not in the paper). Each starts as the identity, so blocks added
    to a trained U-Net (``train --init CKPT --blocks N``) begin from what it computed.

    ``imagenet_encoder`` adds a frozen ImageNet-trained encoder's features to the bottleneck
    through two 1×1 convolutions, the last started at zero, so it too can be added to a trained
    U-Net (``train --init CKPT --imagenet-encoder``) without changing what it computes at first.
    """

    def __init__(
        self,
        width: int = 64,
        depth: int = 4,
        max_mult: int = 8,
        dropout: float = 0.5,
        colour_bins: int = 0,
        temperature: float = 0.38,
        colour_stride: int = 4,
        blocks: int = 0,
        imagenet_encoder: bool = False,
    ) -> None:
        super().__init__()
        self.multiple = math.lcm(2**depth, colour_stride if colour_bins else 1)
        self.context_stride = 2**depth
        widths = [width * min(2**i, max_mult) for i in range(depth + 1)]
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.downs = nn.ModuleList(_down(widths[i], widths[i + 1]) for i in range(depth))
        # replicate, not reflect: a small photo's bottleneck can be a single pixel
        self.blocks = nn.Sequential(*(ResidualBlock(widths[-1], nn.ReplicationPad2d) for _ in range(blocks)))
        # the deepest up-steps get dropout, as pix2pix and the reference code do
        self.ups = nn.ModuleList(
            _up(
                widths[i + 1] * (1 if i == depth - 1 else 2),
                widths[i],
                dropout if i >= depth - 2 else 0.0,
            )
            for i in reversed(range(depth))
        )
        self.head: nn.Module = (
            ColourClasses(widths[0] * 2, colour_bins, temperature, colour_stride)
            if colour_bins
            else nn.Sequential(nn.Conv2d(widths[0] * 2, 2, 1), nn.Tanh())
        )
        self.context_channels = widths[-1]
        self.encoder = encoders.ImageNetEncoder() if imagenet_encoder else None
        self.fuse = (
            nn.Sequential(
                nn.Conv2d(encoders.CHANNELS, widths[-1], 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(widths[-1], widths[-1], 1),
            )
            if imagenet_encoder
            else None
        )
        # the encoder's grid is the bottleneck's only at depth 5; elsewhere it is resampled
        self.encoder_scale = encoders.STRIDE / 2**depth
        xavier_init(self)
        # start from "no colour" (a,b = 0, or a uniform distribution) rather than random colour:
        # training then begins at the grey baseline's L1 instead of far above it
        nn.init.zeros_(self.classes.conv.weight if self.classes else self.head[0].weight)
        for block in self.blocks:
            nn.init.zeros_(block.body[-1].weight)
        if self.fuse is not None:
            nn.init.zeros_(self.fuse[-1].weight)

    @property
    def classes(self) -> ColourClasses | None:
        return self.head if isinstance(self.head, ColourClasses) else None

    def forward(
        self, x: torch.Tensor, logits: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """a,b; with ``logits`` (colour-class heads only) also the per-cell logits for the loss
        and the bottleneck features, (N, context_channels, H, W) / context_stride: what the
        network makes of the whole scene, which a context discriminator sees beside each pixel."""
        x, h, w = pad_to_multiple(x, self.multiple)
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = bottleneck = self.blocks(skips.pop())
        if self.encoder is not None and self.fuse is not None:
            seen = self.fuse(self.encoder(x))
            if self.encoder_scale != 1:
                seen = F.interpolate(seen, size=y.shape[-2:], mode="bilinear", align_corners=False)
            y = bottleneck = y + seen
        for up in self.ups:
            y = torch.cat([up(y), skips.pop()], dim=1)
        if not logits:
            return self.head(y)[..., :h, :w]
        if self.classes is None:
            raise ValueError("logits=True needs a generator built with colour_bins")
        scores = self.classes.logits(y)
        return self.classes.annealed_mean(scores)[..., :h, :w], scores, bottleneck
