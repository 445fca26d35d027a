"""Full-resolution rendering: the original grey (its L) + the model's a,b, upsampled -> sRGB.

The maths is colorcli.color's (its constants, its L of a grey level, its sRGB encoding), made
fast for whole photos:

* a,b are quantised to ``AB_LEVELS`` levels (1.7 Lab units apart, under the ~2.3 units of a
  just-noticeable difference) at render size and upsampled smoothly (bilinear) by Pillow in
  8 bits to half the resolution in each direction (as JPEG's 4:2:0 keeps colour), so no
  full-size float copy of them ever exists; L stays at full resolution;
* 8-bit output is one table look-up per pixel in a 3-D LUT over (a, b, grey), laid out with
  grey fastest so that neighbouring pixels (similar a,b, any grey) hit neighbouring entries;
  the LUT is built once per process (about 0.5 s, 16 MB resident);
* the work runs in horizontal strips, so temporaries stay a few megabytes however big the image.

Out-of-gamut colours are brought into the sRGB gamut towards the grey of the same luminance
(:func:`colorcli.color.lab_to_linear_in_gamut`), so L is kept exactly. In-gamut colours match
:func:`colorcli.color.lab_to_rgb`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator

import numpy as np
from PIL import Image

from colorcli import color

AB_LEVELS = 127  # a,b quantisation for the LUT and the upsampling; odd, so a,b = 0 is a level
AB_RANGE = color.AB_SCALE  # a,b outside ±AB_RANGE are outside sRGB anyway and are clamped
_AB_STEP = 2 * AB_RANGE / (AB_LEVELS - 1)
STRIP_PIXELS = 1 << 19  # pixels per strip: about 4 MB of temporaries
# bilinear: smooth, and unlike bicubic it never overshoots, so levels stay inside the LUT
UPSAMPLE = Image.Resampling.BILINEAR


def ab_levels(ab_norm: np.ndarray, saturation: float = 1.0) -> np.ndarray:
    """Model output (2, h, w) normalised a,b -> (2, h, w) uint8 levels in [0, AB_LEVELS)."""
    ab = color.denormalise_ab(np.asarray(ab_norm, dtype=np.float32)) * np.float32(saturation)
    levels = np.rint((np.clip(ab, -AB_RANGE, AB_RANGE) + AB_RANGE) / _AB_STEP)
    return levels.astype(np.uint8)


def levels_to_ab(levels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ab_levels`: uint8 levels -> a or b in Lab units (float32)."""
    return (levels.astype(np.float32) * np.float32(_AB_STEP) - np.float32(AB_RANGE)).astype(np.float32)


def blend_context(ab_norm: np.ndarray, context: np.ndarray, weight: float) -> np.ndarray:
    """(2, h, w) a,b blended with a (2, h', w') a,b of the same photo at a smaller size, resized
    (bilinear) to h × w: ``(1 - weight) * ab_norm + weight * context``, rescaled to the mean
    chroma (|a,b|) of ``ab_norm``.

    The smaller pass predicts weaker colour overall (on the held-out photos the plain blend lost
    a tenth of their colourfulness), so it settles which colour goes where and ``ab_norm`` how
    strong colour is.
    """
    height, width = ab_norm.shape[-2:]
    resized = np.stack(
        [
            np.asarray(Image.fromarray(plane.astype(np.float32)).resize((width, height), UPSAMPLE))
            for plane in context
        ]
    )
    blended = (1 - weight) * ab_norm + weight * resized.astype(ab_norm.dtype)
    chroma = float(np.hypot(*blended).mean())
    if chroma > 0:
        blended *= float(np.hypot(*ab_norm).mean()) / chroma
    return blended


