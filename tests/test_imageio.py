"""Reading every supported mode as grey + alpha + metadata, and writing results atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from photos import png16
from PIL import Image, ImageCms, IptcImagePlugin, TiffImagePlugin
from skimage import data

from colorcli import atomic, color, deep, evaluate, imageio, render
from colorcli.atomic import write_atomic

CAMERA = data.camera()  # 512×512 grey
ASTRONAUT = data.astronaut()  # 512×512 RGB


def _lightness(grey: np.ndarray) -> np.ndarray:
    return color.grey_to_lightness(grey / (65535.0 if grey.dtype == np.uint16 else 255.0))


@pytest.mark.parametrize(
    ("mode", "make"),
    [
        ("L", lambda: Image.fromarray(CAMERA)),
        ("1", lambda: Image.fromarray(CAMERA).convert("1")),
        ("LA", lambda: Image.merge("LA", [Image.fromarray(CAMERA)] * 2)),
        ("I;16", lambda: Image.fromarray(CAMERA.astype(np.uint16) * 257)),
        ("RGB", lambda: Image.fromarray(ASTRONAUT)),
        ("RGBA", lambda: Image.fromarray(ASTRONAUT).convert("RGBA")),
        ("P", lambda: Image.fromarray(ASTRONAUT).convert("P")),
        ("CMYK", lambda: Image.fromarray(ASTRONAUT).convert("CMYK")),
    ],
)
def test_every_mode_becomes_grey_with_its_lightness(mode: str, make) -> None:
    im = make()
    assert im.mode == mode
    picture = imageio.from_pil(im)
    assert picture.size == im.size
    assert picture.grey.dtype == (np.uint16 if mode == "I;16" else np.uint8)
    assert (picture.alpha is not None) == (mode in ("LA", "RGBA"))
    source = CAMERA if mode in ("L", "LA", "I;16") else np.asarray(im.convert("RGB"))
    rgb = np.dstack([source] * 3) if source.ndim == 2 else source
    reference = color.rgb_to_lab(rgb / 255.0)[..., 0]
    assert np.abs(_lightness(picture.grey) - reference).mean() < 0.5


def test_unsupported_mode_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(CAMERA.astype(np.float32) / 255).save(path)
    with pytest.raises(imageio.ImageError, match="unsupported image mode 'F'"):
        imageio.load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "not an image"), (b"hello, I am text", "not an image"), (None, "truncated")],
)
def test_broken_files_are_image_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "broken.jpg"
    if content is None:
        buffer = io.BytesIO()
        Image.fromarray(CAMERA).save(buffer, "JPEG")
        content = buffer.getvalue()[:2000]
    path.write_bytes(content)
    with pytest.raises(imageio.ImageError, match=message):
        imageio.load(path)


def test_heic_photos_are_read_and_without_the_plugin_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "phone.heic"
    Image.fromarray(CAMERA).save(path, quality=95)
    picture = imageio.load(path)
    assert picture.grey.shape == CAMERA.shape
    assert np.abs(_lightness(picture.grey) - _lightness(CAMERA)).mean() < 1.5  # lossy, but this photo

    # a name Pillow cannot open stands in for a HEIC on a machine without pillow-heif
    monkeypatch.setattr(imageio, "HEIF_READABLE", False)
    (tmp_path / "other.heif").write_bytes(b"not decodable here")
    with pytest.raises(imageio.ImageError, match=r"pip install 'colorcli\[heif\]'"):
        imageio.load(tmp_path / "other.heif")


def test_missing_file_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(imageio.ImageError, match="no such file"):
        imageio.load(tmp_path / "nope.png")


def test_decompression_bomb_limit_can_be_raised(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (2000, 1500)).save(path)
    with pytest.raises(imageio.ImageError, match=r"3 megapixels is over the limit of 2.*--max-megapixels"):
        imageio.load(path, max_megapixels=2)
    assert imageio.load(path, max_megapixels=4).size == (2000, 1500)


def test_exif_orientation_applied_and_reset_other_tags_kept(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x013B] = "Ansel Adams"  # Artist
    Image.fromarray(CAMERA[:, :300]).save(path, exif=exif.tobytes())
    picture = imageio.load(path)
    assert picture.size == (512, 300)  # upright: width and height swapped
    assert np.abs(picture.grey.astype(int) - np.rot90(CAMERA[:, :300], -1)).mean() < 3  # JPEG is lossy
    out = io.BytesIO()
    imageio.encode(picture, Image.new("RGB", picture.size), "jpg", 90, out)
    written = Image.open(out).getexif()
    assert written[0x0112] == 1
    assert written[0x013B] == "Ansel Adams"


# stored pixels -> upright pixels, as the EXIF/TIFF Orientation values define them
_UPRIGHT = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, -1),  # turned 90° clockwise to display
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),  # mirrored along the other diagonal
    8: lambda a: np.rot90(a),  # turned 90° counter-clockwise to display
}


@pytest.mark.parametrize("orientation", sorted(_UPRIGHT))
def test_tiff_orientation_gives_upright_pixels(tmp_path: Path, orientation: int) -> None:
    from photos import colourful

    # uncompressed single-strip files, the kind Pillow memory-maps when opened by name
    rgba = np.dstack([colourful(5, 96)[:64], CAMERA[:64, :96]])
    turn = _UPRIGHT[orientation]
    tag = TiffImagePlugin.ImageFileDirectory_v2()
    tag[0x0112] = orientation
    for mode, stored in (("L", CAMERA[200:264, 100:196]), ("RGBA", rgba)):
        Image.fromarray(stored, mode).save(tmp_path / f"{mode}-plain.tif")
        Image.fromarray(stored, mode).save(tmp_path / f"{mode}-tagged.tif", tiffinfo=tag)
        plain, tagged = (imageio.load(tmp_path / f"{mode}-{kind}.tif") for kind in ("plain", "tagged"))
        assert tagged.size == (plain.size[::-1] if orientation >= 5 else plain.size)
        assert np.array_equal(tagged.grey, turn(plain.grey))
        if mode == "RGBA":
            assert np.array_equal(tagged.alpha, turn(plain.alpha))
    # the evaluation reads its colour photos the same way
    plain_rgb = evaluate.load_photo(tmp_path / "RGBA-plain.tif", None)
    assert plain_rgb is not None
    assert np.array_equal(evaluate.load_photo(tmp_path / "RGBA-tagged.tif", None), turn(plain_rgb))


def test_output_is_tagged_srgb_and_a_grey_profile_is_not_copied(tmp_path: Path) -> None:
    path = tmp_path / "grey-profile.png"
    grey_icc = ImageCms.ImageCmsProfile(
        ImageCms.createProfile("LAB")
    ).tobytes()  # stands in for a grey profile
    Image.fromarray(CAMERA).save(path, icc_profile=grey_icc, dpi=(300, 300))
    picture = imageio.load(path)
    out = io.BytesIO()
    imageio.encode(picture, Image.new("RGB", picture.size), "png", 90, out)
    written = Image.open(out)
    assert written.info["icc_profile"] == imageio.srgb_profile()
    description = ImageCms.getProfileDescription(
        ImageCms.ImageCmsProfile(io.BytesIO(written.info["icc_profile"]))
    )
    assert "sRGB" in description
    assert round(written.info["dpi"][0]) == 300
    bmp = io.BytesIO()  # BMP has no ICC or EXIF, but it has a resolution
    imageio.encode(picture, Image.new("RGB", picture.size), "bmp", 90, bmp)
    assert round(Image.open(bmp).info["dpi"][0]) == 300


def test_png_text_and_alpha_are_kept() -> None:
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_text("Title", "Grandparents, 1931")
    buffer = io.BytesIO()
    Image.merge("LA", [Image.fromarray(CAMERA), Image.fromarray(CAMERA[::-1])]).save(
        buffer, "PNG", pnginfo=text
    )
    picture = imageio.load(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    imageio.encode(picture, Image.new("RGB", picture.size), "png", 90, out)
    written = Image.open(out)
    assert written.mode == "RGBA"
    assert np.array_equal(np.asarray(written)[..., 3], CAMERA[::-1])
    assert written.text["Title"] == "Grandparents, 1931"


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_transparent_colour_becomes_alpha(mode: str) -> None:
    from photos import gray_icc_profile

    pixels = CAMERA if mode == "L" else ASTRONAUT
    key = pixels[0, 0]
    clear = pixels == key if mode == "L" else (pixels == key).all(axis=-1)
    assert 0 < clear.sum() < clear.size
    params: dict = {"transparency": int(key) if mode == "L" else tuple(key.tolist())}
    if mode == "L":
        # a scan with a grey profile of its own: the transparent value is the stored one, not the converted
        params["icc_profile"] = gray_icc_profile(1.0)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", **params)
    picture = imageio.load(io.BytesIO(buffer.getvalue()))
    assert picture.alpha is not None
    assert np.array_equal(picture.alpha, np.where(clear, 0, 255))
    out = io.BytesIO()
    imageio.encode(picture, Image.new("RGB", picture.size), "png", 90, out)
    written = Image.open(out)
    assert written.mode == "RGBA"
    assert np.array_equal(np.asarray(written)[..., 3], picture.alpha)


@pytest.mark.parametrize("fmt", ["png", "tiff"])
@pytest.mark.parametrize("alpha", [False, True])
def test_sixteen_bit_results_stay_sixteen_bit(tmp_path: Path, fmt: str, alpha: bool) -> None:
    grey = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    picture = imageio.Picture(
        grey, CAMERA[:48, :64].copy() if alpha else None, fmt, info={"text": {"k": "v"}}
    )
    rgb = np.dstack([grey, grey // 2, grey // 3]).astype(np.uint16)
    path = tmp_path / f"out.{fmt}"
    write_atomic(path, lambda fh: imageio.encode(picture, rgb, fmt, 90, fh))
    read = tifffile.imread(path) if fmt == "tiff" else np.asarray(_read_png16(path))
    assert read.dtype == np.uint16
    assert read.shape == (48, 64, 4 if alpha else 3)
    assert np.array_equal(read[..., :3], rgb)
    if alpha:
        assert np.array_equal(read[..., 3], CAMERA[:48, :64].astype(np.uint16) * 257)
    assert Image.open(path).size == (64, 48)  # other readers accept it too


@pytest.mark.parametrize(("fmt", "dpi"), [("png", 300), ("tiff", 600)])
def test_sixteen_bit_results_keep_the_dpi_as_eight_bit_ones_do(tmp_path: Path, fmt: str, dpi: int) -> None:
    source = tmp_path / f"scan.{fmt}"
    Image.fromarray(CAMERA.astype(np.uint16) * 257).save(source, dpi=(dpi, dpi))
    picture = imageio.load(source)
    assert picture.deep
    deep, shallow = io.BytesIO(), io.BytesIO()
    imageio.encode(picture, np.dstack([picture.grey] * 3), fmt, 90, deep)
    imageio.encode(picture, Image.new("RGB", picture.size), fmt, 90, shallow)
    written = Image.open(deep).info.get("dpi")
    assert written == Image.open(shallow).info["dpi"]  # PNG's pixels per metre round the same way
    assert written is not None and round(written[0]) == round(written[1]) == dpi


def _read_png16(path: Path) -> np.ndarray:
    """A minimal reader for the unfiltered 16-bit PNGs colorcli writes (Pillow reads them as 8-bit)."""
    import struct
    import zlib

    raw, pos, chunks = path.read_bytes(), 8, {}
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos : pos + 4])
        kind = raw[pos + 4 : pos + 8]
        chunks[kind] = chunks.get(kind, b"") + raw[pos + 8 : pos + 8 + length]
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 16
    channels = {2: 3, 6: 4}[colour_type]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, -1)
    assert not rows[:, 0].any()  # filter type 0 on every row
    return rows[:, 1:].copy().view(">u2").reshape(height, width, channels).astype(np.uint16)


def test_sixteen_bit_grey_input_is_read_as_sixteen_bit(tmp_path: Path) -> None:
    values = (CAMERA.astype(np.uint16) * 257 + 77).astype(np.uint16)
    for name in ("g16.png", "g16.tif"):
        Image.fromarray(values).save(tmp_path / name)
        picture = imageio.load(tmp_path / name)
        assert picture.deep
        assert np.array_equal(picture.grey, values)


def test_multi_frame_files_give_their_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    frames = [Image.fromarray(CAMERA), Image.fromarray(CAMERA[::-1].copy())]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    picture = imageio.load(path)
    assert picture.notes == ("multi-frame file: only the first of 2 frames was coloured",)
    assert np.array_equal(picture.grey, CAMERA)


def test_write_atomic_leaves_nothing_behind_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.jpg"

    def half_then_crash(fh) -> None:
        fh.write(b"half an image")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, half_then_crash)
    assert list(target.parent.iterdir()) == []
    write_atomic(target, lambda fh: fh.write(b"whole"))
    assert target.read_bytes() == b"whole"
    assert [p.name for p in target.parent.iterdir()] == ["out.jpg"]
    # a file where its folder should be is not "the result exists" (which --skip-existing skips)
    (tmp_path / "file").touch()
    with pytest.raises(NotADirectoryError):
        write_atomic(tmp_path / "file" / "out.jpg", lambda fh: fh.write(b"whole"), replace=False)


def test_an_embedded_grey_profile_is_applied(tmp_path: Path) -> None:
    from photos import gray_icc_profile

    # mid-grey 128 in a linear (gamma 1.0) space is 50 % luminance: sRGB 188, not 128
    linear = tmp_path / "linear.png"
    Image.new("L", (8, 8), 128).save(linear, icc_profile=gray_icc_profile(1.0))
    assert abs(int(imageio.load(linear).grey[0, 0]) - 188) <= 2
    # a gamma-2.2 scan profile is close to sRGB; an unreadable profile is ignored
    gamma22 = tmp_path / "gamma22.png"
    Image.new("LA", (8, 8), (128, 200)).save(gamma22, icc_profile=gray_icc_profile(2.2))
    picture = imageio.load(gamma22)
    assert abs(int(picture.grey[0, 0]) - 128) <= 4 and int(picture.alpha[0, 0]) == 200
    broken = tmp_path / "broken.png"
    Image.new("L", (8, 8), 128).save(broken, icc_profile=b"not a profile")
    assert int(imageio.load(broken).grey[0, 0]) == 128


def _scan48() -> np.ndarray:
    """A 48-bit scan of a B&W print: its tones differ below the 8-bit steps."""
    ramp = np.linspace(20000, 20000 + 255 * 40, 64 * 48).reshape(48, 64)
    grey = (ramp + CAMERA[:48, :64] * 4).astype(np.uint16)
    return np.dstack([grey, grey - 900, grey - 1800])  # a warm-toned print


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"byteorder": ">", "rowsperstrip": 5},
        {"compression": "zlib", "predictor": True, "rowsperstrip": 7},  # Photoshop's "ZIP"
        {"extrasamples": "unassalpha"},
        {"planarconfig": "separate", "rowsperstrip": 5},  # one plane per sample: Pillow's was noise
        {"planarconfig": "separate", "compression": "zlib", "predictor": True, "extrasamples": "unassalpha"},
        *({"metadata": None, "extratags": [(274, "H", 1, turn, True)]} for turn in range(2, 9)),
        # what the [deep] extra (imagecodecs) reads: LZW, tiles
        {"compression": "lzw", "predictor": True, "rowsperstrip": 7},
        {"compression": "lzw", "planarconfig": "separate", "extrasamples": "unassalpha"},
        {"tile": (16, 16)},
        {"tile": (16, 16), "compression": "lzw", "metadata": None, "extratags": [(274, "H", 1, 6, True)]},
    ],
    ids=[
        "plain",
        "big-endian-strips",
        "deflate",
        "alpha",
        "planar",
        "planar-deflate-alpha",
        *(f"orientation-{turn}" for turn in range(2, 9)),
        "lzw",
        "lzw-planar-alpha",
        "tiled",
        "tiled-lzw-orientation-6",
    ],
)
def test_a_48_bit_tiff_scan_is_read_at_its_full_16_bits(tmp_path: Path, stored: dict) -> None:
    rgb16 = _scan48()
    alpha16 = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)
    pixels = np.dstack([rgb16, alpha16]) if "extrasamples" in stored else rgb16
    stored_pixels = np.moveaxis(pixels, 2, 0) if "planarconfig" in stored else pixels
    tifffile.imwrite(tmp_path / "scan48.tif", stored_pixels, photometric="rgb", **stored)
    picture = imageio.load(tmp_path / "scan48.tif")
    assert picture.deep and picture.notes == ()
    # as Pillow turns (and reads) the 8-bit copy of the same scan
    eight_bits = (stored_pixels >> 8).astype(np.uint8)
    tifffile.imwrite(tmp_path / "scan24.tif", eight_bits, photometric="rgb", **stored)
    eight = imageio.load(tmp_path / "scan24.tif")
    assert picture.size == eight.size
    assert np.abs(picture.grey.astype(np.int32) / 257 - eight.grey).max() <= 1.5
    assert len(np.unique(picture.grey)) > 2 * len(np.unique(eight.grey))  # the tones between the steps
    if "extrasamples" in stored:
        assert np.array_equal(picture.alpha, eight.alpha)
    else:
        assert picture.alpha is None
    # the grey has the scan's CIE L
    lightness = color.rgb_to_lab(rgb16 / 65535.0)[..., 0]
    if not stored.get("extratags"):
        assert np.abs(_lightness(picture.grey) - lightness).max() < 0.01


def test_sixteen_bit_colour_files_pillow_reads_at_8_bits_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rgb16 = _scan48()
    from photos import rgb_icc_profile

    # another colour space: Pillow converts its 8-bit reading to sRGB, right tones before depth
    linear = rgb_icc_profile(1.0, "linear rgb")
    tifffile.imwrite(tmp_path / "linear48.tif", rgb16, photometric="rgb", iccprofile=linear)
    lost = "16-bit colour file: read and written at 8 bits per channel"
    tifffile.imwrite(tmp_path / "loaded48.tif", rgb16, photometric="rgb")
    loaded = Image.open(tmp_path / "loaded48.tif")
    loaded.load()  # an API caller's image, decoded by Pillow before colorcli sees it
    for name in ("linear48.tif", loaded):
        picture = imageio.from_pil(name) if name is loaded else imageio.load(tmp_path / name)
        assert picture.notes == (lost,) and not picture.deep, name
    # without the [deep] extra, what only imagecodecs reads at 16 bits says how to get it
    tifffile.imwrite(tmp_path / "tiled48.tif", rgb16, photometric="rgb", tile=(16, 16))
    (tmp_path / "scan48.png").write_bytes(png16(rgb16))
    monkeypatch.setattr(deep, "imagecodecs", lambda: None)
    for name in ("tiled48.tif", "scan48.png"):
        picture = imageio.load(tmp_path / name)
        assert picture.notes == (lost + "; pip install 'colorcli[deep]' reads it at 16",) and not picture.deep
    # what Pillow reads in full says nothing: 8-bit colour, 16-bit grey
    Image.fromarray(rgb16[..., 0]).save(tmp_path / "grey16.png")
    Image.fromarray((rgb16 >> 8).astype(np.uint8)).save(tmp_path / "rgb8.tif")
    for name in ("grey16.png", "rgb8.tif"):
        assert imageio.load(tmp_path / name).notes == (), name


def _toned(grey: np.ndarray, hue: float, chroma: float) -> np.ndarray:
    """A toned print of ``grey``: its tint strongest in the mid-tones, as sepia and cyanotype's."""
    lab = color.rgb_to_lab(np.repeat(grey[..., None], 3, axis=-1) / 255.0)
    tint = chroma * np.sin(np.pi * lab[..., 0] / 100.0)
    lab[..., 1], lab[..., 2] = tint * np.cos(np.radians(hue)), tint * np.sin(np.radians(hue))
    return np.round(color.lab_to_rgb(lab) * 255.0).astype(np.uint8)


