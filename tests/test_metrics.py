"""colorcli.metrics against values worked out by hand on tiny images, and SSIM against scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import data
from skimage.metrics import structural_similarity

from colorcli import metrics


def test_psnr_of_one_wrong_pixel_by_hand() -> None:
    reference = np.zeros((2, 2))
    test = reference.copy()
    test[0, 0] = 0.1
    # MSE = 0.1² / 4 = 0.0025 -> 10·log10(1 / 0.0025) = 10·log10(400)
    assert metrics.psnr(reference, test) == pytest.approx(10 * math.log10(400))


def test_psnr_in_8_bit_units() -> None:
    reference = np.zeros((2, 2, 3), np.uint8)
    test = reference.copy()
    test[1, 1, 2] = 255  # uint8 inputs must not wrap around when subtracted
    # MSE = 255² / 12 -> 10·log10(12)
    assert metrics.psnr(reference, test, data_range=255) == pytest.approx(10 * math.log10(12))
    assert metrics.psnr(test, reference, data_range=255) == pytest.approx(10 * math.log10(12))


def test_psnr_of_identical_images_is_infinite() -> None:
    image = np.full((2, 2, 3), 0.5)
    assert metrics.psnr(image, image) == math.inf


def _ab_with_errors() -> tuple[np.ndarray, np.ndarray]:
    """Reference a,b all zero; the test's a,b errors are 0, 30, 75 (45-60-75) and 200 (120-160-200)."""
    reference = np.zeros((2, 2, 2))
    test = np.array([[[0.0, 0.0], [30.0, 0.0]], [[45.0, 60.0], [-120.0, 160.0]]])
    return reference, test


def test_ab_error_by_hand() -> None:
    reference, test = _ab_with_errors()
    np.testing.assert_allclose(metrics.ab_errors(reference, test), [[0, 30], [75, 200]])
    assert metrics.ab_error(reference, test) == pytest.approx((0 + 30 + 75 + 200) / 4)


def test_ab_auc_by_hand() -> None:
    reference, test = _ab_with_errors()
    # each pixel counts for the share of [0, 150] at or above its error: 1, 0.8, 0.5 and 0
    assert metrics.ab_auc(reference, test) == pytest.approx((1 + 0.8 + 0.5 + 0) / 4)


def test_ab_auc_is_the_area_under_the_accuracy_curve() -> None:
    """The definition itself: fraction of pixels within t, integrated numerically over [0, 150]."""
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 40, (16, 16, 2))
    test = rng.normal(0, 40, (16, 16, 2))
    errors = np.sqrt(((reference - test) ** 2).sum(-1)).ravel()
    thresholds = np.linspace(0, 150, 30001)
    within = (errors[None, :] <= thresholds[:, None]).mean(axis=1)
    area = np.sum((within[1:] + within[:-1]) / 2 * np.diff(thresholds)) / 150
    assert metrics.ab_auc(reference, test) == pytest.approx(area, abs=1e-4)
    assert metrics.ab_auc(reference, reference) == 1.0


def test_colourfulness_by_hand() -> None:
    # two pure reds and two blacks: rg = 255, 255, 0, 0 and yb = 127.5, 127.5, 0, 0, so
    # σ_rg = 127.5 = μ_rg and σ_yb = 63.75 = μ_yb: M = 1.3 · sqrt(127.5² + 63.75²)
    rgb = np.array([[[255, 0, 0], [255, 0, 0]], [[0, 0, 0], [0, 0, 0]]], np.uint8)
    expected = 1.3 * math.hypot(127.5, 63.75)
    assert metrics.colourfulness(rgb, data_range=255) == pytest.approx(expected)
    assert metrics.colourfulness(rgb / 255.0) == pytest.approx(expected)  # always in 8-bit units


def test_colourfulness_of_a_uniform_colour_is_its_mean_term_only() -> None:
    # one colour: no spread; rg = 100 - 50 = 50, yb = 75 - 20 = 55 -> M = 0.3 · sqrt(50² + 55²)
    rgb = np.broadcast_to(np.array([100, 50, 20], np.uint8), (2, 2, 3))
    assert metrics.colourfulness(rgb, data_range=255) == pytest.approx(0.3 * math.hypot(50, 55))


def test_colourfulness_of_grey_is_zero() -> None:
    grey = np.repeat(np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 16, 3, axis=-1)
    assert metrics.colourfulness(grey, data_range=255) == 0.0


