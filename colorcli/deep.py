"""16-bit samples where Pillow has none: read at their full 16 bits from files Pillow reads at
8 bits or cannot open at all, and written as 16-bit PNG and TIFF, which Pillow cannot write.

Pillow has no 16-bit colour or grey+alpha mode: it decodes a scanner's 48-bit TIFF and 16-bit
colour and grey+alpha PNG at 8 bits, and does not open a 16-bit grey+alpha TIFF (Photoshop's
grey with transparency) or a 16-bit CIELAB one at all. TIFF samples in strips, uncompressed
(what scanners write by default) or deflated (Photoshop's "ZIP"), are read by a small reader of
colorcli's own; PNG, LZW-compressed and tiled TIFF by imagecodecs, the [deep] extra, when it is
installed. This module reads samples as stored and writes the metadata it is handed; turning them
upright and into grey is :mod:`imageio`'s, and choosing the metadata :mod:`photo_metadata`'s.
"""

from __future__ import annotations

import importlib
import math
import struct
import zlib
from fractions import Fraction
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, TiffImagePlugin

ICC_TAG = 34675
XMP_TAG = 700
IPTC_TAG = 33723  # IPTC-NAA: IPTC-IIM captions, keywords, credit
_LONG = 4  # TIFF field type
_ASCII = 2  # TIFF field type
# tags written as bytes: XMP as BYTE, as Pillow and Adobe write it; IPTC as UNDEFINED, as Pillow does
_BYTE_TAGS = {XMP_TAG: 1, IPTC_TAG: 7}
_OWN_COMPRESSIONS = (1, 8, 32946)  # none, and deflate (Adobe's code and the old one)
PNG_MODES = ("RGB;16", "RGBA;16", "LA;16")
LAB_PHOTOMETRICS = (8, 9)  # CIELAB, ICCLab: L first, 0..65535 for 0..100 at 16 bits
# the colour spaces read, by samples a pixel: grey (MinIsWhite, MinIsBlack) + alpha; RGB or
# CIELAB; RGB + alpha
_PHOTOMETRICS = {2: (0, 1), 3: (2, *LAB_PHOTOMETRICS), 4: (2,)}
_UNASSOCIATED_ALPHA = (2,)  # the one extra sample Pillow reads as alpha (LA, RGBA)


class CorruptData(ValueError):
    """A file's samples are cut short or cannot be decompressed; the message says how."""


def reader(im: Image.Image) -> str | None:
    """What reads an opened image's 16-bit colour or grey+alpha samples (or CIELAB ones) at
    full depth: "strips" (colorcli's own TIFF reader), "imagecodecs", or None where Pillow's
    reading is all there is. The caller still checks the colour profile: Pillow converts one other than sRGB,
    at 8 bits, so a 16-bit reading of such a file would have the wrong tones."""
    if im.format == "TIFF":
        how = tiff_layout(im.tag_v2)
    elif im.format == "PNG" and png_raw_mode(im).startswith(PNG_MODES) and "transparency" not in im.info:
        how = "imagecodecs"  # (a 16-bit colour key is left to Pillow, which makes it an alpha plane)
    else:
        return None
    # the file must still be there to read: not decoded by a caller's load()
    return how if getattr(im, "fp", None) is not None else None


def samples(im: Image.Image) -> np.ndarray | None:
    """The samples, (H, W, C) as stored (not yet turned upright), of an opened image that
    :func:`reader` gives a reader; None when that is imagecodecs and the [deep] extra is missing.
    Raises :class:`CorruptData`."""
    if im.format == "TIFF":
        return tiff_samples(im.tag_v2, im.fp)
    codecs = imagecodecs()
    if codecs is None:
        return None
    im.fp.seek(0)
    try:
        pixels = codecs.png_decode(im.fp.read())
    except RuntimeError as exc:  # imagecodecs' PngError
        raise CorruptData(str(exc)) from None
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.dtype != np.uint16 or pixels.shape[:2] != im.size[::-1]:
        return None
    return np.ascontiguousarray(pixels)