def test_a_photo_in_colour_already_says_its_colours_are_replaced(tmp_path: Path) -> None:
    replaced = ("in colour already: the model's colours replaced the photo's own",)

    def notes(name: str) -> tuple[str, ...]:
        picture = imageio.load(tmp_path / name)
        assert picture.in_colour == bool(imageio.notes_for(picture, "png")), name
        return imageio.notes_for(picture, "png")

    Image.fromarray(ASTRONAUT).save(tmp_path / "colour.jpg", quality=85)
    (tmp_path / "colour16.png").write_bytes(png16(ASTRONAUT.astype(np.uint16) * 257))
    faded = color.rgb_to_lab(ASTRONAUT / 255.0) * np.float32([1.0, 0.3, 0.3])  # a faded print's colour
    Image.fromarray(np.round(color.lab_to_rgb(faded) * 255.0).astype(np.uint8)).save(tmp_path / "faded.jpg")
    for name in ("colour.jpg", "colour16.png", "faded.jpg"):
        assert notes(name) == replaced, name
    # grey stored as RGB and toned prints (sepia, cyanotype, deep red-brown), JPEG's chroma noise and all
    Image.fromarray(CAMERA).convert("RGB").save(tmp_path / "grey.jpg", quality=85)
    Image.fromarray(_toned(CAMERA, 70, 25)).save(tmp_path / "sepia.jpg", quality=85)
    Image.fromarray(_toned(CAMERA, 40, 40)).save(tmp_path / "red-brown.jpg", quality=85)
    Image.fromarray(_toned(CAMERA, 250, 20)).save(tmp_path / "cyanotype.jpg", quality=85)
    for name in ("grey.jpg", "sepia.jpg", "cyanotype.jpg", "red-brown.jpg"):
        assert notes(name) == (), name


