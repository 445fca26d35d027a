"""Colour rebalancing: per-pixel L1 weights that favour rare colours.

An L1 (or L2) loss on a,b pulls every ambiguous object towards the common, desaturated colours,
so red cars and blue doors come out brown or grey. Zhang et al. (2016, "Colorful Image
Colorization", §2.2) weight each pixel by the inverse of how often its true colour occurs,
mixed with a uniform prior: w ∝ 1 / ((1 − λ)·p(ab) + λ/Q), p smoothed. We normalise so the
mean weight over the training pixels is 1, which keeps the loss on plain L1's scale. Here
``strength`` is their 1 − λ: 0 switches weighting off, 0.5 is their setting.

The same prior can also correct a trained colour-class model after the fact (logit adjustment,
Menon et al. 2021, "Long-tail learning via logit adjustment"): a classifier trained on skewed
classes carries the skew in its logits, and subtracting power · log prior moves its answers
towards the rare classes. Photos from outside the training data are more colourful than its
earthy average, so a little of it gives red things red more often instead of brown.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

BINS = 22  # 10 a,b units per bin, Zhang et al.'s grid
SMOOTHING = 0.5  # Gaussian sigma in bins (their 5 a,b units)


class ColourRarity:
    """Maps normalised a,b maps (N, 2, H, W) to per-pixel weights (N, 1, H, W)."""

    def __init__(self, histogram: torch.Tensor, strength: float) -> None:
        if not 0 <= strength <= 1:
            raise ValueError("rebalancing strength must be in [0, 1]")
        counts = histogram.double()
        prior = _smooth(counts)
        prior = prior / prior.sum()
        seen = int((counts > 0).sum())
        weights = 1.0 / (strength * prior + (1 - strength) / max(seen, 1))
        # colours the sample never showed get the rarest seen colour's weight, not infinity
        weights = weights.clamp(max=float(weights[counts > 0].max()))
        weights = weights / (counts / counts.sum() * weights).sum()
        self.table = weights.flatten().float()

    @classmethod
    def from_batches(cls, ab_batches: Iterable[torch.Tensor], strength: float) -> ColourRarity:
        """Builds the colour prior from normalised a,b maps of training images."""
        histogram = torch.zeros(BINS * BINS, dtype=torch.float64)
        for ab in ab_batches:
            histogram += torch.bincount(_bin_index(ab).flatten(), minlength=BINS * BINS).double()
        return cls(histogram.view(BINS, BINS), strength)

    def logit_offsets(self, power: float) -> torch.Tensor:
        """(bins²,) amounts to add to a colour-class head's logits (its output bias) so that its
        distribution is divided by the colour prior to ``power``. Exact for a rarity of strength
        1 (weights ∝ 1 / prior); a constant shift of all logits does not change the softmax."""
        return power * self.table.log()

    def weights(self, ab: torch.Tensor) -> torch.Tensor:
        table = self.table.to(ab.device)
        return table[_bin_index(ab)].unsqueeze(1)


def _bin_index(ab: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W) normalised a,b → (N, H, W) flat bin index."""
    cells = ((ab.float() + 1) * (BINS / 2)).long().clamp_(0, BINS - 1)
    return cells[:, 0] * BINS + cells[:, 1]


def _smooth(histogram: torch.Tensor) -> torch.Tensor:
    radius = 2
    x = torch.arange(-radius, radius + 1, dtype=histogram.dtype)
    kernel = torch.exp(-0.5 * (x / SMOOTHING) ** 2)
    kernel = kernel / kernel.sum()
    image = histogram[None, None]
    image = F.conv2d(F.pad(image, (radius, radius, 0, 0)), kernel.view(1, 1, 1, -1))
    image = F.conv2d(F.pad(image, (0, 0, radius, radius)), kernel.view(1, 1, -1, 1))
    return image[0, 0]
