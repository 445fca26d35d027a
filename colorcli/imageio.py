"""Reading photos as grey + alpha + metadata, and encoding colour results with that metadata.

Decoding turns every supported mode into an upright grey plane with the photo's CIE L (8 or
16 bits), an optional alpha plane and the metadata worth keeping; :mod:`colorcli.deep` reads the
16-bit colour and grey+alpha samples that Pillow decodes at 8 bits or does not open. Encoding
writes 8-bit results with Pillow and 16-bit RGB(A) PNG and TIFF with :mod:`colorcli.deep`'s
writers (Pillow has no 16-bit colour mode), always tagged sRGB, with the photo's metadata
(:mod:`colorcli.photo_metadata`); :mod:`colorcli.atomic` puts them in place.

Multi-frame files (animated WebP, multi-page TIFF): the first frame is coloured and written as
a single image; the result carries a note saying so.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, TiffImagePlugin, UnidentifiedImageError

from colorcli import color, deep, render
from colorcli import photo_metadata as meta

try:  # HEIC/HEIF, phones' format: read when the [heif] extra (pillow-heif) is installed
    from pillow_heif import register_heif_opener
except ImportError:
    HEIF_READABLE = False
else:
    register_heif_opener()
    HEIF_READABLE = True

# colorcli applies its own --max-megapixels limit to every file (see load); Pillow's global one
# would otherwise reject big photos before that, with no way for the user to raise it
Image.MAX_IMAGE_PIXELS = None

DEFAULT_MAX_MEGAPIXELS = 180.0
# picked up even without pillow-heif: they then fail saying what to install, rather than go unseen
_HEIF_SUFFIXES = frozenset({".heic", ".heif"})
# what folder walks pick up (a file named on the command line is tried whatever its name): every
# format written below, plus GIF, JPEG 2000 (archives' formats) and HEIC, read and written as PNG
INPUT_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp"}
    | {".gif", ".jp2", ".j2k", ".jpf", ".jpx"}
    | _HEIF_SUFFIXES
)
# --format name -> (Pillow format, file suffix)
OUTPUT_FORMATS = {
    "jpg": ("JPEG", ".jpg"),
    "png": ("PNG", ".png"),
    "webp": ("WEBP", ".webp"),
    "tiff": ("TIFF", ".tif"),
    "bmp": ("BMP", ".bmp"),
}
_FORMAT_NAMES = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tiff", "BMP": "bmp"}
_SIXTEEN_BIT_FORMATS = frozenset({"png", "tiff"})
_X_RESOLUTION = 282  # and YResolution 283
_RESOLUTION_UNIT = 296
_EXIF_FORMATS = frozenset({"jpg", "png", "webp"})
_NO_ALPHA_FORMATS = frozenset({"jpg", "bmp"})
# a,b straying further than this (color.tint_spread) from one tint per lightness is colour of the
# photo's own, measured on at most _TINT_SAMPLE pixels (a few milliseconds however big the photo)
_OWN_COLOUR = 4.0
_TINT_SAMPLE = 1 << 16
IN_COLOUR = "in colour already: the model's colours replaced the photo's own"


class ImageError(Exception):
    """One file cannot be coloured; the message says why (the run goes on with the others)."""


@dataclass
class Picture:
    """A decoded photo: what colouring needs and what writing the result keeps."""

    grey: np.ndarray  # (H, W) uint8 or uint16, upright, with the photo's CIE L
    alpha: np.ndarray | None  # (H, W) uint8, or None
    format: str  # --format name of the source ("jpg", "png", ...)
    exif: bytes | None = None  # orientation reset to 1 (the pixels are upright)
    info: dict[str, Any] = field(default_factory=dict)  # dpi, xmp, comment, iptc, PNG text
    notes: tuple[str, ...] = ()  # what the result cannot keep of the file, for the user
    in_colour: bool = False  # colour of its own, beyond a toned print's tint: the result replaces it

    @property
    def size(self) -> tuple[int, int]:
        return self.grey.shape[1], self.grey.shape[0]

    @property
    def deep(self) -> bool:
        return self.grey.dtype == np.uint16

    @property
    def megapixels(self) -> float:
        return self.grey.size / 1e6


def find_images(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursively, hidden files and folders left out, as
    ``colorize`` walks a folder), in a stable order. A broken symbolic link with an image's name
    is listed too, so that it fails to load and is counted, not left out unseen."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in INPUT_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and (p.is_file() or (p.is_symlink() and not p.exists()))
    )


_reading = threading.local()


@contextlib.contextmanager
def reading(name: str | Path) -> Iterator[None]:
    """Mark ``name`` as the file this thread decodes, so a decoder's warning can name it."""
    _reading.name = str(name)
    try:
        yield
    finally:
        _reading.name = None