@pytest.mark.parametrize("channels", [2, 3, 4], ids=["grey-alpha", "rgb", "rgba"])
def test_a_16_bit_png_is_read_at_its_full_16_bits(channels: int) -> None:
    rgb16 = _scan48()
    alpha16 = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)
    pixels = {2: np.dstack([rgb16[..., 0], alpha16]), 3: rgb16, 4: np.dstack([rgb16, alpha16])}[channels]
    picture = imageio.load(io.BytesIO(png16(pixels)))
    assert picture.deep and picture.notes == ()
    expected = rgb16[..., 0] if channels == 2 else render.luminance16(rgb16)
    assert np.array_equal(picture.grey, expected)
    if channels == 3:
        assert picture.alpha is None
    else:
        assert np.array_equal(picture.alpha, (alpha16 >> 8).astype(np.uint8))


def test_a_corrupt_lzw_scan_is_an_image_error(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "scan.tif", _scan48(), photometric="rgb", compression="lzw", metadata=None)
    data = bytearray((tmp_path / "scan.tif").read_bytes())
    with Image.open(tmp_path / "scan.tif") as im:
        first = im.tag_v2[273][0]  # where the first strip's codes start
    data[first : first + 64] = b"\xff" * 64
    (tmp_path / "scan.tif").write_bytes(bytes(data))
    with pytest.raises(imageio.ImageError, match="corrupt"):
        imageio.load(tmp_path / "scan.tif")
    with Image.open(tmp_path / "scan.tif") as im, pytest.raises(imageio.ImageError, match="corrupt"):
        imageio.from_pil(im)  # an API caller's image: the same error


