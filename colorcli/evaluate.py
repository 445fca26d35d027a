"""Scoring colorizers against colour photos: the engine behind ``colorcli evaluate``.

Each photo is turned grey (its CIE L kept, a,b dropped), coloured by every candidate through
the same :class:`~colorcli.pipeline.Colorizer` that ``colorcli colorize`` uses, in 8 bits as a
user would see it, and compared with the original. Figures are running sums, so memory stays
flat however many photos there are; only the few tiles of the grid are kept, and each photo's
own figures go to a caller that asks for them (``on_photo``).
"""

from __future__ import annotations

import csv
import io
import math
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from colorcli import color, imageio, metrics, render
from colorcli.pipeline import Colorizer

GREY_NAME = "grey"
# A photo whose channels never differ by more than this (8-bit) has no colour to recover.
GREY_TOLERANCE = 2
# A perfect reconstruction has infinite PSNR; capping keeps one such photo from making the mean inf.
PSNR_CAP_DB = 100.0

GRID_MAX_ROWS = 8
GRID_TILE = 256
GRID_GAP = 4
GRID_HEADER = 24

# what Pillow raises for files it cannot decode (the list colorcli.imageio handles too)
UNREADABLE = (OSError, SyntaxError, ValueError, struct.error, EOFError, imageio.ImageError)

Colour = Callable[[np.ndarray], np.ndarray]  # grey photo (H, W) uint8 -> 8-bit RGB (H, W, 3)


@dataclass
class Candidate:
    """One column of the comparison: a name and how it colours a grey photo."""

    name: str
    colour: Colour
    path: Path | None = None
    render_size: int | None = None


def grey_candidate() -> Candidate:
    return Candidate(GREY_NAME, lambda grey: np.repeat(grey[..., None], 3, axis=-1))


