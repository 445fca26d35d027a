"""Colour rebalancing weights (Zhang et al. 2016): rare colours weigh more, the mean stays 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colorcli import color
from colorcli.rebalance import ColourRarity, _bin_index


def ab_map(rgb_pixels: list[tuple[int, int, int]], counts: list[int]) -> torch.Tensor:
    """A (1, 2, 1, W) normalised a,b map holding each colour ``count`` times."""
    runs = [np.tile(np.array(c, np.float32), (n, 1)) for c, n in zip(rgb_pixels, counts, strict=True)]
    pixels = np.concatenate(runs)
    lab = color.rgb_to_lab(pixels[None] / 255)
    return torch.from_numpy(color.normalise_ab(lab[..., 1:])).permute(2, 0, 1)[None]


GREY, RED, BLUE = (120, 118, 115), (200, 30, 30), (60, 90, 220)


def test_rare_colours_weigh_more_and_the_mean_weight_is_one():
    ab = ab_map([GREY, RED, BLUE], [900, 20, 80])
    rarity = ColourRarity.from_batches([ab[..., :500], ab[..., 500:]], strength=0.5)
    weights = rarity.weights(ab)[0, 0, 0]
    grey, red, blue = weights[0], weights[900], weights[950]
    assert red > blue > grey
    assert weights.mean().item() == pytest.approx(1.0, abs=1e-5)


def test_strength_zero_is_plain_l1():
    ab = ab_map([GREY, RED], [90, 10])
    weights = ColourRarity.from_batches([ab], strength=0.0).weights(ab)
    torch.testing.assert_close(weights, torch.ones_like(weights))


def test_strength_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="strength"):
        ColourRarity(torch.ones(22, 22), strength=1.5)


def test_colours_missing_from_the_sample_get_a_finite_weight():
    rarity = ColourRarity.from_batches([ab_map([GREY], [100])], strength=1.0)
    weights = rarity.weights(ab_map([GREY, RED, BLUE], [1, 1, 1]))
    assert torch.isfinite(weights).all()


def test_logit_offsets_favour_rare_colours_by_the_prior_ratio_to_the_power():
    rarity = ColourRarity.from_batches([ab_map([GREY, RED], [900, 100])], strength=1.0)
    grey, red = (int(i) for i in _bin_index(ab_map([GREY, RED], [1, 1])).flatten())
    prior_ratio = (rarity.table[red] / rarity.table[grey]).item()  # grey's prior over red's
    assert prior_ratio > 5  # smoothing spreads the counts, so not exactly 9
    for power in (0.0, 0.5, 1.0):
        # a head with no preference between the two, as if its logits had no prior in them
        probs = torch.softmax(rarity.logit_offsets(power), 0)
        assert (probs[red] / probs[grey]).item() == pytest.approx(prior_ratio**power, rel=1e-4)


def test_hue_rebalancing_weighs_each_hue_family_by_its_inverse_share():
    orange = (220, 130, 60)
    ab = ab_map([GREY, RED, orange], [600, 100, 300])
    # Zhang's factor off: red a quarter and orange three quarters of the coloured pixels
    weights = ColourRarity.from_batches([ab], strength=0.0, hue_strength=1.0).weights(ab)[0, 0, 0]
    grey, red, orange_weight = weights[0].item(), weights[600].item(), weights[700].item()
    assert red / orange_weight == pytest.approx(3.0, rel=1e-5)
    assert grey == pytest.approx(1.0, rel=1e-5)  # near-grey pixels have no hue to weigh
    assert weights.mean().item() == pytest.approx(1.0, abs=1e-5)
    half = ColourRarity.from_batches([ab], strength=0.0, hue_strength=0.5).weights(ab)[0, 0, 0]
    assert 1 < half[600].item() / half[700].item() < 3
