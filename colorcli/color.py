"""Colour science shared by training, export and inference: sRGB <-> CIELAB (D65).

Every conversion and every normalisation constant in colorcli lives here, so the
numbers a model was trained with are the numbers it is run with. The maths is
written once over an array namespace and instantiated for numpy and torch.

Layout: channel-last arrays ``(..., 3)`` of float sRGB in [0, 1] and Lab with
L in [0, 100] and a, b roughly in [-110, 110]. ``*_nchw`` helpers wrap the torch
versions for batches laid out as (N, C, H, W).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

# Normalisation of the network's inputs and outputs: L/50 - 1 maps L to [-1, 1];
# a,b / 110 maps the whole sRGB gamut (a in [-86, 98], b in [-108, 94]) into the
# tanh range with a little headroom (the pix2pix colorization model uses the same).
L_SCALE = 50.0
L_OFFSET = 1.0
AB_SCALE = 110.0

# D65 white point and the sRGB (linear) -> XYZ matrix, IEC 61966-2-1.
WHITE_D65 = (0.95047, 1.0, 1.08883)
RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
XYZ_TO_RGB = tuple(map(tuple, np.linalg.inv(np.array(RGB_TO_XYZ)).tolist()))

_EPS = 216.0 / 24389.0  # (6/29)^3: where CIE's f(t) switches from cube root to linear
KAPPA = 24389.0 / 27.0

NORMALISATION = {
    "colour_space": "CIELAB D65 (sRGB, IEC 61966-2-1)",
    "l_scale": L_SCALE,
    "l_offset": L_OFFSET,
    "ab_scale": AB_SCALE,
}


def _ns_numpy() -> SimpleNamespace:
    return SimpleNamespace(
        where=np.where,
        clip=np.clip,
        cbrt=np.cbrt,
        matrix=lambda m, like: np.asarray(m, dtype=like.dtype),
    )


def _ns_torch() -> SimpleNamespace:
    import torch

    return SimpleNamespace(
        where=torch.where,
        clip=torch.clamp,
        cbrt=lambda t: torch.pow(t, 1.0 / 3.0),
        matrix=lambda m, like: torch.tensor(m, dtype=like.dtype, device=like.device),
    )


def _decode(srgb: Any, xp: SimpleNamespace) -> Any:
    return xp.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _encode(linear: Any, xp: SimpleNamespace) -> Any:
    return xp.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1.0 / 2.4) - 0.055)


def _lab_to_xyz(lab: Any, xp: SimpleNamespace) -> Any:
    fy = (lab[..., 0:1] + 16.0) / 116.0
    f = _concat_last([fy + lab[..., 1:2] / 500.0, fy, fy - lab[..., 2:3] / 200.0], lab)
    xyz = xp.where(f > 6.0 / 29.0, f**3, (116.0 * f - 16.0) / KAPPA)
    return xyz * xp.matrix(WHITE_D65, lab)


def _srgb_to_lab(rgb: Any, xp: SimpleNamespace) -> Any:
    linear = _decode(xp.clip(rgb, 0.0, 1.0), xp)
    xyz = linear @ xp.matrix(RGB_TO_XYZ, rgb).T
    xyz = xyz / xp.matrix(WHITE_D65, rgb)
    f = xp.where(xyz > _EPS, xp.cbrt(xp.clip(xyz, _EPS, None)), (KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f[..., 0:1], f[..., 1:2], f[..., 2:3]
    lab = [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
    return _concat_last(lab, rgb)


def _lab_to_srgb(lab: Any, xp: SimpleNamespace) -> Any:
    linear = xp.clip(_lab_to_xyz(lab, xp) @ xp.matrix(XYZ_TO_RGB, lab).T, 0.0, 1.0)
    return _encode(linear, xp)


def _concat_last(parts: list[Any], like: Any) -> Any:
    if isinstance(like, np.ndarray):
        return np.concatenate(parts, axis=-1)
    import torch

    return torch.cat(parts, dim=-1)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1], shape (..., 3) -> CIELAB (..., 3)."""
    return _srgb_to_lab(np.asarray(rgb, dtype=np.float32), _ns_numpy())


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (..., 3) -> sRGB in [0, 1], out-of-gamut colours clipped."""
    return _lab_to_srgb(np.asarray(lab, dtype=np.float32), _ns_numpy())


def rgb_to_lab_torch(rgb: Any) -> Any:
    """torch version of :func:`rgb_to_lab` (channel-last)."""
    return _srgb_to_lab(rgb, _ns_torch())


def lab_to_rgb_torch(lab: Any) -> Any:
    """torch version of :func:`lab_to_rgb` (channel-last)."""
    return _lab_to_srgb(lab, _ns_torch())


def rgb_to_lab_nchw(rgb: Any) -> Any:
    """(N, 3, H, W) sRGB tensor in [0, 1] -> (N, 3, H, W) Lab tensor, computed in float32."""
    return rgb_to_lab_torch(rgb.float().movedim(1, -1)).movedim(-1, 1)


def lab_to_rgb_nchw(lab: Any) -> Any:
    """(N, 3, H, W) Lab tensor -> (N, 3, H, W) sRGB tensor in [0, 1]."""
    return lab_to_rgb_torch(lab.float().movedim(1, -1)).movedim(-1, 1)


def normalise_l(lightness: Any) -> Any:
    """L in [0, 100] -> network input in [-1, 1]."""
    return lightness / L_SCALE - L_OFFSET


def denormalise_l(l_norm: Any) -> Any:
    return (l_norm + L_OFFSET) * L_SCALE


def normalise_ab(ab: Any) -> Any:
    """a,b in Lab units -> network target range."""
    return ab / AB_SCALE


def denormalise_ab(ab_norm: Any) -> Any:
    return ab_norm * AB_SCALE


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear light."""
    return _decode(np.asarray(srgb), _ns_numpy())


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] -> sRGB-encoded values."""
    return _encode(np.asarray(linear), _ns_numpy())


def grey_to_lightness(grey: np.ndarray) -> np.ndarray:
    """CIE L of grey sRGB values in [0, 1] (R = G = B), without a full conversion."""
    y = srgb_to_linear(np.clip(np.asarray(grey, dtype=np.float32), 0.0, 1.0))
    return np.where(y > _EPS, 116.0 * np.cbrt(y) - 16.0, KAPPA * y).astype(np.float32)


def lightness_to_grey(lightness: np.ndarray) -> np.ndarray:
    """The grey sRGB value in [0, 1] (R = G = B) of CIE L in [0, 100]: the inverse of
    :func:`grey_to_lightness`, for files that store L itself (CIELAB TIFF)."""
    lightness = np.clip(np.asarray(lightness, dtype=np.float32), 0.0, 100.0)
    y = np.where(lightness > KAPPA * _EPS, ((lightness + 16.0) / 116.0) ** 3, lightness / KAPPA)
    return linear_to_srgb(y).astype(np.float32)


def lab_to_linear_in_gamut(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lab (L, a, b broadcast together) -> linear sRGB (..., 3) in [0, 1], keeping L exactly.

    Out-of-gamut colours are moved towards the grey of the same luminance (Y is linear in
    RGB) just far enough that every channel fits, instead of clipping each channel, which
    would change their lightness; the hue is nearly kept. In-gamut colours are untouched.
    """
    lab = np.stack(np.broadcast_arrays(lightness, a, b), axis=-1)
    xyz = _lab_to_xyz(lab, _ns_numpy())
    linear = xyz @ np.asarray(XYZ_TO_RGB, dtype=xyz.dtype).T
    y = np.clip(xyz[..., 1:2], 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        over = np.where(linear > 1.0, (1.0 - y) / (linear - y), 1.0)
        under = np.where(linear < 0.0, y / (y - linear), 1.0)
    t = np.clip(np.minimum(over, under).min(axis=-1, keepdims=True), 0.0, 1.0)
    return np.clip(y + t * (linear - y), 0.0, 1.0)


_TONE_BAND = 5.0  # L units: a toned print's tint drifts with lightness, slowly


def tint_spread(rgb: np.ndarray) -> float:
    """How far a photo's a,b stray (RMS, CIELAB units) from the one tint per band of lightness
    that a toned print has: under about 3.5 for grey and for sepia, selenium or cyanotype prints,
    JPEG's chroma noise included; above 4 for 93 % of the colour photos of the training archives
    (median 10), and lower for photos of nearly one hue per lightness (a blue glacier).
    ``rgb``: (..., 3) sRGB in [0, 1]."""
    lab = rgb_to_lab(np.asarray(rgb).reshape(-1, 3))
    band = np.minimum(lab[:, 0] / _TONE_BAND, 100.0 / _TONE_BAND).astype(np.intp)
    count = np.bincount(band).clip(1)
    stray = np.zeros(len(lab), dtype=np.float64)
    for channel in (1, 2):
        tint = np.bincount(band, lab[:, channel]) / count
        stray += (lab[:, channel] - tint[band]) ** 2
    return float(np.sqrt(stray.mean())) if len(lab) else 0.0