def model_candidate(name: str, colorizer: Colorizer) -> Candidate:
    """A model, run exactly as ``colorcli colorize`` runs it (same resizing, rendering, 8-bit output)."""

    def colour(grey: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(colorizer.colorize(Image.fromarray(grey, "L")).convert("RGB"))
        except imageio.ImageError as exc:  # a broken model: no figure of it would mean anything
            raise imageio.ImageError(f"{colorizer.model.path}: {exc}") from None

    return Candidate(name, colour, colorizer.model.path, colorizer.render_size)


HUE_NAMES = [name for name, _ in metrics.HUE_FAMILIES]
MEAN_FIGURES = ("psnr", "ssim", "ab_error", "ab_auc", "colourfulness")


@dataclass
class Totals:
    """Running sums of per-photo figures for one candidate, and its hue tally pooled over pixels."""

    photos: int = 0
    psnr: float = 0.0
    ssim: float = 0.0
    ab_error: float = 0.0
    ab_auc: float = 0.0
    colourfulness: float = 0.0
    hue_counts: np.ndarray = field(
        default_factory=lambda: np.zeros((len(HUE_NAMES), metrics.HUE_GREY + 1), np.int64)
    )
    hue_chroma: np.ndarray = field(default_factory=lambda: np.zeros((len(HUE_NAMES), 2)))

    def add(self, original: np.ndarray, original_ab: np.ndarray, produced: np.ndarray) -> dict[str, float]:
        """Score one 8-bit RGB result against the 8-bit original and the original's a,b; returns
        the photo's own :data:`MEAN_FIGURES`."""
        produced_ab = color.rgb_to_lab(produced / np.float32(255))[..., 1:]
        figures = {
            "psnr": min(metrics.psnr(original, produced, 255.0), PSNR_CAP_DB),
            "ssim": metrics.ssim(original, produced, 255.0),
            "ab_error": metrics.ab_error(original_ab, produced_ab),
            "ab_auc": metrics.ab_auc(original_ab, produced_ab),
            "colourfulness": metrics.colourfulness(produced, 255.0),
        }
        self.photos += 1
        for name, value in figures.items():
            setattr(self, name, getattr(self, name) + value)
        counts, chroma = metrics.hue_tally(original_ab, produced_ab)
        self.hue_counts += counts
        self.hue_chroma += chroma
        return figures

    def means(self) -> dict[str, float]:
        n = max(self.photos, 1)
        return {name: getattr(self, name) / n for name in MEAN_FIGURES}

    def hues(self) -> dict[str, dict[str, Any]]:
        """Per hue family of the originals: its share of their clearly coloured pixels, the
        fraction of its pixels given each family or grey, and the chroma given over the
        original's (None for a family no pixel fell in)."""
        total = max(int(self.hue_counts.sum()), 1)
        figures = {}
        for name, row, (chroma_original, chroma_given) in zip(
            HUE_NAMES, self.hue_counts, self.hue_chroma, strict=True
        ):
            pixels = int(row.sum())
            given = dict(zip([*HUE_NAMES, GREY_NAME], (row / max(pixels, 1)).tolist(), strict=True))
            figures[name] = {
                "share": pixels / total,
                "given": given,
                "chroma_ratio": float(chroma_given / chroma_original) if pixels else None,
            }
        return figures


@dataclass
class Result:
    """Mean figures of one candidate over the photos, with the comparisons the report needs."""

    name: str
    path: str | None
    render_size: int | None
    psnr: float
    psnr_gain: float  # over the grey baseline, dB
    ssim: float
    ab_error: float
    ab_auc: float
    colourfulness: float
    colourfulness_gap: float  # candidate minus originals
    colourfulness_ratio: float  # candidate / originals
    hues: dict[str, dict[str, Any]]  # Totals.hues: is each hue of the originals given back?


@dataclass(frozen=True)
class PhotoScores:
    """One photo's figures: the original's colourfulness, and each candidate's
    :data:`MEAN_FIGURES` (the grey baseline first, then the candidates in order)."""

    path: Path
    original_colourfulness: float
    figures: list[dict[str, float]]


PER_PHOTO_COLUMNS = ("photo", "model", *MEAN_FIGURES, "psnr_gain", "colourfulness_ratio")


def per_photo_csv(scores: Iterable[PhotoScores], names: Sequence[str]) -> str:
    """CSV of every photo's figures, a row per photo and candidate (``names``: the grey baseline's
    then the candidates'), with the PSNR gain over grey and the colourfulness over the original's
    on that photo: where one model does worse than another, photo by photo."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PER_PHOTO_COLUMNS)
    for photo in scores:
        grey_psnr = photo.figures[0]["psnr"]
        for name, figures in zip(names, photo.figures, strict=True):
            # an original is never grey (those are skipped), so its colourfulness is above 0
            ratio = figures["colourfulness"] / photo.original_colourfulness
            row = [figures[f] for f in MEAN_FIGURES] + [figures["psnr"] - grey_psnr, ratio]
            writer.writerow([str(photo.path), name, *(f"{v:.6g}" for v in row)])
    return out.getvalue()


@dataclass
class Evaluation:
    photos: int
    originals_colourfulness: float
    results: list[Result]
    skipped_grey: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "photos": self.photos,
            "originals": {"colourfulness": self.originals_colourfulness},
            "models": [asdict(r) for r in self.results],
            "skipped": {"grey": self.skipped_grey, "unreadable": self.unreadable},
        }

    def markdown(self, first_column: str = "model") -> str:
        """The bar's three figures per candidate, as a markdown table for reports."""
        rows = [
            f"| {first_column} | PSNR gain over grey | a,b AUC | colourfulness × originals |",
            "|---|---|---|---|",
        ]
        rows += [
            f"| {r.name} | {r.psnr_gain:+.2f} dB | {r.ab_auc:.3f} | {r.colourfulness_ratio:.2f} |"
            for r in self.results
        ]
        return "\n".join(rows)


def load_photo(path: Path, max_side: int | None) -> np.ndarray | None:
    """The photo as 8-bit RGB (H, W, 3), shrunk to ``max_side``; None if it has no colour.

    Raises one of :data:`UNREADABLE` for files Pillow cannot read.
    """
    with imageio.reading(path):
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            if imageio.tiff_holds_grey(path):  # Photoshop's 16-bit grey with transparency
                return None
            raise
        with image:
            imageio.check_megapixels(image)
            if max_side:
                image.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale, much faster
            image = imageio.upright(image)
            if image.mode in ("1", "L", "LA", "I", "I;16", "F"):
                return None
            # in sRGB, as colorize reads it: the original is what the model's colours are scored against
            image = imageio.to_srgb(image, image.info.get("icc_profile")).convert("RGB")
            if max_side:
                image.thumbnail((max_side, max_side), Image.LANCZOS)
            rgb = np.asarray(image)
    spread = rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1)
    return None if int(spread.max()) <= GREY_TOLERANCE else rgb


