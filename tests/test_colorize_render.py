"""The fast full-resolution Lab path (colorcli.render) against the reference maths in colorcli.color."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color as skcolor
from skimage import data

from colorcli import color, render


def _random_case(seed: int, n: int = 256) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Random grey (n, n), packed half-resolution chroma, and the a,b level planes it stands for."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 256, (n, n), dtype=np.uint8)
    half = rng.integers(0, render.AB_LEVELS, (2, n // 2, n // 2), dtype=np.uint8)
    planes = tuple(np.repeat(np.repeat(p, 2, axis=0), 2, axis=1) for p in half)
    chroma = (planes[0][::2].astype(np.uint32) << 16) | (planes[1][::2].astype(np.uint32) << 8)
    return grey, chroma, planes


def _reference_lab(grey: np.ndarray, planes: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    lightness = color.grey_to_lightness(grey / 255.0)
    return np.stack([lightness, render.levels_to_ab(planes[0]), render.levels_to_ab(planes[1])], axis=-1)


def _in_gamut(lab: np.ndarray) -> np.ndarray:
    linear = color.lab_to_linear_in_gamut(lab[..., 0], lab[..., 1], lab[..., 2])
    return np.abs(color.linear_to_srgb(linear) - color.lab_to_rgb(lab)).max(axis=-1) < 1e-5


@pytest.mark.filterwarnings("ignore:Conversion from CIE-LAB")
def test_lut_matches_reference_for_in_gamut_colours() -> None:
    grey, chroma, planes = _random_case(0)
    lab = _reference_lab(grey, planes)
    ours = np.asarray(render.render8(grey, chroma).convert("RGB")).astype(int)
    reference = np.rint(color.lab_to_rgb(lab) * 255).astype(int)
    inside = _in_gamut(lab)
    assert inside.sum() > 5000  # the comparison covers many colours
    assert np.abs(ours - reference)[inside].max() == 0
    # and scikit-image agrees, up to its slightly different constants
    sk = np.rint(skcolor.lab2rgb(lab.astype(np.float64)) * 255).astype(int)
    assert np.abs(ours - sk)[inside].max() <= 2


def test_out_of_gamut_colours_keep_their_lightness() -> None:
    grey, chroma, planes = _random_case(1)
    lab = _reference_lab(grey, planes)
    ours = np.asarray(render.render8(grey, chroma).convert("RGB")) / 255.0
    outside = ~_in_gamut(lab)
    error = np.abs(color.rgb_to_lab(ours)[..., 0] - lab[..., 0])[outside]
    clipped = np.abs(color.rgb_to_lab(color.lab_to_rgb(lab))[..., 0] - lab[..., 0])[outside]
    assert error.mean() < 0.3
    assert clipped.mean() > 3  # what per-channel clipping would have done to lightness


@pytest.mark.parametrize("size", [(64, 64), (63, 37)])
def test_render16_matches_reference(size: tuple[int, int]) -> None:
    grey, chroma, planes = _random_case(2, 64)
    grey16 = grey.astype(np.uint16)[: size[1], : size[0]] * 257 + 100
    planes = tuple(p[: size[1], : size[0]] for p in planes)
    lab = np.stack([color.grey_to_lightness(grey16 / 65535.0), *(render.levels_to_ab(p) for p in planes)], -1)
    rgb16 = render.render16(grey16, chroma[: (size[1] + 1) // 2, : size[0]])
    assert rgb16.dtype == np.uint16
    inside = _in_gamut(lab)
    assert np.abs(rgb16 / 65535.0 - color.lab_to_rgb(lab))[inside].max() < 2e-5


def test_odd_sizes_and_many_strips() -> None:
    grey, chroma, planes = _random_case(3, 256)
    grey, planes = grey[:255, :201], tuple(p[:255, :201] for p in planes)
    original = render.STRIP_PIXELS
    render.STRIP_PIXELS = 1000  # strips of 4 rows
    try:
        ours = np.asarray(render.render8(np.ascontiguousarray(grey), chroma[:128, :201]).convert("RGB"))
    finally:
        render.STRIP_PIXELS = original
    lab = _reference_lab(grey, planes)
    inside = _in_gamut(lab)
    assert ours.shape == (255, 201, 3)
    assert np.abs(ours.astype(int) - np.rint(color.lab_to_rgb(lab) * 255))[inside].max() == 0


def test_luminance8_is_the_cie_lightness_of_a_colour_photo() -> None:
    rgb = data.astronaut()
    grey = render.luminance8(rgb)
    difference = np.abs(color.grey_to_lightness(grey / 255.0) - color.rgb_to_lab(rgb / 255.0)[..., 0])
    assert difference.max() < 0.5
    # a grey photo stored as RGB gives its own grey back
    camera = data.camera()
    assert np.array_equal(render.luminance8(np.dstack([camera] * 3)), camera)


def test_upsampling_is_smooth_not_blocky() -> None:
    ab = np.zeros((2, 4, 4), np.float32)
    ab[0, :, 2:] = 0.5  # a step in a
    chroma = render.upsample_ab(ab, (127, 95))
    assert chroma.shape == (48, 127)  # half the rows (rounded up), every column
    row = (chroma[24] >> 16).astype(int)
    assert np.array_equal(row[0:126:2], row[1:127:2])  # columns come in pairs: half resolution
    assert len(np.unique(row)) > 6  # a ramp, where nearest-neighbour would give two values
    assert np.all(np.diff(row) >= 0)


@pytest.mark.parametrize("saturation", [0.0, 1.0, 2.0])
def test_saturation_scales_chroma(saturation: float) -> None:
    ab = np.full((2, 8, 8), 0.2, np.float32)
    grey = np.full((16, 16), 120, np.uint8)
    rgb = (
        np.asarray(render.render8(grey, render.upsample_ab(ab, (16, 16), saturation)).convert("RGB")) / 255.0
    )
    chroma = np.hypot(*color.rgb_to_lab(rgb)[..., 1:].transpose(2, 0, 1)).mean()
    assert chroma == pytest.approx(0.2 * color.AB_SCALE * np.sqrt(2) * saturation, abs=2.0)


def test_alpha_rides_in_the_padding_byte() -> None:
    grey, chroma, _ = _random_case(4, 32)
    alpha = np.arange(32 * 32, dtype=np.uint32).reshape(32, 32).astype(np.uint8)
    rgba = render.render8(grey, chroma, alpha)
    assert rgba.mode == "RGBA"
    assert np.array_equal(np.asarray(rgba)[..., 3], alpha)
    assert np.array_equal(np.asarray(rgba)[..., :3], np.asarray(render.render8(grey, chroma).convert("RGB")))


def test_context_blend_sets_where_colour_goes_and_keeps_its_strength() -> None:
    ab = np.zeros((2, 8, 8), np.float32)
    ab[0, :, :4] = 0.4  # colour on the left half only
    context = np.zeros((2, 4, 4), np.float32)
    context[0] = 0.1  # weaker colour everywhere
    blended = render.blend_context(ab, context, 0.5)
    assert blended.shape == ab.shape and blended.dtype == np.float32
    assert np.allclose(blended[1], 0)
    assert np.hypot(*blended).mean() == pytest.approx(np.hypot(*ab).mean(), rel=1e-5)
    # the right half, grey in the render-size pass, takes colour from the context pass
    assert blended[0, :, 4:].min() > 0
    assert blended[0, :, :4].min() > blended[0, :, 4:].max()
    assert np.array_equal(render.blend_context(ab, context, 0.0), ab)
    assert np.array_equal(
        render.blend_context(np.zeros_like(ab), np.zeros_like(context), 0.5), np.zeros_like(ab)
    )


def test_no_colour_renders_exactly_neutral_grey() -> None:
    # a,b = 0 must be one of the quantisation levels, or every grey the model predicts is tinted
    grey = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    chroma = render.upsample_ab(np.zeros((2, 4, 64), np.float32), (256, 4))
    rgb = np.asarray(render.render8(grey, chroma).convert("RGB")).astype(int)
    assert np.array_equal(rgb, np.dstack([grey] * 3))
    rgb16 = render.render16(grey.astype(np.uint16) * 257, chroma).astype(int)
    # within the rounding of the D65 matrices (a level off a,b = 0 tints by hundreds)
    assert (rgb16.max(-1) - rgb16.min(-1)).max() <= 4
