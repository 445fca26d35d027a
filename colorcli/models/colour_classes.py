"""A generator head that predicts a distribution over a,b colours instead of one a,b value.

A regression loss (L1 or L2) on a,b answers an ambiguous object, a car that may be red, blue or
grey, with the median or mean of its possible colours: brown or grey. Zhang et al. (2016,
"Colorful Image Colorization", §2.1-2.3) predict a probability for each cell of a grid over the
a,b plane, train with cross-entropy, and read a colour off the distribution with the *annealed
mean*: the mean of the distribution sharpened by a temperature T. T = 1 gives the mean (the
L2 answer), T → 0 the mode (vivid, less accurate); they use 0.38.

The grid here is ``bins`` × ``bins`` square cells over the normalised a,b square [-1, 1]²
(``bins`` = 22 is Zhang et al.'s 10 a,b units per cell). As in their network, the distribution
is predicted at a lower resolution (``stride``, default 4) and its a,b upsampled bilinearly:
a full-resolution softmax over 484 cells costs several times the whole U-Net on a CPU, and
chroma carries little fine detail (JPEG keeps it at half resolution). The annealed mean is part
of the forward pass, so an exported model still maps L to a,b and inference is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# the generator arguments that shape this head; ``train --init`` may change them
HEAD_ARGS = ("colour_bins", "temperature", "colour_stride")


class ColourClasses(nn.Module):
    """Features (N, C, H, W) -> logits over bins² colours at (H, W) / stride, and their
    annealed mean a,b at (H, W)."""

    def __init__(self, channels: int, bins: int, temperature: float, stride: int = 4) -> None:
        super().__init__()
        if bins < 2:
            raise ValueError("colour_bins must be at least 2")
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        if stride < 1:
            raise ValueError("colour_stride must be at least 1")
        self.bins = bins
        self.temperature = temperature
        self.stride = stride
        self.conv = nn.Conv2d(channels, bins * bins, 1)
        centres = (torch.arange(bins, dtype=torch.float32) + 0.5) * (2.0 / bins) - 1.0
        a, b = torch.meshgrid(centres, centres, indexing="ij")
        # the annealed mean as a fixed 1×1 convolution: ONNX runtimes fuse it with the softmax
        centres = torch.stack([a.flatten(), b.flatten()]).view(2, -1, 1, 1)
        self.register_buffer("centres", centres, persistent=False)

    @torch.no_grad()
    def start_from_regression(self, weight: torch.Tensor, bias: torch.Tensor, spread: float = 0.15) -> None:
        """Starts the distribution as a Gaussian (sd ``spread``, normalised a,b) around the a,b a
        regression head (1×1 convolution ``weight`` (2, C, 1, 1), ``bias`` (2,), then tanh) gives.

        log N(c; μ, σ²) = c·μ/σ² − |c|²/2σ² + const, and μ = W f + b is linear in the features
        f, so the Gaussian is exactly a 1×1 convolution (tanh dropped: it is nearly linear over
        the colours photos have). Its annealed mean is μ, so a warm start begins at the
        regression model's colours instead of at grey, which a fresh head needs thousands of
        steps to leave.
        """
        centres = self.centres.view(2, -1).T  # (bins², 2)
        precision = 1.0 / spread**2
        self.conv.weight.copy_((centres @ weight.view(2, -1) * precision).view_as(self.conv.weight))
        self.conv.bias.copy_((centres @ bias - 0.5 * centres.pow(2).sum(1)) * precision)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) features (H, W multiples of the stride) -> (N, bins², H/s, W/s)."""
        if self.stride > 1:
            features = F.avg_pool2d(features, self.stride)
        return self.conv(features)

    def annealed_mean(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, bins², H/s, W/s) logits -> (N, 2, H, W) normalised a,b."""
        probs = torch.softmax(logits.float() / self.temperature, dim=1)
        ab = F.conv2d(probs, self.centres)
        if self.stride > 1:
            ab = F.interpolate(ab, scale_factor=self.stride, mode="bilinear", align_corners=False)
        return ab

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.annealed_mean(self.logits(features))

    def cross_entropy(self, logits: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Per-pixel cross-entropy (N, 1, H, W) of full-resolution normalised ``ab`` under the
        distribution of the low-resolution cell each pixel falls in.

        Each true colour is spread over its four nearest cell centres with bilinear weights (a
        cheaper cousin of Zhang et al.'s Gaussian over five neighbours), so the targets vary
        smoothly with the colour instead of jumping at cell edges. Scoring every pixel, rather
        than a downsampled a,b, makes a cell's target the histogram of its pixels' colours.
        """
        n, _, h, w = ab.shape
        rows, cols = logits.shape[-2:]
        log_p = torch.log_softmax(logits.float(), dim=1).flatten(1)
        ys = torch.arange(h, device=ab.device) // self.stride
        xs = torch.arange(w, device=ab.device) // self.stride
        where = (ys[:, None] * cols + xs[None, :]).flatten()  # each pixel's low-resolution cell
        pos = ((ab.float() + 1.0) * (self.bins / 2.0) - 0.5).clamp(0, self.bins - 1).flatten(2)
        low = pos.floor().clamp(max=self.bins - 2)
        frac = pos - low
        low = low.long()
        loss = torch.zeros(n, h * w, device=ab.device)
        for da in (0, 1):
            wa = frac[:, 0] if da else 1 - frac[:, 0]
            for db in (0, 1):
                wb = frac[:, 1] if db else 1 - frac[:, 1]
                colour = (low[:, 0] + da) * self.bins + low[:, 1] + db
                loss = loss - wa * wb * log_p.gather(1, colour * (rows * cols) + where)
        return loss.view(n, 1, h, w)