def imagecodecs() -> Any:
    """The imagecodecs module (the [deep] extra), or None when it is not installed."""
    try:
        return importlib.import_module("imagecodecs")
    except ImportError:
        return None


def png_raw_mode(im: Image.Image) -> str:
    """The raw mode of a PNG's not yet decoded tile ("RGB;16B", "LA;16B"), or ""."""
    return str(im.tile[0].args) if getattr(im, "tile", None) else ""


def tiff_layout(tags: TiffImagePlugin.ImageFileDirectory_v2) -> str | None:
    """How a TIFF holds 16-bit RGB(A), CIELAB (8-bit too) or grey+alpha: "strips" where
    colorcli's own reader takes it (unsigned samples in strips, interleaved or one plane per
    sample, uncompressed or deflated), "imagecodecs" where only that reads it (LZW, tiled), None
    if it holds none."""
    bits = tags.get(258)
    count = len(bits) if isinstance(bits, tuple) else 0
    extra = tags.get(338, _UNASSOCIATED_ALPHA if count == 4 else ())
    alpha = count in (2, 4)
    formats = tags.get(339, 1)
    formats = formats if isinstance(formats, tuple) else (formats,) * count
    lab = tags.get(262) in LAB_PHOTOMETRICS
    depths = ({8}, {16}) if lab else ({16},)  # 8-bit: only Lab, where Pillow misses ICCLab
    if (
        count not in _PHOTOMETRICS
        or set(bits) not in depths
        or tag_values(extra) != (_UNASSOCIATED_ALPHA if alpha else ())
        or tags.get(262) not in _PHOTOMETRICS[count]
        or tags.get(284, 1) not in (1, 2)  # interleaved, or one plane per sample
        # unsigned integers (of CIELAB only L is used: its a,b may be signed)
        or set(formats[:1] if lab else formats) != {1}
    ):
        return None
    own = (
        tags.get(259, 1) in _OWN_COMPRESSIONS
        and tags.get(317, 1) in (1, 2)  # no predictor, or horizontal differencing
        and 322 not in tags  # not tiled
    )
    return "strips" if own else "imagecodecs"


def tag_values(value: Any) -> tuple[Any, ...]:
    """A TIFF tag's values as a tuple: Pillow gives a tag of one value as that value."""
    return value if isinstance(value, tuple) else (value,)


def tiff_samples(tags: TiffImagePlugin.ImageFileDirectory_v2, fp: BinaryIO) -> np.ndarray | None:
    """The samples, (H, W, C) as stored, of the TIFF ``fp`` whose first directory is ``tags`` and
    which :func:`tiff_layout` gives a reader; None when that is imagecodecs and it is missing."""
    how = tiff_layout(tags)
    if how == "strips":
        return _tiff_strips(tags, fp)
    codecs = imagecodecs() if how == "imagecodecs" else None
    if codecs is None:
        return None
    fp.seek(0)
    try:
        pixels = codecs.tiff_decode(fp.read(), index=0)
    except RuntimeError as exc:  # imagecodecs' TiffError
        raise CorruptData(str(exc)) from None
    if tags.get(284, 1) == 2:  # one plane per sample
        pixels = np.moveaxis(pixels, 0, 2)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.dtype != _dtype(tags) or pixels.shape[:2] != (tags[257], tags[256]):
        return None
    return np.ascontiguousarray(pixels)


def _dtype(tags: TiffImagePlugin.ImageFileDirectory_v2) -> type[np.unsignedinteger]:
    return np.uint8 if tags[258][0] == 8 else np.uint16