def evaluate(
    photos: Iterable[Path],
    candidates: Sequence[Candidate],
    max_side: int | None = 512,
    grid_rows: int = 0,
    limit: int | None = None,
    on_photo: Callable[[PhotoScores], None] | None = None,
) -> tuple[Evaluation, list[list[Image.Image]]]:
    """Score ``candidates`` (the grey baseline is added first) on the first ``limit`` colour
    photos of ``photos``; ``on_photo`` gets each one's scores.

    Returns the evaluation and, for the first ``grid_rows`` photos, the row of grid images:
    original, then each candidate's result (the grey baseline being the grey photo).
    """
    everyone = [grey_candidate(), *candidates]
    totals = [Totals() for _ in everyone]
    originals_colourfulness = 0.0
    evaluation = Evaluation(0, 0.0, [])
    rows: list[list[Image.Image]] = []
    for path in photos:
        if limit is not None and evaluation.photos >= limit:
            break
        try:
            original = load_photo(path, max_side)
        except UNREADABLE:
            evaluation.unreadable.append(str(path))
            original = None
        else:
            if original is None:
                evaluation.skipped_grey.append(str(path))
        if original is not None:
            original_ab = color.rgb_to_lab(original / np.float32(255))[..., 1:]
            own_colourfulness = metrics.colourfulness(original, 255.0)
            originals_colourfulness += own_colourfulness
            grey = render.luminance8(original)  # the black-and-white photo, same CIE L
            produced = [c.colour(grey) for c in everyone]
            figures = [t.add(original, original_ab, image) for t, image in zip(totals, produced, strict=True)]
            evaluation.photos += 1
            if len(rows) < grid_rows:
                rows.append([_tile(a) for a in (original, *produced)])
            if on_photo is not None:
                on_photo(PhotoScores(path, own_colourfulness, figures))
    evaluation.originals_colourfulness = originals_colourfulness / max(evaluation.photos, 1)
    evaluation.results = _results(everyone, totals, evaluation.originals_colourfulness)
    return evaluation, rows


def _results(candidates: Sequence[Candidate], totals: Sequence[Totals], original_m: float) -> list[Result]:
    means = [t.means() for t in totals]
    grey_psnr = means[0]["psnr"]
    return [
        Result(
            name=c.name,
            path=str(c.path) if c.path else None,
            render_size=c.render_size,
            psnr_gain=m["psnr"] - grey_psnr,
            colourfulness_gap=m["colourfulness"] - original_m,
            colourfulness_ratio=m["colourfulness"] / original_m if original_m > 0 else math.nan,
            hues=t.hues(),
            **m,
        )
        for c, t, m in zip(candidates, totals, means, strict=True)
    ]


def _tile(rgb: np.ndarray) -> Image.Image:
    image = Image.fromarray(rgb)
    scale = GRID_TILE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS)


def render_grid(rows: Sequence[Sequence[Image.Image]], labels: Sequence[str]) -> Image.Image:
    """A Figure-2.2-style sheet: one labelled column per entry of ``labels``, one row per photo.

    Cells are ``GRID_TILE`` wide; each row is as tall as its photo's tiles (at most ``GRID_TILE``).
    """
    columns = len(labels)
    width = columns * GRID_TILE + (columns + 1) * GRID_GAP
    height = GRID_HEADER + sum(row[0].height for row in rows) + (len(rows) + 1) * GRID_GAP
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(14)
    for i, label in enumerate(labels):
        text = _fit_text(draw, label, font, GRID_TILE)
        left = GRID_GAP + i * (GRID_TILE + GRID_GAP)
        draw.text((left + GRID_TILE / 2, GRID_HEADER / 2 + GRID_GAP / 2), text, "black", font, anchor="mm")
    top = GRID_HEADER + GRID_GAP
    for row in rows:
        for i, tile in enumerate(row):
            left = GRID_GAP + i * (GRID_TILE + GRID_GAP) + (GRID_TILE - tile.width) // 2
            sheet.paste(tile, (left, top))
        top += row[0].height + GRID_GAP
    return sheet


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """``text`` cut with an ellipsis at the front (the end of a model's name tells most)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength("…" + text, font=font) > width:
        text = text[1:]
    return "…" + text
