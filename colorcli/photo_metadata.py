"""The metadata a colour result carries over from its photo, as an archive catalogues it: EXIF
(the descriptive tags, camera settings, GPS position), XMP, IPTC captions and keywords, and a
PNG's text chunks; and how each is written into the formats that keep it.

:mod:`colorcli.imageio` reads them with the pixels and writes them with the result. (A model's
own metadata is :mod:`colorcli.metadata`'s.)
"""

from __future__ import annotations

import re
import struct
from typing import Any, BinaryIO

from PIL import Image, TiffImagePlugin

from colorcli import deep

ORIENTATION = 0x0112
# IPTC-IIM (captions, keywords, credit, the archive's own fields): a TIFF's IPTC-NAA tag
# (deep.IPTC_TAG), and in a JPEG the resources of Photoshop's APP13 segment holding it and the
# digest that tells ExifTool and Photoshop it agrees with the XMP
_IPTC_RESOURCE, _IPTC_DIGEST_RESOURCE = 0x0404, 0x0425
IPTC_FORMATS = frozenset({"jpg", "tiff"})
_APP13_HEADER = b"Photoshop 3.0\x00"
_XMP_PNG_KEY = "XML:com.adobe.xmp"  # PNG keeps XMP as an iTXt text chunk of this name
_RAW_EXIF_KEY = "raw profile type exif"  # ImageMagick's text chunk of hex EXIF, which Pillow reads
# the tags that describe a photo, in a TIFF's own directory and in EXIF's first one alike:
# DocumentName, ImageDescription, Make, Model, PageName, DateTime, Artist, Copyright. An
# archive's catalogue entry lives in them.
_DESCRIPTIVE_TAGS = (269, 270, 271, 272, 285, 306, 315, 33432)
_IMAGE_DESCRIPTION = 270
_LAYOUT_DESCRIPTIONS = (b'{"shape":', b"shape=(", b"ImageJ=")  # tifffile's JSON and old form, ImageJ's
# EXIF's directories of camera settings (exposure, lens, time taken) and of GPS position, and the
# interoperability one inside the former: a photo's history, as an archive catalogues it
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
# XMP's copy of the orientation, as an attribute or an element (what Lightroom and cameras write)
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation="|<tiff:Orientation>)[0-9]')


def kept_info(info: dict[str, Any], turned_by: int | None) -> dict[str, Any]:
    """What of a file's ``info`` its result keeps: resolution, XMP and comment."""
    keep = {k: info[k] for k in ("dpi", "xmp", "comment") if k in info}
    if "xmp" in keep and turned_by not in (1, None):
        # the pixels are upright now: an XMP orientation left at 6 would have viewers turn them again
        keep["xmp"] = _XMP_ORIENTATION.sub(rb"\g<1>1", keep["xmp"])
    return keep


def iptc_of(im: Image.Image) -> dict[str, bytes]:
    """A JPEG's or TIFF's IPTC record as ``{"iptc": ...}``, with a JPEG's digest of it, or ``{}``.
    A block that does not start with an IIM tag marker (0x1C) is not IPTC and is not carried."""
    if im.format in ("JPEG", "MPO"):
        resources = im.info.get("photoshop") or {}
        found = {"iptc": resources.get(_IPTC_RESOURCE), "iptc_digest": resources.get(_IPTC_DIGEST_RESOURCE)}
    elif im.format == "TIFF":
        return tiff_iptc(im.tag_v2)
    else:
        return {}
    if not isinstance(found["iptc"], bytes) or not found["iptc"].startswith(b"\x1c"):
        return {}
    return {k: v for k, v in found.items() if isinstance(v, bytes)}


def tiff_iptc(tags: TiffImagePlugin.ImageFileDirectory_v2) -> dict[str, bytes]:
    # raw, as Pillow's own IptcImagePlugin reads it: Photoshop types the tag LONG, which decoded
    # would be numbers in the file's byte order instead of the record's bytes
    record = getattr(tags, "_tagdata", {}).get(deep.IPTC_TAG)
    return {"iptc": record} if isinstance(record, bytes) and record.startswith(b"\x1c") else {}


def app13(info: dict[str, Any]) -> bytes | None:
    """The APP13 segment that holds the IPTC kept in ``info`` as Photoshop and ExifTool write it,
    or None where it would pass a JPEG segment's 64 KiB (a TIFF's record may)."""
    block = _APP13_HEADER + _photoshop_resource(_IPTC_RESOURCE, info["iptc"])
    if "iptc_digest" in info:
        block += _photoshop_resource(_IPTC_DIGEST_RESOURCE, info["iptc_digest"])
    return b"\xff\xed" + struct.pack(">H", len(block) + 2) + block if len(block) + 2 <= 0xFFFF else None


def with_segment(jpeg: bytes, segment: bytes) -> bytes:
    """``jpeg`` with ``segment`` after its other application segments, where readers look for
    IPTC: Pillow's JPEG writer has no argument for it."""
    at = 2  # after SOI
    while jpeg[at] == 0xFF and 0xE0 <= jpeg[at + 1] <= 0xEF:
        at += 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
    return jpeg[:at] + segment + jpeg[at:]


def _photoshop_resource(resource: int, data: bytes) -> bytes:
    """One entry of a Photoshop image resource block: unnamed, its data padded to even length."""
    return b"8BIM" + struct.pack(">HHI", resource, 0, len(data)) + data + b"\x00" * (len(data) % 2)


def upright_exif(exif: Image.Exif) -> bytes:
    """The EXIF of a JPEG, PNG or WebP for its result, whose pixels are upright: orientation 1,
    the text tags as stored (:func:`_as_stored`)."""
    exif[ORIENTATION] = 1
    exif.update(_as_stored(exif))
    return exif.tobytes()