def file_being_read() -> str | None:
    """The file the calling thread is decoding (see :func:`reading`), or None."""
    return getattr(_reading, "name", None)


def load(source: str | Path | BinaryIO, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> Picture:
    """Decode a photo file (or binary stream) into a :class:`Picture`, or raise :class:`ImageError`."""
    with reading(source if isinstance(source, str | Path) else "-"):
        return _load(source, max_megapixels)


def check_megapixels(im: Image.Image, limit: float = DEFAULT_MAX_MEGAPIXELS) -> None:
    """Refuse an opened, not yet decoded image over ``limit`` megapixels: Pillow's own guard
    is off (see above), and a small file can hold a decompression bomb."""
    _check_size(im.size, limit)


def _check_size(size: tuple[int, int], limit: float) -> None:
    pixels = size[0] * size[1]
    if pixels > limit * 1e6:
        raise ImageError(
            f"{size[0]}×{size[1]} = {pixels / 1e6:.3g} megapixels is over the limit of "
            f"{limit:g} (decompression-bomb guard); raise it with --max-megapixels"
        )


def _load(source: str | Path | BinaryIO, max_megapixels: float) -> Picture:
    try:
        return _decode(source, max_megapixels)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError(_describe(exc)) from None


def _decode(source: str | Path | BinaryIO, max_megapixels: float) -> Picture:
    try:
        with Image.open(source) as im:
            check_megapixels(im, max_megapixels)
            return from_pil(im)
    except UnidentifiedImageError:
        if _heif_without_plugin(source):
            raise ImageError("HEIC/HEIF photos need the heif extra: pip install 'colorcli[heif]'") from None
    return _unopened_tiff(source, max_megapixels)


def _heif_without_plugin(source: str | Path | BinaryIO) -> bool:
    named = isinstance(source, str | Path)
    return not HEIF_READABLE and named and Path(source).suffix.lower() in _HEIF_SUFFIXES


def _unopened_tiff(source: str | Path | BinaryIO, max_megapixels: float) -> Picture:
    """A file Pillow does not open that is a 16-bit grey+alpha TIFF (Photoshop's grey with
    transparency) or a CIELAB one (16-bit, or 8-bit ICCLab): its samples read at full depth, its
    metadata kept as :func:`from_pil` keeps a TIFF's. Any other such file is an
    :class:`ImageError` that says what it holds and how to save it."""
    with open(source, "rb") if isinstance(source, str | Path) else contextlib.nullcontext(source) as fh:
        tags = _first_directory(fh)
        if tags is None:
            raise ImageError("not an image Pillow can read (unknown format, empty or corrupt file)")
        how, layout = deep.tiff_layout(tags), _layout_name(tags)
        if how is None:
            raise ImageError(f"a TIFF of {layout}, which Pillow cannot decode: {_resave_hint(tags)}")
        if how == "imagecodecs" and deep.imagecodecs() is None:
            raise ImageError(f"an LZW or tiled TIFF of {layout}: pip install 'colorcli[deep]' reads it")
        _check_size((tags[256], tags[257]), max_megapixels)
        stored = deep.tiff_samples(tags, fh)
        if stored is None:
            raise ImageError(f"a TIFF of {layout} whose samples do not fill its stated size")
        fh.seek(0)
        exif = Image.Exif()
        exif.load_from_fp(fh)
        exif_bytes = meta.tiff_exif(tags, exif, fh)
    info = {"dpi": _tiff_dpi(tags), "xmp": tags.get(deep.XMP_TAG), "icc_profile": tags.get(deep.ICC_TAG)}
    info = {k: v for k, v in info.items() if v is not None}
    turned_by = tags.get(meta.ORIENTATION, 1)
    grey, alpha, in_colour = _deep_planes(stored, turned_by, tags.get(262))
    notes = ("multi-frame file: only the first frame was coloured",) if tags.next else ()
    keep = meta.kept_info(info, turned_by) | meta.tiff_iptc(tags)
    return Picture(grey, alpha, "tiff", exif_bytes, keep, notes + _profile_notes(grey, info), in_colour)


def tiff_holds_grey(path: str | Path) -> bool:
    """Whether ``path`` is a TIFF of grey samples, with an alpha or extra channel or not: an
    answer for a file Pillow does not open, Photoshop's 16-bit grey with transparency say."""
    try:
        with open(path, "rb") as fh:
            tags = _first_directory(fh)
    except OSError:
        return False
    return tags is not None and tags.get(262) in _GREY_PHOTOMETRICS


def _first_directory(fh: BinaryIO) -> TiffImagePlugin.ImageFileDirectory_v2 | None:
    """The first directory of the TIFF ``fh``; None if it is no TIFF or the directory cannot be
    read or names no size, depth or photometric interpretation."""
    try:
        fh.seek(0)
        head = fh.read(8)
        if head[:4] not in (b"II*\0", b"MM\0*"):
            return None
        directory = TiffImagePlugin.ImageFileDirectory_v2(head)
        fh.seek(directory.next)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut directory: said by the caller as "corrupt"
            directory.load(fh)
    except (OSError, SyntaxError, ValueError, struct.error):
        return None
    return directory if {256, 257, 258, 262} <= set(directory) else None


_GREY_PHOTOMETRICS = (0, 1)  # MinIsWhite, MinIsBlack
_PHOTOMETRIC_NAMES = {
    0: "grey",
    1: "grey",
    2: "RGB",
    3: "palette",
    5: "CMYK",
    6: "YCbCr",
    8: "CIELAB",
    9: "ICC CIELAB",
}


def _layout_name(tags: TiffImagePlugin.ImageFileDirectory_v2) -> str:
    """What a TIFF holds, as "16-bit grey with alpha"."""
    bits = deep.tag_values(tags.get(258, 1))
    kind = _PHOTOMETRIC_NAMES.get(tags.get(262), f"photometric {tags.get(262)}")
    depth = f"{bits[0]}-bit" if len(set(bits)) == 1 else "-".join(map(str, bits)) + "-bit"
    extras = deep.tag_values(tags.get(338, ()))
    extra = "" if not extras else " with alpha" if set(extras) <= {1, 2} else " with an extra channel"
    return f"{depth} {kind}{extra}"


def _resave_hint(tags: TiffImagePlugin.ImageFileDirectory_v2) -> str:
    bits = set(deep.tag_values(tags.get(258, 1)))  # BitsPerSample
    formats = set(deep.tag_values(tags.get(339, 1)))  # SampleFormat: 1 unsigned integers
    extras = set(deep.tag_values(tags.get(338, ())))  # ExtraSamples: 2 unassociated alpha
    if not bits <= {8, 16} or formats != {1}:
        return "save it with 8- or 16-bit unsigned integer samples, or as PNG"
    if extras - {2}:  # an extra channel that is no (unpremultiplied) alpha
        return "save it without its extra channel, or with it as transparency, or as PNG"
    return "save it in grey or RGB, or as PNG"


def _tiff_dpi(tags: TiffImagePlugin.ImageFileDirectory_v2) -> tuple[float, float] | None:
    """A TIFF's resolution in dots per inch, as Pillow gives it for the TIFFs it opens."""
    x, y, unit = tags.get(_X_RESOLUTION), tags.get(_X_RESOLUTION + 1), tags.get(_RESOLUTION_UNIT, 2)
    if not x or not y or unit not in (2, 3):
        return None
    scale = 2.54 if unit == 3 else 1.0  # per centimetre
    return float(x) * scale, float(y) * scale


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if "truncated" in text or isinstance(exc, EOFError | deep.CorruptData):
        return f"truncated or corrupt image data ({text or type(exc).__name__})"
    return f"cannot decode: {text or type(exc).__name__}"


def upright(im: Image.Image) -> Image.Image:
    """``im`` turned as its EXIF (or TIFF) orientation tag says; pass a TIFF before it is loaded."""
    if im.format == "TIFF":
        # Pillow turns TIFFs itself while decoding, and since 11.0 gives 5–8 their turned size
        # from the start; but when it memory-maps an uncompressed strip it lays the stored rows
        # out at that turned size, shearing them. Read through the open file instead of the map.
        if im.getexif().get(meta.ORIENTATION) in (5, 6, 7, 8):
            im.filename = ""
        im.load()
        return im
    orientation = im.getexif().get(meta.ORIENTATION, 1)
    return ImageOps.exif_transpose(im) if orientation not in (1, None) else im


def from_pil(im: Image.Image) -> Picture:
    """A :class:`Picture` from an opened image (first frame, upright; see :func:`upright`)."""
    # a TIFF's samples and sub-directories are read from the file, which upright() may close by
    # decoding it; and what is lost before getexif() and upright(), which may decode a PNG
    icc = im.info.get("icc_profile")
    how = deep.reader(im)
    if how is not None and _foreign_profile(icc) is not None:
        how = None  # Pillow converts another colour profile to sRGB, at 8 bits: right tones first
    try:
        stored = deep.samples(im) if how else None
    except deep.CorruptData as exc:  # an ImageError also where an API caller opened the image
        raise ImageError(_describe(exc)) from None
    notes = _what_is_lost(im, full_depth=stored is not None, reader=how)
    exif = im.getexif()
    turned_by = exif.get(meta.ORIENTATION, 1)
    exif_bytes = meta.tiff_exif(im.tag_v2, exif, getattr(im, "fp", None)) if im.format == "TIFF" else None
    if stored is not None:
        photometric = im.tag_v2.get(262) if im.format == "TIFF" else None
        grey, alpha, in_colour = _deep_planes(stored, turned_by, photometric)
    else:
        turned = upright(im)
        grey, alpha, in_colour = _grey_and_alpha(to_srgb(_transparency_as_alpha(turned), icc))
        if im.format == "TIFF" and im.tag_v2.get(262) == 0 and grey.dtype == np.uint16:
            grey = 65535 - grey  # MinIsWhite: Pillow inverts 8-bit samples itself, not 16-bit ones
        notes += _profile_notes(grey, im.info)
    if len(exif) and im.format != "TIFF":
        exif_bytes = meta.upright_exif(exif)
    info = dict(im.info)
    if im.format == "TIFF" and _X_RESOLUTION not in im.tag_v2:
        info.pop("dpi", None)  # Pillow's stand-in of 1 dpi for a TIFF that names no resolution
    keep = meta.kept_info(info, turned_by)
    if im.format == "PNG":
        keep["text"] = {k: v for k, v in getattr(im, "text", {}).items() if isinstance(v, str)}
    keep.update(meta.iptc_of(im))
    return Picture(grey, alpha, _FORMAT_NAMES.get(im.format or "", "png"), exif_bytes, keep, notes, in_colour)


def _deep_planes(
    stored: np.ndarray, turned_by: int | None, photometric: int | None
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """The upright grey plane and 8-bit alpha plane of (H, W, C) samples as stored: 16-bit grey,
    grey+alpha, RGB or RGBA, or (by a TIFF's ``photometric``) CIELAB of 8 or 16 bits, whose grey
    plane keeps that depth; and whether the photo is in colour (:func:`_in_colour`)."""
    in_colour = False
    if photometric in deep.LAB_PHOTOMETRICS:
        grey = _lightness_grey(stored.dtype.itemsize * 8)[stored[..., 0]]
    elif stored.shape[2] >= 3:
        grey = render.luminance16(stored[..., :3])
        in_colour = _in_colour(stored, np.iinfo(stored.dtype).max)
    else:
        grey = 65535 - stored[..., 0] if photometric == 0 else stored[..., 0]  # 0: MinIsWhite
    has_alpha = stored.shape[2] in (2, 4)
    alpha = deep.orient((stored[..., -1] >> 8).astype(np.uint8), turned_by) if has_alpha else None
    return deep.orient(grey, turned_by), alpha, in_colour


def _in_colour(rgb: np.ndarray, top: int) -> bool:
    """Whether a photo has colour of its own, beyond the tint of a toned print (sepia,
    selenium, cyanotype), which colouring is meant to replace. ``rgb``: (H, W, 3+) samples,
    ``top`` their white."""
    step = max(1, math.isqrt(rgb.shape[0] * rgb.shape[1] // _TINT_SAMPLE))
    sample = rgb[::step, ::step, :3]
    return color.tint_spread(sample.astype(np.float32) / top) > _OWN_COLOUR


@functools.lru_cache(maxsize=2)
def _lightness_grey(bits: int) -> np.ndarray:
    """The grey value, at ``bits``, of each stored CIE L level (0 to 2**bits - 1 for L 0 to 100),
    as CIELAB files store it."""
    top = 2**bits - 1
    lightness = np.arange(top + 1, dtype=np.float32) * np.float32(100.0 / top)
    return np.round(color.lightness_to_grey(lightness) * top).astype(np.uint8 if bits == 8 else np.uint16)


def _profile_notes(grey: np.ndarray, info: dict[str, Any]) -> tuple[str, ...]:
    if grey.dtype == np.uint16 and _foreign_profile(info.get("icc_profile")) is not None:
        return ("16-bit grey file: its colour profile was not applied, its tones read as sRGB",)
    return ()


def _what_is_lost(im: Image.Image, full_depth: bool, reader: str | None) -> tuple[str, ...]:
    notes = []
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        notes.append(f"multi-frame file: only the first of {frames} frames was coloured")
    if full_depth:
        return tuple(notes)
    # Pillow has no 16-bit colour or grey+alpha mode: it decodes such PNG and TIFF at 8 bits
    raw = deep.png_raw_mode(im) if im.format == "PNG" else ""
    if im.format == "PNG":
        sixteen = raw.startswith(deep.PNG_MODES)
    else:
        bits = im.tag_v2.get(258) if im.format == "TIFF" else None  # BitsPerSample
        sixteen = im.mode.startswith("RGB") and isinstance(bits, tuple) and max(bits) > 8
    if sixteen:
        kind = "grey+alpha" if raw.startswith("LA") else "colour"
        missing = reader == "imagecodecs" and deep.imagecodecs() is None
        hint = "; pip install 'colorcli[deep]' reads it at 16" if missing else ""
        notes.append(f"16-bit {kind} file: read and written at 8 bits per channel{hint}")
    return tuple(notes)


def _transparency_as_alpha(im: Image.Image) -> Image.Image:
    """1-bit, grey or RGB with one value marked transparent (PNG's tRNS, GIF) as LA or RGBA
    (16-bit grey: :func:`_grey_and_alpha`).

    Before the colour conversion, which changes the values the mark names.
    """
    if im.mode in ("1", "L", "RGB") and im.info.get("transparency") is not None:
        return im.convert("RGBA" if im.mode == "RGB" else "LA")
    return im


def to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """The pixels in sRGB, through the photo's embedded ICC profile when it has another one.

    A scan tagged Dot Gain 20 % or a photo in Adobe RGB has another lightness than its numbers
    read as sRGB; the result is tagged sRGB, so the tones are kept only if the input is
    converted. 8-bit grey, RGB and palette only (Pillow's colour management); an unreadable
    profile is ignored, as browsers do.
    """
    profile = _foreign_profile(icc) if im.mode in ("L", "LA", "RGB", "RGBA", "P") else None
    if profile is None:
        return im
    from PIL import ImageCms

    if im.mode == "P":  # a palette's colours are in the profile's space too
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")

    try:
        alpha = im.getchannel("A") if im.mode.endswith("A") else None
        base = im.convert(im.mode[:-1]) if alpha is not None else im
        converted = ImageCms.profileToProfile(base, profile, _srgb_cms_profile(), outputMode="RGB")
    except (OSError, ImageCms.PyCMSError):
        return im
    assert converted is not None
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


def _foreign_profile(icc: bytes | None) -> Any:
    """The photo's ICC profile when its pixels are not to be read as sRGB; None for no profile,
    an sRGB one, or one that cannot be read (ignored, as browsers do)."""
    if not icc:
        return None
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return None if "srgb" in ImageCms.getProfileDescription(profile).lower() else profile
    except (OSError, ImageCms.PyCMSError):
        return None


@functools.lru_cache(maxsize=1)
def _srgb_cms_profile() -> Any:
    from PIL import ImageCms

    return ImageCms.createProfile("sRGB")


def _grey_and_alpha(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """The grey and alpha planes of an image in sRGB, and whether it is in colour (:func:`_in_colour`)."""
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("1", "La", "PA"):
        im = im.convert({"1": "L", "La": "LA", "PA": "RGBA"}[mode])
    elif mode in ("CMYK", "YCbCr", "RGBX", "RGBa"):
        im = im.convert("RGBA" if mode == "RGBa" else "RGB")
    mode = im.mode
    if mode == "LAB":  # an 8-bit CIELAB TIFF: L itself, the rest is colour
        return _lightness_grey(8)[np.asarray(im)[..., 0]], None, False
    if mode in ("L", "LA"):
        arr = np.asarray(im)
        if mode == "L":
            return arr, None, False
        return np.ascontiguousarray(arr[..., 0]), np.ascontiguousarray(arr[..., 1]), False
    if mode in ("RGB", "RGBA"):
        arr = np.asarray(im)
        alpha = np.ascontiguousarray(arr[..., 3]) if mode == "RGBA" else None
        return render.luminance8(arr), alpha, _in_colour(arr, 255)
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im)
        if mode == "I" and (arr.min() < 0 or arr.max() > 65535):
            raise ImageError(
                "integer samples outside 0..65535 (signed, or 32-bit) are not supported; "
                "convert the image to unsigned 16-bit grey first"
            )
        marked = im.info.get("transparency")  # a 16-bit grey PNG's tRNS value
        alpha = np.where(arr == marked, 0, 255).astype(np.uint8) if isinstance(marked, int) else None
        return np.ascontiguousarray(arr, dtype=np.uint16), alpha, False
    raise ImageError(f"unsupported image mode {mode!r}; convert it to 8- or 16-bit grey or RGB first")


def notes_for(picture: Picture, fmt: str) -> tuple[str, ...]:
    """What a result written as ``fmt`` lacks, for the user: the file's notes, then the format's."""
    notes = (IN_COLOUR, *picture.notes) if picture.in_colour else picture.notes
    if picture.alpha is not None and fmt in _NO_ALPHA_FORMATS:
        notes += (f"{OUTPUT_FORMATS[fmt][0]} has no transparency: the alpha was dropped",)
    if "iptc" in picture.info and fmt not in meta.IPTC_FORMATS:
        where, keeps = f"not kept in {OUTPUT_FORMATS[fmt][0]}", "jpg or tiff keeps"
    elif "iptc" in picture.info and fmt == "jpg" and meta.app13(picture.info) is None:
        where, keeps = "too large for a JPEG segment", "tiff keeps"
    else:
        return notes
    return (*notes, f"IPTC captions and keywords {where}: --format {keeps} them")


# the largest side each format's encoder takes (libjpeg's 16-bit sizes, libwebp's 14-bit ones)
_MAX_SIDE = {"jpg": ("JPEG", 65535), "webp": ("WebP", 16383)}


def check_encodable(size: tuple[int, int], fmt: str) -> None:
    """ImageError, saying what to do, for a size the format cannot hold: its encoder would fail
    only after the output file was opened, in words that read like a disk fault."""
    name, limit = _MAX_SIDE.get(fmt, ("", 0))
    if limit and max(size) > limit:
        raise ImageError(
            f"{name} holds at most {limit} pixels a side and this image is "
            f"{size[0]}×{size[1]}; choose --format png or tiff"
        )


def output_format(picture_format: str, requested: str) -> str:
    """The --format name to write: the source's for ``keep``."""
    return picture_format if requested == "keep" else requested


@functools.lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """The sRGB profile results are tagged with. Little CMS stamps a profile with the time it
    was made (header bytes 24-35); zeroed, as the ICC header allows, so that colouring the
    same photo twice gives the same bytes."""
    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[24:36] = bytes(12)
    return bytes(profile)


def encode(picture: Picture, rgb: Image.Image | np.ndarray, fmt: str, quality: int, out: BinaryIO) -> None:
    """Write ``rgb`` as ``fmt`` with the picture's metadata.

    ``rgb`` is an 8-bit PIL image (RGB, RGBX, or RGBA carrying the alpha already), or (H, W, 3)
    uint16, to which the picture's alpha is added here.
    """
    if isinstance(rgb, np.ndarray):
        pixels = rgb if picture.alpha is None else np.dstack([rgb, picture.alpha.astype(np.uint16) * 257])
        dpi = picture.info.get("dpi")
        if fmt == "png":
            deep.write_png16(pixels, out, srgb_profile(), dpi, picture.exif, meta.png_text(picture.info))
        else:
            deep.write_tiff16(pixels, out, srgb_profile(), dpi, meta.tiff_tags(picture.exif, picture.info))
        return
    image = rgb
    if image.mode == "RGBA" and fmt in _NO_ALPHA_FORMATS:
        # BMP could hold it in a 32-bit pixel's spare byte, but readers, Pillow too, ignore it there
        image = image.convert("RGB")
    elif image.mode == "RGBX" and fmt != "jpg":
        image = image.convert("RGB")  # only the JPEG encoder takes the padded pixels as they are
    if picture.alpha is not None and image.mode == "RGB" and fmt not in _NO_ALPHA_FORMATS:
        image = image.copy() if image is rgb else image  # never change the caller's image
        image.putalpha(Image.fromarray(picture.alpha))
    params: dict[str, Any] = {"icc_profile": srgb_profile()}
    if picture.exif and fmt in _EXIF_FORMATS:
        params["exif"] = picture.exif
    if "dpi" in picture.info and fmt in ("jpg", "png", "tiff", "bmp"):
        params["dpi"] = picture.info["dpi"]
    if "xmp" in picture.info and fmt in ("jpg", "webp"):
        params["xmp"] = picture.info["xmp"]
    if fmt == "tiff" and (tiff_tags := meta.tiff_tags(picture.exif, picture.info)):
        params["tiffinfo"] = tiff_tags
    if fmt in ("jpg", "webp"):
        params["quality"] = quality
    if fmt == "jpg" and "comment" in picture.info:
        params["comment"] = picture.info["comment"]
    if fmt == "png":
        params["compress_level"] = 3  # zlib's fast levels: much quicker on big photos, a little larger
        if text := meta.png_text(picture.info):
            from PIL.PngImagePlugin import PngInfo

            chunks = PngInfo()
            for key, value in text.items():
                chunks.add_itxt(key, value)
            params["pnginfo"] = chunks
    if fmt == "bmp":
        params = {k: v for k, v in params.items() if k == "dpi"}  # BMP carries nothing else
    if fmt == "jpg" and "iptc" in picture.info and (segment := meta.app13(picture.info)):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", **params)
        out.write(meta.with_segment(buffer.getvalue(), segment))
        return
    image.save(out, format=OUTPUT_FORMATS[fmt][0], **params)


def keeps_sixteen_bits(picture: Picture, fmt: str) -> bool:
    return picture.deep and fmt in _SIXTEEN_BIT_FORMATS