XMP = b"<x:xmpmeta"


@pytest.mark.parametrize(
    "stored",
    [
        {},  # uncompressed, colorcli's own reader
        {"compression": "zlib", "planarconfig": "separate"},
        {"compression": "lzw", "predictor": True},  # imagecodecs, the [deep] extra
        {"tile": (16, 16)},
    ],
    ids=["plain", "zip-planar", "lzw", "tiled"],
)
def test_a_16_bit_grey_alpha_tiff_pillow_cannot_open_is_read_at_16_bits(tmp_path: Path, stored: dict) -> None:
    grey16 = _scan48()[..., 0]
    alpha16 = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)
    path = tmp_path / "grey-alpha.tif"
    pixels = np.dstack([65535 - grey16, alpha16])
    tifffile.imwrite(
        path,
        np.moveaxis(pixels, 2, 0) if stored.get("planarconfig") == "separate" else pixels,
        photometric="miniswhite",
        extrasamples="unassalpha",
        resolution=(600, 600),
        metadata=None,
        extratags=[(274, "H", 1, 6, True), (315, "s", 0, "Photo archive", True), (700, "B", 9, XMP, True)],
        **stored,
    )
    turned = np.ascontiguousarray(grey16[::-1].T)
    for source in (path, io.BytesIO(path.read_bytes())):  # a file, and piped in
        picture = imageio.load(source)
        assert picture.deep and picture.notes == () and picture.format == "tiff"
        assert np.array_equal(picture.grey, turned)
        assert np.array_equal(picture.alpha, (alpha16[::-1].T >> 8).astype(np.uint8))
        assert picture.info["dpi"] == (600, 600) and picture.info["xmp"] == XMP
        exif = Image.Exif()
        exif.load(picture.exif)
        assert exif[315] == "Photo archive" and exif.get(274, 1) == 1
    out = io.BytesIO()
    imageio.encode(picture, np.dstack([picture.grey] * 3), "tiff", 90, out)
    with tifffile.TiffFile(io.BytesIO(out.getvalue())) as tif:  # 16 bits and the alpha come through
        written = tif.asarray()
    assert written.dtype == np.uint16 and np.array_equal(written[..., 0], turned)
    assert np.array_equal(written[..., 3] >> 8, picture.alpha)