def test_hue_family_of_named_colours() -> None:
    # a,b of sRGB red (40°), crimson (25°), a mid skin tone (64°), yellow (96°), green (136°),
    # sky blue (269°), magenta (339°), and a pinkish red just below 0° (-3°)
    ab = np.array(
        [
            [80.1, 67.2],
            [70.9, 33.6],
            [13.8, 28.4],
            [-9.4, 89.8],
            [-60.8, 58.7],
            [-0.5, -35.3],
            [84.4, -31.7],
            [50.0, -2.6],
        ]
    )
    names = [metrics.HUE_FAMILIES[i][0] for i in metrics.hue_family(ab)]
    assert names == [
        "red",
        "red",
        "orange/skin",
        "yellow",
        "green",
        "cyan/blue",
        "violet/pink",
        "red",
    ]


def test_hue_tally_counts_a_test_pixel_as_grey_only_under_the_grey_chroma() -> None:
    reference = np.array([[60.0, 50.0], [60.0, 50.0]])  # two red pixels
    test = np.array([[3.0, 4.0], [8.0, 6.0]])  # chroma 5 and exactly 10, the second red (37°)
    counts, _ = metrics.hue_tally(reference, test)
    assert (counts[0, metrics.HUE_GREY], counts[0, 0]) == (1, 1)


def test_hue_tally_by_hand() -> None:
    # four reference pixels: red (chroma 78.1), red, green (70.7), and one too grey to score
    # (chroma 5); the test colours them red (78.1), grey (chroma 5), yellow (60.2) and green
    reference = np.array([[[60.0, 50.0], [60.0, 50.0]], [[-50.0, 50.0], [3.0, 4.0]]])
    test = np.array([[[60.0, 50.0], [3.0, 4.0]], [[-5.0, 60.0], [-50.0, 50.0]]])
    counts, chroma = metrics.hue_tally(reference, test)
    expected = np.zeros((len(metrics.HUE_FAMILIES), metrics.HUE_GREY + 1), np.int64)
    red, yellow, green = 0, 2, 3
    expected[red, red] = 1
    expected[red, metrics.HUE_GREY] = 1
    expected[green, yellow] = 1
    np.testing.assert_array_equal(counts, expected)
    expected_chroma = np.zeros((len(metrics.HUE_FAMILIES), 2))
    expected_chroma[red] = [2 * math.hypot(60, 50), math.hypot(60, 50) + 5]
    expected_chroma[green] = [math.hypot(50, 50), math.hypot(5, 60)]
    np.testing.assert_allclose(chroma, expected_chroma)


def test_ssim_of_two_flat_images_by_hand() -> None:
    # no variance anywhere: SSIM = (2·μx·μy + C1) / (μx² + μy² + C1), with C1 = (0.01)²
    x = np.full((16, 16), 0.2)
    y = np.full((16, 16), 0.6)
    c1 = 0.01**2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert metrics.ssim(x, y) == pytest.approx(expected)
    assert metrics.ssim(np.stack([x] * 3, -1), np.stack([y] * 3, -1)) == pytest.approx(expected)


@pytest.mark.parametrize("shape", [(2, 2), (7, 9, 3), (40, 33, 3)])
def test_ssim_of_identical_images_is_one(shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(0).random(shape)
    assert metrics.ssim(image, image) == pytest.approx(1.0)


def _skimage_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    return structural_similarity(
        x,
        y,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=-1 if x.ndim == 3 else None,
    )


@pytest.mark.parametrize("noise", [0.02, 0.2])
def test_ssim_matches_scikit_image_on_a_photo(noise: float) -> None:
    photo = data.astronaut()[100:220, 150:250] / 255.0  # not square, to catch swapped axes
    noisy = np.clip(photo + np.random.default_rng(2).normal(0, noise, photo.shape), 0, 1)
    assert metrics.ssim(photo, noisy) == pytest.approx(_skimage_ssim(photo, noisy, 1.0), abs=1e-9)
    grey, noisy_grey = photo.mean(-1), noisy.mean(-1)
    assert metrics.ssim(grey, noisy_grey) == pytest.approx(_skimage_ssim(grey, noisy_grey, 1.0), abs=1e-9)


def test_ssim_matches_scikit_image_in_8_bit() -> None:
    photo = data.coffee()[:64, :80]
    shifted = np.clip(photo.astype(int) + np.array([30, -20, 0]), 0, 255).astype(np.uint8)
    expected = _skimage_ssim(photo, shifted, 255)
    assert metrics.ssim(photo, shifted, data_range=255) == pytest.approx(expected, abs=1e-9)
    assert expected < 0.99  # the shift must actually cost something


def test_ssim_rejects_images_of_different_shapes() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.ssim(np.zeros((12, 12)), np.zeros((12, 13)))