def upsample_ab(ab_norm: np.ndarray, size: tuple[int, int], saturation: float = 1.0) -> np.ndarray:
    """Model output (2, h, w) -> packed chroma for an image of ``size`` = (W, H).

    a,b are upsampled (bilinear) to half the resolution in each direction, as JPEG's 4:2:0
    keeps colour: a,b from a render-size model carry no detail at that scale, and L stays at
    full resolution. Returns (ceil(H/2), W) uint32 ``a level << 16 | b level << 8``, each value
    already doubled across (the multiplication by 2**32 + 1 packs it into both halves of a
    uint64), so rendering only has to repeat rows.
    """
    width, height = size
    half = (-(-width // 2), -(-height // 2))
    a, b = (
        np.asarray(Image.fromarray(plane, "L").resize(half, UPSAMPLE))
        for plane in ab_levels(ab_norm, saturation)
    )
    packed = np.left_shift(a, 16, dtype=np.uint64)
    packed |= np.left_shift(b, 8, dtype=np.uint64)
    packed *= np.uint64(0x1_0000_0001)
    return packed.view(np.uint32)[:, :width]


@functools.lru_cache(maxsize=1)
def _grey_lightness8() -> np.ndarray:
    return color.grey_to_lightness(np.arange(256, dtype=np.float32) / 255.0)


_LUT_LOCK = threading.Lock()


def rgbx_lut() -> np.ndarray:
    """(AB_LEVELS * 256 * 256,) uint32 of packed R,G,B,0 bytes, indexed by a << 16 | b << 8 | grey.

    b levels stop at AB_LEVELS, so the upper half of every b row stays zero pages, never touched.
    """
    with _LUT_LOCK:  # encoder threads would otherwise all build it at once
        return _build_lut()


@functools.lru_cache(maxsize=1)
def _build_lut() -> np.ndarray:
    ab = levels_to_ab(np.arange(AB_LEVELS, dtype=np.uint8))
    table = np.zeros((AB_LEVELS, 256, 256, 4), dtype=np.uint8)
    lightness = _grey_lightness8()
    for i, a in enumerate(ab):  # one a level at a time keeps the float temporaries small
        linear = color.lab_to_linear_in_gamut(lightness[None, :], np.float32(a), ab[:, None])
        table[i, :AB_LEVELS, :, :3] = np.rint(color.linear_to_srgb(linear) * 255.0).astype(np.uint8)
    return table.reshape(-1).view(np.uint32)


def _index_rows(chroma: np.ndarray, grey: np.ndarray, y0: int, y1: int, out: np.ndarray) -> np.ndarray:
    """LUT indices (chroma | grey) of rows y0:y1 (y0 even) into ``out``; each chroma row serves two."""
    width = grey.shape[1]
    pairs = (y1 - y0) // 2
    index = out[: y1 - y0]
    np.bitwise_or(
        chroma[y0 // 2 : y0 // 2 + pairs, None, :],
        grey[y0 : y0 + 2 * pairs].reshape(pairs, 2, width),
        out=index[: 2 * pairs].reshape(pairs, 2, width),
    )
    if (y1 - y0) % 2:  # the last row of an odd-height image
        np.bitwise_or(chroma[(y1 - 1) // 2], grey[y1 - 1], out=index[-1])
    return index


def render8(grey: np.ndarray, chroma: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """(H, W) uint8 grey + :func:`upsample_ab` chroma (+ alpha) -> 8-bit image with the grey's L.

    The image shares the LUT's 4-byte pixels without a copy: mode RGBX (which Pillow's JPEG
    encoder takes as it is; other formats need ``convert("RGB")``), or RGBA with ``alpha``.
    """
    height, width = grey.shape
    lut = rgbx_lut()
    out = np.empty((height, width), dtype=np.uint32)
    buffer = np.empty((_strip_rows(width), width), dtype=np.uint32)
    for y0, y1 in _strips(height, width):
        np.take(lut, _index_rows(chroma, grey, y0, y1, buffer), out=out[y0:y1], mode="clip")
        if alpha is not None:
            out[y0:y1] |= np.left_shift(alpha[y0:y1], 24, dtype=np.uint32)
    mode = "RGBX" if alpha is None else "RGBA"
    return Image.frombuffer(mode, (width, height), out, "raw", mode, 0, 1)


def render16(grey: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """(H, W) uint16 grey + :func:`upsample_ab` chroma -> (H, W, 3) uint16 RGB with the grey's L."""
    height, width = grey.shape
    out = np.empty((height, width, 3), dtype=np.uint16)
    for y0, y1 in _strips(height, width):
        packed = np.repeat(chroma[y0 // 2 : (y1 + 1) // 2], 2, axis=0)[: y1 - y0]
        a, b = (levels_to_ab(((packed >> shift) & 0xFF).astype(np.uint8)) for shift in (16, 8))
        lightness = color.grey_to_lightness(grey[y0:y1].astype(np.float32) / 65535.0)
        out[y0:y1] = np.rint(
            color.linear_to_srgb(color.lab_to_linear_in_gamut(lightness, a, b)) * 65535.0
        ).astype(np.uint16)
    return out


def _strip_rows(width: int) -> int:
    return max(2, STRIP_PIXELS // max(width, 1) // 2 * 2)  # even: chroma rows cover two pixel rows


def _strips(height: int, width: int) -> Iterator[tuple[int, int]]:
    rows = _strip_rows(width)
    for y0 in range(0, height, rows):
        yield y0, min(height, y0 + rows)


_Y_BINS = 1 << 16


@functools.lru_cache(maxsize=1)
def _luminance_tables() -> tuple[np.ndarray, np.ndarray]:
    # each channel's share of Y (in 1/65535ths) for each 8-bit value, and the grey level of each Y
    value = np.arange(256, dtype=np.float64) / 255.0
    linear = color.srgb_to_linear(value)
    shares = np.rint(linear[None, :] * np.asarray(color.RGB_TO_XYZ[1])[:, None] * (_Y_BINS - 1))
    y = np.arange(_Y_BINS + 2, dtype=np.float64) / (_Y_BINS - 1)  # +2: the shares' rounding
    return shares.astype(np.uint32), np.rint(color.linear_to_srgb(np.minimum(y, 1.0)) * 255.0).astype(
        np.uint8
    )


@functools.lru_cache(maxsize=1)
def _luminance_tables16() -> np.ndarray:
    # each channel's share of Y for each 16-bit value: (3, 65536) float32
    linear = color.srgb_to_linear(np.arange(65536, dtype=np.float64) / 65535.0)
    return (linear[None, :] * np.asarray(color.RGB_TO_XYZ[1])[:, None]).astype(np.float32)


def luminance16(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint16 sRGB -> (H, W) uint16 grey with the same CIE L: a 48-bit scan's grey."""
    out = np.empty(rgb.shape[:2], dtype=np.uint16)
    for rows, y in _luminance_strips(rgb, _luminance_tables16()):
        out[rows] = np.rint(color.linear_to_srgb(np.clip(y, 0.0, 1.0)) * 65535.0)
    return out


def luminance8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 sRGB -> (H, W) uint8 grey with the same CIE L: a colour photo's grey."""
    shares, to_grey = _luminance_tables()
    out = np.empty(rgb.shape[:2], dtype=np.uint8)
    for rows, y in _luminance_strips(rgb, shares):
        np.take(to_grey, y, out=out[rows], mode="clip")
    return out


def _luminance_strips(rgb: np.ndarray, shares: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """Strip by strip, each pixel's Y from the channels' ``shares`` tables (one row per channel)."""
    for y0, y1 in _strips(*rgb.shape[:2]):
        part = rgb[y0:y1]
        y = np.take(shares[0], part[..., 0])
        y += np.take(shares[1], part[..., 1])
        y += np.take(shares[2], part[..., 2])
        yield slice(y0, y1), y