def test_a_grey_alpha_tiff_only_imagecodecs_reads_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grey16 = _scan48()[..., 0]
    pixels = np.dstack([grey16, grey16])
    tifffile.imwrite(tmp_path / "la16.tif", pixels, extrasamples="unassalpha", compression="lzw")
    monkeypatch.setattr(deep, "imagecodecs", lambda: None)
    said = r"an LZW or tiled TIFF of 16-bit grey with alpha: pip install 'colorcli\[deep\]' reads it"
    with pytest.raises(imageio.ImageError, match=said):
        imageio.load(tmp_path / "la16.tif")


def test_a_grey_alpha_tiff_cut_short_is_a_clear_error(tmp_path: Path) -> None:
    grey16 = _scan48()[..., 0]
    tifffile.imwrite(tmp_path / "la16.tif", np.dstack([grey16, grey16]), extrasamples="unassalpha")
    whole = (tmp_path / "la16.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(whole[: len(whole) - 1000])
    with pytest.raises(imageio.ImageError, match="truncated or corrupt image data"):
        imageio.load(tmp_path / "cut.tif")


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("photometric", ["cielab", "icclab"])
def test_a_cielab_tiff_is_read_as_its_own_l(tmp_path: Path, bits: int, photometric: str) -> None:
    top = 2**bits - 1
    lightness = np.linspace(0, 100, 48 * 64).reshape(48, 64)
    stored = np.round(lightness * top / 100).astype(np.uint8 if bits == 8 else np.uint16)
    tifffile.imwrite(
        tmp_path / "lab.tif", np.dstack([stored, stored * 0 + 3, stored * 0 + 9]), photometric=photometric
    )
    picture = imageio.load(tmp_path / "lab.tif")
    assert picture.deep == (bits == 16) and picture.alpha is None and picture.notes == ()
    # the grey whose L is the file's: what colouring keeps
    read = color.grey_to_lightness(picture.grey / np.float32(top))
    np.testing.assert_allclose(read, stored * np.float32(100 / top), atol=0.25 if bits == 8 else 0.01)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_a_tiff_pillow_cannot_decode_says_what_it_holds(tmp_path: Path) -> None:
    grey32 = _scan48()[..., 0].astype(np.float32) / 65535
    tifffile.imwrite(tmp_path / "la32.tif", np.dstack([grey32, grey32]), extrasamples="unassalpha")
    said = "a TIFF of 32-bit grey with alpha, which Pillow cannot decode: save it with 8- or 16-bit unsigned"
    with pytest.raises(imageio.ImageError, match=said):
        imageio.load(tmp_path / "la32.tif")
    with pytest.raises(imageio.ImageError, match=said):  # piped in
        imageio.load(io.BytesIO((tmp_path / "la32.tif").read_bytes()))
    # an extra channel that is not transparency: the hint is about the channel, not the depth
    tifffile.imwrite(tmp_path / "extra.tif", np.dstack([_scan48()[..., 0]] * 2), extrasamples="unspecified")
    with pytest.raises(imageio.ImageError, match=r"grey with an extra channel, .* without its extra channel"):
        imageio.load(tmp_path / "extra.tif")
    # at a depth Pillow reads, in a colour space it does not: the hint is about the colour space
    lab = np.zeros((48, 64, 4), np.uint16)
    tifffile.imwrite(tmp_path / "lab.tif", lab, photometric="cielab", extrasamples="unassalpha")
    with pytest.raises(imageio.ImageError, match=r"16-bit CIELAB with alpha, .*: save it in grey or RGB, or"):
        imageio.load(tmp_path / "lab.tif")
    # a directory cut short names no layout it cannot vouch for
    (tmp_path / "cut.tif").write_bytes((tmp_path / "la32.tif").read_bytes()[:20])
    with pytest.raises(imageio.ImageError, match="not an image Pillow can read"):
        imageio.load(tmp_path / "cut.tif")


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_a_48_bit_scan_cut_short_is_a_clear_error(tmp_path: Path, compression: str | None) -> None:
    tifffile.imwrite(tmp_path / "scan48.tif", _scan48(), photometric="rgb", compression=compression)
    whole = (tmp_path / "scan48.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(whole[: len(whole) - 3000])
    with pytest.raises(imageio.ImageError, match="truncated"):
        imageio.load(tmp_path / "cut.tif")


def test_deflated_strips_past_the_headers_size_are_never_inflated(tmp_path: Path) -> None:
    # zlib reads a max_length of 0 as "no limit": a 400 KB file could inflate gigabytes
    tifffile.imwrite(tmp_path / "long.tif", _scan48(), photometric="rgb", compression="zlib", rowsperstrip=8)
    with tifffile.TiffFile(tmp_path / "long.tif", mode="r+b") as tif:
        tif.pages[0].tags["ImageLength"].overwrite(24)  # half the strips lie past the header's size
    top = _scan48()[:24]
    tifffile.imwrite(tmp_path / "top.tif", top, photometric="rgb", compression="zlib", rowsperstrip=8)
    picture = imageio.load(tmp_path / "long.tif")
    assert picture.deep and np.array_equal(picture.grey, imageio.load(tmp_path / "top.tif").grey)


def test_evaluate_reads_a_tagged_photo_in_srgb_as_colorize_does(tmp_path: Path) -> None:
    from photos import rgb_icc_profile

    linear = rgb_icc_profile(1.0, "linear rgb")
    photo = Image.fromarray(data.astronaut()[:64, :96])
    photo.save(tmp_path / "linear.png", icc_profile=linear)
    srgb = ImageCms.profileToProfile(
        photo, ImageCms.ImageCmsProfile(io.BytesIO(linear)), ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    assert np.array_equal(evaluate.load_photo(tmp_path / "linear.png", None), np.asarray(srgb))


def _xmp(orientation: int) -> bytes:
    return (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        b' tiff:Orientation="%d" dc:rights="Archive 1950"/></rdf:RDF></x:xmpmeta>' % orientation
    )


def test_xmp_orientation_is_reset_with_the_exif_one(tmp_path: Path) -> None:
    path = tmp_path / "camera.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(CAMERA[:, :300]).save(path, exif=exif.tobytes(), xmp=_xmp(6))
    picture = imageio.load(path)
    out = io.BytesIO()
    imageio.encode(picture, Image.new("RGB", picture.size), "jpg", 90, out)
    written = Image.open(out)
    assert written.size == (512, 300)
    assert written.getexif()[0x0112] == 1
    assert written.info["xmp"] == _xmp(1)  # not 6: viewers reading XMP would turn it again


@pytest.mark.parametrize(
    ("source", "fmt"), [("jpg", "png"), ("tiff", "tiff"), ("tiff16", "tiff"), ("tiff16", "png")]
)
def test_xmp_is_kept_in_png_and_tiff_results(tmp_path: Path, source: str, fmt: str) -> None:
    path = tmp_path / "scan.img"
    if source == "jpg":
        Image.fromarray(CAMERA).save(path, "JPEG", xmp=_xmp(1))
    else:
        grey = CAMERA.astype(np.uint16) * 257 if source == "tiff16" else CAMERA
        Image.fromarray(grey).save(path, "TIFF", tiffinfo={700: _xmp(1)})
    picture = imageio.load(path)
    rgb = np.zeros((*CAMERA.shape, 3), np.uint16) if picture.deep else Image.new("RGB", picture.size)
    out = io.BytesIO()
    imageio.encode(picture, rgb, fmt, 90, out)
    written = Image.open(out)
    written.load()  # a PNG's text chunks may follow its pixels
    assert written.info["xmp"] == _xmp(1)


def test_a_tiff_that_names_no_resolution_gets_none(tmp_path: Path) -> None:
    Image.fromarray(CAMERA).save(tmp_path / "plain.tif")  # Pillow reads it as 1 dpi
    picture = imageio.load(tmp_path / "plain.tif")
    assert "dpi" not in picture.info
    for fmt in ("tiff", "jpg"):
        out = io.BytesIO()
        imageio.encode(picture, Image.new("RGB", picture.size), fmt, 90, out)
        written = Image.open(out)
        assert written.info.get("dpi") in (None, (1, 1))  # Pillow's stand-in when none is stored
        assert (written.tag_v2.get(282) if fmt == "tiff" else written.info["jfif_density"]) in (None, (1, 1))
        assert fmt == "tiff" or written.info["jfif_unit"] == 0  # JPEG: an aspect ratio, not 1 dpi
    Image.fromarray(CAMERA).save(tmp_path / "scan.tif", dpi=(600, 600))
    assert imageio.load(tmp_path / "scan.tif").info["dpi"] == (600, 600)


@pytest.mark.parametrize("fmt", ["bmp", "jpg"])
def test_formats_without_alpha_write_rgb_and_say_so(fmt: str) -> None:
    rgba = Image.fromarray(ASTRONAUT[:64, :64]).convert("RGBA")
    rgba.putalpha(90)
    picture = imageio.from_pil(rgba)
    out = io.BytesIO()
    imageio.encode(picture, rgba, fmt, 90, out)
    if fmt == "bmp":
        assert int.from_bytes(out.getvalue()[28:30], "little") == 24  # bits per pixel: no alpha byte
    assert Image.open(out).mode == "RGB"
    assert imageio.notes_for(picture, fmt)[-1].endswith("has no transparency: the alpha was dropped")
    assert not any("transparency" in note for note in imageio.notes_for(picture, "png"))  # PNG keeps it


def test_write_atomic_without_replace_keeps_a_file_that_appeared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.jpg"

    def another_process_finishes_first(fh) -> None:
        target.write_bytes(b"theirs")
        fh.write(b"ours")

    with pytest.raises(FileExistsError):
        write_atomic(target, another_process_finishes_first, replace=False)
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jpg"]  # no temporary file left

    def no_hard_links(src: str, dst: str) -> None:
        raise PermissionError(1, "Operation not permitted")  # FAT, some network shares

    monkeypatch.setattr(atomic.os, "link", no_hard_links)
    with pytest.raises(FileExistsError):
        write_atomic(target, lambda fh: fh.write(b"ours"), replace=False)
    write_atomic(tmp_path / "new.jpg", lambda fh: fh.write(b"ours"), replace=False)
    assert (tmp_path / "new.jpg").read_bytes() == b"ours" and target.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.jpg", "out.jpg"]


DESCRIPTION = {270: b"Hafen von Kiel, 1950: Fischkutter am Kai", 315: b"J. M\xc3\xbcller", 33432: b"Archiv"}


@pytest.mark.parametrize(
    ("source", "fmt"),
    [
        ("tiff", "tiff"),
        ("tiff", "jpg"),
        ("tiff", "png"),
        ("tiff16", "tiff"),
        ("tiff16", "png"),
        ("jpg", "tiff"),
        ("jpg", "jpg"),
    ],
)
def test_descriptive_tags_are_kept_whatever_the_formats(tmp_path: Path, source: str, fmt: str) -> None:
    path = tmp_path / "scan.img"
    if source == "jpg":
        exif = Image.Exif()
        exif.update(DESCRIPTION)
        Image.fromarray(CAMERA).save(path, "JPEG", exif=exif.tobytes())
    else:
        grey = CAMERA.astype(np.uint16) * 257 if source == "tiff16" else CAMERA
        Image.fromarray(grey).save(path, "TIFF", tiffinfo=DESCRIPTION)
    picture = imageio.load(path)
    rgb = np.zeros((*CAMERA.shape, 3), np.uint16) if picture.deep else Image.new("RGB", picture.size)
    out = io.BytesIO()
    imageio.encode(picture, rgb, fmt, 90, out)
    written = Image.open(out)
    tags = written.tag_v2 if fmt == "tiff" else written.getexif()
    # Pillow reads these tags as Latin-1: encoding back gives the stored bytes, UTF-8 here
    assert {tag: tags.get(tag, "").encode("latin-1") for tag in DESCRIPTION} == DESCRIPTION
    if fmt == "tiff":
        out.seek(0)
        with tifffile.TiffFile(out) as tif:  # a second reader: the directory is well formed
            assert tif.pages[0].tags["Copyright"].value == "Archiv"
            assert tif.pages[0].asarray().shape == (*CAMERA.shape, 3)


def _camera_exif() -> Image.Exif:
    """EXIF as a camera writes it: exposure, time taken, lens, an interoperability directory, GPS."""
    exif = Image.Exif()
    exif[271] = "Canon"
    settings = exif.get_ifd(0x8769)
    settings.update({0x829A: TiffImagePlugin.IFDRational(1, 125), 0x8827: 400, 0xA434: "EF 50mm"})
    settings.update({0x9003: "2020:01:02 03:04:05", 0xA005: {1: "R98"}})
    exif.get_ifd(0x8825).update({1: "N", 2: tuple(TiffImagePlugin.IFDRational(v) for v in (51, 30, 0))})
    return exif


@pytest.mark.parametrize("source", ["jpg", "tiff", "tiff16"])
@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "tiff"])
def test_camera_settings_and_gps_are_kept_whatever_the_formats(tmp_path: Path, source: str, fmt: str) -> None:
    path, exif = tmp_path / "photo.img", _camera_exif()
    if source == "jpg":
        Image.fromarray(CAMERA).save(path, "JPEG", exif=exif.tobytes())
    else:
        grey = CAMERA.astype(np.uint16) * 257 if source == "tiff16" else CAMERA
        directories = {tag: exif.get_ifd(tag) for tag in (0x8769, 0x8825)}
        Image.fromarray(grey).save(path, "TIFF", tiffinfo={271: "Canon", **directories})
    picture = imageio.load(path)
    deep = picture.deep and fmt in ("png", "tiff")
    rgb = np.zeros((*CAMERA.shape, 3), np.uint16) if deep else Image.new("RGB", picture.size)
    out = io.BytesIO()
    imageio.encode(picture, rgb, fmt, 90, out)
    written = Image.open(out).getexif()
    settings = written.get_ifd(0x8769)
    assert written[271] == "Canon"
    assert (settings[0x829A], settings[0x8827], settings[0xA434]) == (1 / 125, 400, "EF 50mm")
    assert settings[0x9003] == "2020:01:02 03:04:05"
    assert written.get_ifd(0xA005) == {1: "R98"}
    assert written.get_ifd(0x8825) == {1: "N", 2: (51, 30, 0)}
    if fmt == "tiff":
        out.seek(0)
        with tifffile.TiffFile(out) as tif:  # a second reader: the directories are well formed
            assert tif.pages[0].tags["ExifTag"].value["LensModel"] == "EF 50mm"
            assert tif.pages[0].tags["GPSTag"].value["GPSLatitudeRef"] == "N"
            assert tif.pages[0].asarray().shape == (*CAMERA.shape, 3)


def test_a_marked_transparent_value_is_kept_in_1_bit_and_16_bit_grey(tmp_path: Path) -> None:
    Image.fromarray(CAMERA[:8, :8] > 128).save(tmp_path / "one.png", transparency=0)
    one = imageio.load(tmp_path / "one.png")
    assert np.array_equal(one.alpha == 0, CAMERA[:8, :8] <= 128)
    deep = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png", transparency=5000)
    picture = imageio.load(tmp_path / "deep.png")
    assert picture.deep and np.array_equal(picture.alpha == 0, deep == 5000)


def test_a_16_bit_min_is_white_tiff_is_read_the_right_way_round(tmp_path: Path) -> None:
    deep = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "white.tif", 65535 - deep, photometric="miniswhite")
    assert np.array_equal(imageio.load(tmp_path / "white.tif").grey, deep)


