"""What an export is checked on, and how: random L maps and held-out photos at several sizes,
onnxruntime against PyTorch (parity), and a reduced-precision model's colours against its fp32
twin's (quality). :mod:`colorcli.export` decides what a failed check means; these functions
only measure. torch, onnxruntime and scikit-image are imported lazily (``[train]`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorcli import color, metadata
from colorcli.metrics import psnr

# held-out photos of scikit-image (never training data): the parity and quality samples
SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


class ShapeMismatch(ValueError):
    """onnxruntime returned another shape than PyTorch for the same input."""


@dataclass(frozen=True)
class ParityCase:
    name: str
    shape: tuple[int, ...]
    max_abs_diff: float


@dataclass(frozen=True)
class QualityCase:
    name: str
    psnr_fp32: float  # colorized RGB vs the original photo
    psnr_other: float
    psnr_vs_fp32: float  # colorized RGB of this precision vs that of fp32


def fit(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize an (H, W, 3) float image so its longer side is ``size`` (aspect kept)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    im = Image.fromarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(im.resize(new, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def centre_square(rgb: np.ndarray) -> np.ndarray:
    """The largest centred square of an image: the calibrator stacks its samples, so all
    must share one shape."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top : top + side, left : left + side]


def l_input(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) sRGB in [0, 1] -> (1, 1, H, W) float32 normalised L, the graph's input."""
    lightness = color.rgb_to_lab(rgb)[..., 0]
    return color.normalise_l(lightness)[None, None].astype(np.float32)


def sample_photos() -> list[tuple[str, np.ndarray]]:
    """The held-out scikit-image photos as (name, (H, W, 3) float sRGB in [0, 1])."""
    import skimage.data

    return [(n, getattr(skimage.data, n)().astype(np.float32) / 255.0) for n in SAMPLE_PHOTOS]


def parity_inputs(render_size: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Random L maps and real photos at several sizes, including sides that are not
    multiples of 16 (the generators pad internally) and a batch of two."""
    rng = np.random.default_rng(seed)
    r = render_size
    cases: list[tuple[str, np.ndarray]] = [
        ("random", rng.uniform(-1, 1, (2, 1, r, r)).astype(np.float32)),
        ("random", rng.uniform(-1, 1, (1, 1, r // 2 + 3, r + 7)).astype(np.float32)),
        ("random", rng.uniform(-1, 1, (1, 1, r + 13, max(24, r // 3) + 1)).astype(np.float32)),
    ]
    for (name, rgb), size in zip(sample_photos(), (r, r + 9, r // 2 + 5, 2 * r - 3), strict=True):
        cases.append((name, l_input(fit(rgb, max(size, 24)))))
    return cases


def session(model: bytes | str | Path) -> Any:
    """A quiet onnxruntime CPU session on a model's bytes or file."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    model_bytes = model if isinstance(model, bytes) else Path(model).read_bytes()
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def _run(onnx_session: Any, l_norm: np.ndarray) -> np.ndarray:
    return onnx_session.run([metadata.OUTPUT_NAME], {metadata.INPUT_NAME: l_norm})[0]


def parity_check(
    generator: Any, onnx_session: Any, inputs: Sequence[tuple[str, np.ndarray]]
) -> list[ParityCase]:
    """Largest |onnxruntime(CPU) - PyTorch| in normalised a,b, per input.

    Raises :class:`ShapeMismatch` if the two return different shapes.
    """
    import torch

    cases = []
    for name, l_norm in inputs:
        with torch.no_grad():
            expected = generator(torch.from_numpy(l_norm)).numpy()
        got = _run(onnx_session, l_norm)
        if got.shape != expected.shape:
            raise ShapeMismatch(
                f"onnxruntime returned shape {got.shape} for {l_norm.shape}, PyTorch {expected.shape}"
            )
        cases.append(ParityCase(name, tuple(l_norm.shape), float(np.max(np.abs(got - expected)))))
    return cases


def colorize_with(onnx_session: Any, rgb: np.ndarray) -> np.ndarray:
    """Colorize the lightness of ``rgb`` at its own size: (H, W, 3) sRGB in [0, 1]."""
    lab = color.rgb_to_lab(rgb)
    ab = color.denormalise_ab(_run(onnx_session, l_input(rgb))[0]).transpose(1, 2, 0)
    return color.lab_to_rgb(np.concatenate([lab[..., :1], ab], axis=-1))


def quality_check(
    fp32_model: bytes | str | Path, other_model: bytes | str | Path, render_size: int
) -> list[QualityCase]:
    """Colorize the sample photos at render size with both models and compare the RGB results.

    Reusable on any pair of models (bytes or paths), e.g. the shipped model and its int8 copy.
    """
    sessions = [session(m) for m in (fp32_model, other_model)]
    cases = []
    for name, rgb in sample_photos():
        photo = fit(rgb, render_size)
        ref, out = (colorize_with(s, photo) for s in sessions)
        cases.append(QualityCase(name, psnr(ref, photo), psnr(out, photo), psnr(out, ref)))
    return cases