def _as_stored(tags: Any, only: tuple[int, ...] | None = None) -> dict[int, bytes]:
    """The text tags of a TIFF directory or of EXIF's first one (``only`` those given), as their
    stored bytes: Pillow decodes them as Latin-1, so encoding back gives UTF-8 (or any) text
    unchanged, where writing the decoded string would turn each non-ASCII letter into "?"."""
    return {
        tag: value.encode("latin-1", "replace")
        for tag in (tags if only is None else only)
        if isinstance(value := tags.get(tag), str)
    }


def _directories(exif: Image.Exif) -> dict[int, dict[int, Any]]:
    """EXIF's camera-settings and GPS directories that ``exif`` has, with the interoperability
    directory read in place of its offset, which would point nowhere once they are written
    elsewhere. (Their text is ASCII by the standard, and Pillow writes it so; unlike the
    descriptive tags', it is not kept byte for byte: as bytes, Pillow would type it UNDEFINED.)"""
    found: dict[int, dict[int, Any]] = {}
    for tag in (_EXIF_IFD, _GPS_IFD):
        if tag not in exif:  # get_ifd would add an empty directory
            continue
        directory = dict(exif.get_ifd(tag))
        if tag == _EXIF_IFD and _INTEROP_IFD in directory:
            if interop := dict(exif.get_ifd(_INTEROP_IFD)):
                directory[_INTEROP_IFD] = interop
            else:  # an offset that pointed nowhere already (Pillow's own TIFF writer leaves those)
                del directory[_INTEROP_IFD]
        if directory:
            found[tag] = directory
    return found


def tiff_exif(
    tags: TiffImagePlugin.ImageFileDirectory_v2, exif: Image.Exif, fp: BinaryIO | None
) -> bytes | None:
    """The EXIF a TIFF's results get: its descriptive tags and EXIF and GPS directories. The rest
    of a TIFF's directory is its own structure (strip offsets, sizes), not worth copying; so is
    an ImageDescription that tifffile or ImageJ wrote to record the pages' layout, which on a
    one-page result makes them look for pages that are not there. ``fp``: the file, where it is
    still open, for the caption (:func:`_caption`)."""
    result = Image.Exif()
    stored = _as_stored(tags, _DESCRIPTIVE_TAGS)
    stored.pop(_IMAGE_DESCRIPTION, None)
    if (caption := _caption(tags, fp)) is not None:
        stored[_IMAGE_DESCRIPTION] = caption
    result.update(stored)
    directories = _directories(exif)
    for tag, directory in directories.items():
        result.get_ifd(tag).update(directory)
    return result.tobytes() if len(result) or directories else None


def _caption(tags: TiffImagePlugin.ImageFileDirectory_v2, fp: BinaryIO | None) -> bytes | None:
    """A TIFF's ImageDescription, unless it records the pages' layout. tifffile writes the
    caption it is given and then its layout as a second ImageDescription, of which Pillow keeps
    one, the first from Pillow 13 and the last before: so all of them are read from the file."""
    found = _descriptions_in(fp) if fp is not None else []
    found = found or list(_as_stored(tags, (_IMAGE_DESCRIPTION,)).values())
    return next((d for d in found if not d.lstrip().startswith(_LAYOUT_DESCRIPTIONS)), None)


def _descriptions_in(fp: BinaryIO) -> list[bytes]:
    """Every ImageDescription of a classic TIFF's first directory, in file order ([] if it
    cannot be read so)."""
    try:
        fp.seek(0)
        head = fp.read(8)
        order = {b"II*\0": "<", b"MM\0*": ">"}[head[:4]]
        fp.seek(struct.unpack(order + "I", head[4:])[0])
        (count,) = struct.unpack(order + "H", fp.read(2))
        entries = fp.read(12 * count)
        found = []
        for at in range(0, len(entries) - 11, 12):
            tag, kind, length, offset = struct.unpack(order + "HHII", entries[at : at + 12])
            if tag == _IMAGE_DESCRIPTION and kind == 2:  # ASCII
                if length <= 4:
                    text = entries[at + 8 : at + 8 + length]
                else:
                    fp.seek(offset)
                    text = fp.read(length)
                found.append(text.split(b"\0", 1)[0])
        return found
    except (KeyError, OSError, ValueError, struct.error):  # BigTIFF, a cut file, a closed one
        return []


def tiff_tags(exif: bytes | None, info: dict[str, Any]) -> dict[int, bytes | dict[int, Any]]:
    """A TIFF result's tags beyond pixels, resolution and ICC profile: the descriptive ones and
    the EXIF and GPS directories (of a TIFF, or of another format's EXIF), XMP and IPTC, for
    which Pillow's TIFF writer has no argument."""
    tags: dict[int, bytes | dict[int, Any]] = {}
    if exif:
        loaded = Image.Exif()
        loaded.load(exif)
        tags.update(_as_stored(loaded, _DESCRIPTIVE_TAGS))
        tags.update(_directories(loaded))
    if "xmp" in info:
        tags[deep.XMP_TAG] = info["xmp"]
    if "iptc" in info:
        tags[deep.IPTC_TAG] = info["iptc"]
    return tags


def png_text(info: dict[str, Any]) -> dict[str, str | bytes]:
    """The PNG text chunks to write: the file's own, and its XMP packet (from any format, with
    the orientation reset by :func:`kept_info`) in place of a PNG's original copy of it."""
    text: dict[str, str | bytes] = {
        # ImageMagick's copy of the EXIF: it leaves in the eXIf chunk, orientation reset
        k: v
        for k, v in info.get("text", {}).items()
        if k.lower() != _RAW_EXIF_KEY
    }
    if "xmp" in info:
        text[_XMP_PNG_KEY] = info["xmp"]
    return text