def test_a_palette_image_s_profile_is_applied_and_a_16_bit_grey_one_is_named(tmp_path: Path) -> None:
    from photos import rgb_icc_profile

    # mid-grey 128 in linear RGB is 50 % luminance: sRGB 188, in a palette image as in an RGB one
    for mode in ("RGB", "P"):
        path = tmp_path / f"linear-{mode}.png"
        image = Image.new("RGB", (8, 8), (128, 128, 128))
        image = image.convert("P", palette=Image.Palette.ADAPTIVE) if mode == "P" else image
        image.save(path, icc_profile=rgb_icc_profile(1.0))
        assert abs(int(imageio.load(path).grey[0, 0]) - 188) <= 2, mode
    from photos import gray_icc_profile

    deep = tmp_path / "deep.tif"
    tifffile.imwrite(deep, np.full((8, 8), 30000, np.uint16), iccprofile=gray_icc_profile(1.0))
    assert any("profile was not applied" in note for note in imageio.load(deep).notes)


def _descriptions_swapped(path: Path) -> None:
    """The two ImageDescription entries of a little-endian TIFF's first directory, swapped."""
    raw = bytearray(path.read_bytes())
    at = int.from_bytes(raw[4:8], "little")
    count = int.from_bytes(raw[at : at + 2], "little")
    tag = (270).to_bytes(2, "little")
    first, second = [e for e in range(at + 2, at + 2 + 12 * count, 12) if raw[e : e + 2] == tag]
    raw[first : first + 12], raw[second : second + 12] = raw[second : second + 12], raw[first : first + 12]
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("layout_first", [False, True], ids=["tifffile-order", "layout-first"])
def test_a_layout_description_is_not_copied_onto_a_one_page_result(
    tmp_path: Path, layout_first: bool
) -> None:
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.full((2, 20, 30), 90, np.uint8))  # tifffile writes {"shape": [2, 20, 30]}
    # tifffile writes the caption, then its layout; Pillow keeps one of the two (which, by version)
    captioned = tmp_path / "captioned.tif"
    tifffile.imwrite(captioned, np.full((20, 30), 90, np.uint8), description="Harbour, 1931")
    if layout_first:
        _descriptions_swapped(captioned)
    for source, kept in ((stack, None), (captioned, "Harbour, 1931")):
        picture = imageio.load(source)
        out = io.BytesIO()
        imageio.encode(picture, Image.new("RGB", picture.size), "tiff", 90, out)
        with tifffile.TiffFile(io.BytesIO(out.getvalue())) as tif:
            assert tif.pages[0].description == (kept or ""), source.name
            tif.asarray()  # readable: no pages looked for that are not there


