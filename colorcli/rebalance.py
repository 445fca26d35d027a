"""Colour rebalancing: per-pixel L1 weights that favour rare colours.

An L1 (or L2) loss on a,b pulls every ambiguous object towards the common, desaturated colours,
so red cars and blue doors come out brown or grey. Zhang et al. (2016, "Colorful Image
Colorization", §2.2) weight each pixel by the inverse of how often its true colour occurs,
mixed with a uniform prior: w ∝ 1 / ((1 − λ)·p(ab) + λ/Q), p smoothed. We normalise so the
mean weight over the training pixels is 1, which keeps the loss on plain L1's scale. Here
``strength`` is their 1 − λ: 0 switches weighting off, 0.5 is their setting.

Zhang et al.'s weights favour rare a,b cells, which are the saturated ones of every hue, so they
make colours livelier without changing which hue an object gets. ``hue_strength`` adds a
second factor: the inverse frequency of the pixel's hue family (metrics.HUE_FAMILIES), mixed
with a uniform prior in the same way, for data sets whose hues are less balanced than the photos
to be coloured. (In the default model's photos orange and skin outnumber red almost two to one,
but so they do in the photos it colours, and this factor moved pixels from orange to yellow and
green rather than to red: weights/README.md, "Hues".)

The same prior can also correct a trained colour-class model after the fact (logit adjustment,
Menon et al. 2021, "Long-tail learning via logit adjustment"): a classifier trained on skewed
classes carries the skew in its logits, and subtracting power · log prior moves its answers
towards the rare classes. Photos from outside the training data are more colourful than its
earthy average, so a little of it gives red things red more often instead of brown.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from colorcli import color, metrics

BINS = 22  # 10 a,b units per bin, Zhang et al.'s grid
SMOOTHING = 0.5  # Gaussian sigma in bins (their 5 a,b units)


class ColourRarity:
    """Maps normalised a,b maps (N, 2, H, W) to per-pixel weights (N, 1, H, W)."""

    def __init__(self, histogram: torch.Tensor, strength: float, hue_strength: float = 0.0) -> None:
        if not (0 <= strength <= 1 and 0 <= hue_strength <= 1):
            raise ValueError("rebalancing strengths must be in [0, 1]")
        counts = histogram.double()
        prior = _smooth(counts)
        prior = prior / prior.sum()
        seen = int((counts > 0).sum())
        weights = 1.0 / (strength * prior + (1 - strength) / max(seen, 1))
        # colours the sample never showed get the rarest seen colour's weight, not infinity
        weights = weights.clamp(max=float(weights[counts > 0].max()))
        if hue_strength:
            weights = weights * _hue_weights(counts, hue_strength)
        weights = weights / (counts / counts.sum() * weights).sum()
        self.table = weights.flatten().float()

    @classmethod
    def from_batches(
        cls, ab_batches: Iterable[torch.Tensor], strength: float, hue_strength: float = 0.0
    ) -> ColourRarity:
        """Builds the colour prior from normalised a,b maps of training images."""
        histogram = torch.zeros(BINS * BINS, dtype=torch.float64)
        for ab in ab_batches:
            histogram += torch.bincount(_bin_index(ab).flatten(), minlength=BINS * BINS).double()
        return cls(histogram.view(BINS, BINS), strength, hue_strength)

    def logit_offsets(self, power: float) -> torch.Tensor:
        """(bins²,) amounts to add to a colour-class head's logits (its output bias) so that its
        distribution is divided by the colour prior to ``power``. Exact for a rarity of strength
        1 (weights ∝ 1 / prior); a constant shift of all logits does not change the softmax."""
        return power * self.table.log()

    def weights(self, ab: torch.Tensor) -> torch.Tensor:
        table = self.table.to(ab.device)
        return table[_bin_index(ab)].unsqueeze(1)


def _hue_weights(counts: torch.Tensor, strength: float) -> torch.Tensor:
    """(BINS, BINS) factor per a,b cell: 1 for cells nearer grey than metrics.COLOURED_CHROMA,
    else the inverse frequency of the cell's hue family among the coloured cells' pixels."""
    centres = color.denormalise_ab((np.arange(BINS) + 0.5) * (2 / BINS) - 1)
    ab = np.stack(np.meshgrid(centres, centres, indexing="ij"), axis=-1)
    coloured = np.hypot(ab[..., 0], ab[..., 1]) >= metrics.COLOURED_CHROMA
    family = torch.from_numpy(np.where(coloured, metrics.hue_family(ab), -1))
    families = len(metrics.HUE_FAMILIES)
    share = torch.stack([counts[family == f].sum() for f in range(families)])
    if not share.sum():
        return torch.ones_like(counts)
    share = share / share.sum()
    per_family = 1.0 / (strength * share + (1 - strength) / families)
    # as for a,b cells: a family the sample never showed gets the rarest seen family's weight
    per_family = per_family.clamp(max=float(per_family[share > 0].max()))
    per_family = per_family / (share * per_family).sum()  # coloured pixels keep their total weight
    return torch.where(family >= 0, per_family[family.clamp(min=0)], torch.ones_like(counts))


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