def _tiff_strips(tags: TiffImagePlugin.ImageFileDirectory_v2, fp: BinaryIO) -> np.ndarray | None:
    count, dtype = len(tags[258]), _dtype(tags)
    width, height = tags[256], tags[257]
    size = width * height * count * np.dtype(dtype).itemsize
    offsets, counts = tags.get(273), tags.get(279)
    if not offsets or not counts or len(offsets) != len(counts):
        return None
    deflated = tags.get(259, 1) != 1
    stored, filled = bytearray(size), 0
    view = memoryview(stored)
    try:
        for offset, length in zip(offsets, counts, strict=True):
            if filled >= size:  # zlib reads a max_length of 0 as "no limit"
                break
            fp.seek(offset)
            if deflated:
                # never more than the header's size: a deflated strip cannot be a decompression bomb
                chunk = zlib.decompressobj().decompress(fp.read(length), size - filled)
                view[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
            else:
                filled += fp.readinto(view[filled : filled + min(length, size - filled)])
    except zlib.error as exc:
        raise CorruptData(str(exc)) from None
    if filled < size:
        raise CorruptData(f"{filled} of {size} bytes of samples")
    order = "<" if tags.prefix == b"II" else ">"
    pixels = np.frombuffer(stored, dtype=np.dtype(dtype).newbyteorder(order)).astype(dtype, copy=False)
    planar = tags.get(284, 1) == 2
    pixels = pixels.reshape((count, height, width) if planar else (height, width, count))
    if tags.get(317, 1) == 2:  # each sample stored as its difference from its left neighbour's
        np.cumsum(pixels, axis=2 if planar else 1, dtype=dtype, out=pixels)
    return np.ascontiguousarray(pixels.transpose(1, 2, 0)) if planar else pixels


def orient(plane: np.ndarray, orientation: int | None) -> np.ndarray:
    """A stored (H, W) plane turned upright as a TIFF/EXIF orientation tag says."""
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.T,
        6: lambda a: a[::-1].T,
        7: lambda a: a[::-1, ::-1].T,
        8: lambda a: a[:, ::-1].T,
    }.get(orientation or 1, lambda a: a)(plane)
    return np.ascontiguousarray(turned)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png16(
    pixels: np.ndarray,
    out: BinaryIO,
    icc: bytes,
    dpi: tuple[float, float] | None,
    exif: bytes | None,
    text: dict[str, str | bytes],
) -> None:
    """(H, W, 3 or 4) uint16 as a PNG with its colour profile, resolution, EXIF and text chunks."""
    height, width, channels = pixels.shape
    colour_type = 2 if channels == 3 else 6
    out.write(b"\x89PNG\r\n\x1a\n")
    out.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)))
    out.write(_png_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(icc)))
    if dpi is not None:
        # pixels per metre, rounded as Pillow's PNG writer does for the 8-bit results
        per_metre = [int(d / 0.0254 + 0.5) for d in dpi]
        out.write(_png_chunk(b"pHYs", struct.pack(">IIB", *per_metre, 1)))
    if exif:
        out.write(_png_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00")))
    for key, value in text.items():
        data = value if isinstance(value, bytes) else value.encode()
        out.write(_png_chunk(b"iTXt", key.encode("latin-1", "replace")[:79] + b"\x00\x00\x00\x00\x00" + data))
    packer = zlib.compressobj(3)
    rows = max(1, (1 << 20) // (width * channels))
    for y0 in range(0, height, rows):
        block = pixels[y0 : y0 + rows].astype(">u2").view(np.uint8).reshape(-1, width * channels * 2)
        # filter type 0 (None) in front of every scanline
        framed = np.concatenate([np.zeros((block.shape[0], 1), np.uint8), block], axis=1)
        compressed = packer.compress(framed.tobytes())
        if compressed:  # zlib buffers small blocks; Pillow's reader rejects empty IDAT chunks
            out.write(_png_chunk(b"IDAT", compressed))
    out.write(_png_chunk(b"IDAT", packer.flush()))
    out.write(_png_chunk(b"IEND", b""))


def write_tiff16(
    pixels: np.ndarray,
    out: BinaryIO,
    icc: bytes,
    dpi: tuple[float, float] | None,
    tags: dict[int, bytes | dict[int, Any]],
) -> None:
    """(H, W, 3 or 4) uint16 as a baseline little-endian TIFF, one uncompressed strip, with its
    colour profile and resolution. ``tags``: more of them, as stored text (ASCII), XMP or IPTC
    bytes, or an EXIF or GPS directory's tags."""
    height, width, channels = pixels.shape
    data = pixels.astype("<u2").tobytes()
    # (tag, type, count, value or payload or a sub-directory's tags)
    entries_of: list[tuple[int, int, int, bytes | int | dict[int, Any]]] = []
    bits = struct.pack("<" + "H" * channels, *([16] * channels))
    entries_of += [(256, 4, 1, width), (257, 4, 1, height), (258, 3, channels, bits), (259, 3, 1, 1)]
    entries_of += [(262, 3, 1, 2), (273, 4, 1, 0), (277, 3, 1, channels), (278, 4, 1, height)]
    entries_of += [(279, 4, 1, len(data)), (284, 3, 1, 1)]
    if channels == 4:
        entries_of.append((338, 3, 1, 2))  # extra sample: unassociated alpha
    if dpi is not None:
        x_dpi, y_dpi = dpi
        entries_of += [(282, 5, 1, _tiff_rational(x_dpi)), (283, 5, 1, _tiff_rational(y_dpi)), (296, 3, 1, 2)]
    entries_of.append((ICC_TAG, 7, len(icc), icc))
    for tag, value in tags.items():
        if isinstance(value, dict):
            entries_of.append((tag, _LONG, 1, value))  # the directory's offset, filled in below
        elif tag in _BYTE_TAGS:
            entries_of.append((tag, _BYTE_TAGS[tag], len(value), value))
        else:
            entries_of.append((tag, _ASCII, len(value) + 1, value + b"\x00"))
    entries_of.sort()  # readers may require the IFD's entries in ascending tag order
    ifd_size = 2 + 12 * len(entries_of) + 4
    payload_at = 8 + ifd_size
    payloads = b""
    entries = b""
    for tag, kind, count, value in entries_of:
        if isinstance(value, dict):
            at = payload_at + len(payloads)
            entries += struct.pack("<HHII", tag, kind, count, at)
            payloads += _directory_bytes(tag, value, at)
        elif isinstance(value, bytes) and len(value) > 4:
            entries += struct.pack("<HHII", tag, kind, count, payload_at + len(payloads))
            payloads += value + b"\x00" * (len(value) % 2)
        elif isinstance(value, bytes):
            entries += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
        elif kind == 3:
            entries += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            entries += struct.pack("<HHII", tag, kind, count, value)
    strip_at = payload_at + len(payloads)
    entries = entries.replace(struct.pack("<HHII", 273, 4, 1, 0), struct.pack("<HHII", 273, 4, 1, strip_at))
    out.write(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries_of)) + entries + b"\x00" * 4)
    out.write(payloads)
    out.write(data)


def _directory_bytes(tag: int, directory: dict[int, Any], at: int) -> bytes:
    """An EXIF or GPS directory as a little-endian TIFF writes it at offset ``at``, padded to a
    whole word; Pillow's writer knows each EXIF tag's type."""
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    ifd = ImageFileDirectory_v2(group=tag)
    for key, value in directory.items():
        ifd[key] = value
    data = ifd.tobytes(at)
    return data + b"\x00" * (len(data) % 2)


def _tiff_rational(value: float) -> bytes:
    """``value`` as a TIFF RATIONAL: the nearest fraction whose terms both fit in 32 bits."""
    fraction = Fraction(float(value)).limit_denominator(max(1, 0xFFFFFFFF // max(1, math.ceil(value))))
    return struct.pack("<II", fraction.numerator, fraction.denominator)