def test_imagemagick_s_raw_exif_text_is_not_copied_beside_the_reset_exif() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    raw = exif.tobytes()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(raw):8d}\n{raw.hex()}\n")
    info.add_text("Title", "Pier")
    source = io.BytesIO()
    Image.new("L", (6, 4), 90).save(source, "PNG", pnginfo=info)
    picture = imageio.load(io.BytesIO(source.getvalue()))
    out = io.BytesIO()
    imageio.encode(picture, Image.new("RGB", picture.size), "png", 90, out)
    result = Image.open(io.BytesIO(out.getvalue()))
    assert result.size == (4, 6) and result.getexif()[0x0112] == 1
    assert result.text == {"Title": "Pier"}


@pytest.mark.parametrize(("fmt", "side"), [("jpg", 65536), ("webp", 16384)])
def test_a_size_the_format_cannot_hold_is_refused_before_encoding(fmt: str, side: int) -> None:
    imageio.check_encodable((side - 1, 4), fmt)
    with pytest.raises(imageio.ImageError, match="choose --format png or tiff"):
        imageio.check_encodable((4, side), fmt)
    imageio.check_encodable((side * 2, 4), "png")


def test_write_atomic_takes_the_longest_name_the_file_system_does(tmp_path: Path) -> None:
    for name in ("n" * 251 + ".png", "ü" * 125 + ".png"):  # 255 bytes, the limit on most file systems
        write_atomic(tmp_path / name, lambda fh: fh.write(b"whole"))
        assert (tmp_path / name).read_bytes() == b"whole"
    assert len(list(tmp_path.iterdir())) == 2


