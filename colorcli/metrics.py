"""Image-quality metrics for colourisation, in numpy only (no torch, no scikit-image).

RGB images are channel-last float arrays scaled by ``data_range`` (1.0 for [0, 1], 255 for
8-bit values); a,b arrays are channel-last ``(..., 2)`` in Lab units. Every function scores
one image; averaging over a data set is the caller's business.
"""

from __future__ import annotations

import numpy as np

AB_AUC_MAX_THRESHOLD = 150.0  # Zhang et al. 2016 integrate the a,b accuracy curve over [0, 150]

# Wang et al. 2004's constants and Gaussian window (sigma 1.5); the window is cut at
# 3.5 sigma as scikit-image's gaussian_weights=True does, i.e. 11 pixels wide.
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5

# Hue families by CIELAB hue angle: (name, first angle in degrees), each running to the next
# one's start. sRGB red sits at 40°, crimson 25°, orange and every skin tone 50-65°, yellow 96°,
# green 136°, sky blue 269°, sRGB blue 306°.
HUE_FAMILIES = (
    ("red", -5.0),
    ("orange/skin", 48.0),  # brown is a dark orange
    ("yellow", 80.0),
    ("green", 105.0),
    ("cyan/blue", 170.0),
    ("violet/pink", 315.0),
)
HUE_GREY = len(HUE_FAMILIES)  # hue_tally's column for test pixels too grey to have a hue
COLOURED_CHROMA = 20.0  # a reference pixel at least this far from grey has a hue worth scoring
GREY_CHROMA = 10.0  # a coloured pixel nearer grey than this reads as grey


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (inf for identical images)."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity (Wang et al. 2004) with an 11-pixel Gaussian window.

    Channel-last colour images are scored per channel and averaged. Matches scikit-image's
    ``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=data_range, channel_axis=-1)``: only windows lying wholly inside the image count.
    Images narrower than the window use a window cut to fit them.
    """
    x = np.asarray(reference, np.float64)
    y = np.asarray(test, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} and {y.shape}")
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    radius = min(int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5), (min(x.shape[:2]) - 1) // 2)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    window = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    window /= window.sum()

    def local_mean(image: np.ndarray) -> np.ndarray:
        return _filter_valid(_filter_valid(image, window, 0), window, 1)

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(s.mean())


def _filter_valid(image: np.ndarray, window: np.ndarray, axis: int) -> np.ndarray:
    """1-D correlation along ``axis`` keeping only full windows: shifted slices summed in place,
    which is faster than a strided-view product and needs no copy of the image per tap."""
    n = image.shape[axis] - window.size + 1

    def shifted(k: int) -> np.ndarray:
        index = [slice(None)] * image.ndim
        index[axis] = slice(k, k + n)
        return image[tuple(index)]

    out = window[0] * shifted(0)
    for k in range(1, window.size):
        out += window[k] * shifted(k)
    return out


def ab_errors(reference_ab: np.ndarray, test_ab: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean distance in the a,b plane, ``(..., 2)`` -> ``(...)``."""
    diff = np.asarray(reference_ab, np.float64) - np.asarray(test_ab, np.float64)
    return np.sqrt(np.sum(diff * diff, axis=-1))


def ab_error(reference_ab: np.ndarray, test_ab: np.ndarray) -> float:
    """Mean per-pixel a,b distance, in Lab units."""
    return float(ab_errors(reference_ab, test_ab).mean())


def ab_auc(
    reference_ab: np.ndarray, test_ab: np.ndarray, max_threshold: float = AB_AUC_MAX_THRESHOLD
) -> float:
    """Area under the a,b accuracy curve of Zhang et al. 2016, normalised to [0, 1].

    The curve is the fraction of pixels whose a,b error is within threshold t, for t from 0 to
    ``max_threshold``. Integrated exactly rather than on a grid of thresholds: a pixel with
    error e is within t for the last ``max_threshold - e`` of the range, so the area is the
    mean of ``1 - min(e, max_threshold) / max_threshold``.
    """
    errors = ab_errors(reference_ab, test_ab)
    return float(np.mean(1.0 - np.minimum(errors, max_threshold) / max_threshold))


def hue_family(ab: np.ndarray) -> np.ndarray:
    """Index into :data:`HUE_FAMILIES` of each a,b pair's hue angle."""
    ab = np.asarray(ab, np.float64)
    hue = np.degrees(np.arctan2(ab[..., 1], ab[..., 0]))
    starts = np.array([start for _, start in HUE_FAMILIES])
    hue = np.where(hue < starts[0], hue + 360.0, hue)
    return np.searchsorted(starts, hue, side="right") - 1


def hue_tally(reference_ab: np.ndarray, test_ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How a test image's hues match the reference's, over the reference pixels with chroma at
    least :data:`COLOURED_CHROMA`.

    Returns pixel counts ``(families, families + 1)`` (row: the reference's hue family; column:
    the test's, the last counting test pixels under :data:`GREY_CHROMA`) and chroma sums
    ``(families, 2)`` (the reference's, the test's) per reference family.
    """
    reference = np.asarray(reference_ab, np.float64)
    test = np.asarray(test_ab, np.float64)
    reference_chroma = np.hypot(reference[..., 0], reference[..., 1])
    test_chroma = np.hypot(test[..., 0], test[..., 1])
    coloured = reference_chroma >= COLOURED_CHROMA
    truth = hue_family(reference[coloured])
    guess = np.where(test_chroma[coloured] < GREY_CHROMA, HUE_GREY, hue_family(test[coloured]))
    families = len(HUE_FAMILIES)
    counts = np.bincount(truth * (families + 1) + guess, minlength=families * (families + 1))
    chroma = [
        np.bincount(truth, weights=c[coloured], minlength=families) for c in (reference_chroma, test_chroma)
    ]
    return counts.reshape(families, families + 1), np.stack(chroma, axis=-1)


def colourfulness(rgb: np.ndarray, data_range: float = 1.0) -> float:
    """Hasler and Süsstrunk (2003) colourfulness M, in the units of 8-bit RGB.

    ``rg = R - G`` and ``yb = (R + G) / 2 - B``; M = sqrt(var_rg + var_yb) +
    0.3 * sqrt(mean_rg² + mean_yb²). Zero for any grey image; about 50 is "quite colourful".
    """
    pixels = np.asarray(rgb, np.float64).reshape(-1, 3) * (255.0 / data_range)
    rg = pixels[:, 0] - pixels[:, 1]
    yb = 0.5 * (pixels[:, 0] + pixels[:, 1]) - pixels[:, 2]
    spread = np.sqrt(rg.var() + yb.var())
    centre = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(spread + 0.3 * centre)