def _iim(record: int, dataset: int, value: bytes) -> bytes:
    return bytes([0x1C, record, dataset]) + len(value).to_bytes(2, "big") + value


# IPTC-IIM as an archive's catalogue writes it: caption, two keywords, credit (UTF-8)
IPTC = (
    _iim(1, 90, b"\x1b%G")  # the envelope's coded character set: UTF-8
    + _iim(2, 120, b"Hafen von Kiel, 1950: Fischkutter am Kai")
    + _iim(2, 25, b"harbour")
    + _iim(2, 25, b"Kiel")
    + _iim(2, 110, "J. Müller".encode())
)


def _jpeg_with_iptc(path: Path) -> None:
    """A JPEG with EXIF and an ICC profile, and an APP13 segment spliced in after them, as
    Photoshop and ExifTool write it (Pillow's writer cannot)."""
    out = io.BytesIO()
    exif = Image.Exif()
    exif[270] = "caption in EXIF too"
    Image.fromarray(CAMERA).save(out, "JPEG", exif=exif.tobytes(), icc_profile=imageio.srgb_profile())
    jpeg = out.getvalue()
    resource = b"8BIM\x04\x04\x00\x00" + len(IPTC).to_bytes(4, "big") + IPTC + b"\x00" * (len(IPTC) % 2)
    segment = b"Photoshop 3.0\x00" + resource
    app13 = b"\xff\xed" + (len(segment) + 2).to_bytes(2, "big") + segment
    path.write_bytes(jpeg[:2] + app13 + jpeg[2:])


@pytest.mark.parametrize(
    ("source", "fmt"),
    [("jpg", "jpg"), ("jpg", "tiff"), ("tiff", "jpg"), ("tiff", "tiff"), ("tiff16", "tiff")],
)
def test_iptc_captions_and_keywords_are_kept_in_jpeg_and_tiff(tmp_path: Path, source: str, fmt: str) -> None:
    path = tmp_path / "scan.img"
    if source == "jpg":
        _jpeg_with_iptc(path)
    else:
        grey = CAMERA.astype(np.uint16) * 257 if source == "tiff16" else CAMERA
        Image.fromarray(grey).save(path, "TIFF", tiffinfo={33723: IPTC})
    picture = imageio.load(path)
    rgb = np.zeros((*CAMERA.shape, 3), np.uint16) if picture.deep else Image.new("RGB", picture.size)
    out = io.BytesIO()
    imageio.encode(picture, rgb, fmt, 90, out)
    assert imageio.notes_for(picture, fmt) == ()
    written = Image.open(out)
    iptc = IptcImagePlugin.getiptcinfo(written)
    assert iptc[(2, 120)] == b"Hafen von Kiel, 1950: Fischkutter am Kai"
    assert iptc[(2, 25)] == [b"harbour", b"Kiel"] and iptc[(2, 110)] == "J. Müller".encode()
    if source == "jpg":  # the EXIF beside it is kept too
        assert written.getexif().get(270) == "caption in EXIF too"
    assert np.asarray(written.convert("RGB")).shape == (*CAMERA.shape, 3)  # the pixels still decode
    if fmt == "jpg":
        assert written.info["icc_profile"] == imageio.srgb_profile()
    else:
        out.seek(0)
        with tifffile.TiffFile(out) as tif:  # a second reader: the record is where TIFF keeps it
            assert bytes(tif.pages[0].tags[33723].value).rstrip(b"\x00") == IPTC


def test_iptc_is_named_where_the_result_cannot_keep_it(tmp_path: Path) -> None:
    _jpeg_with_iptc(tmp_path / "scan.jpg")
    picture = imageio.load(tmp_path / "scan.jpg")
    for fmt in ("png", "webp"):
        (note,) = imageio.notes_for(picture, fmt)
        assert "IPTC" in note and "--format jpg or tiff" in note
    Image.fromarray(CAMERA).save(tmp_path / "plain.jpg")
    assert "iptc" not in imageio.load(tmp_path / "plain.jpg").info
    big = imageio.Picture(CAMERA, None, "tiff", info={"iptc": _iim(2, 120, b"x" * 30000) * 3})
    (note,) = imageio.notes_for(big, "jpg")
    assert "too large" in note and "--format tiff" in note
    out = io.BytesIO()
    imageio.encode(big, Image.new("RGB", big.size), "jpg", 90, out)
    assert IptcImagePlugin.getiptcinfo(Image.open(out)) is None
