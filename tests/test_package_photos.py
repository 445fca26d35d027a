"""training/package_photos.py's readers and list, without any network: synthetic Qt resource
files and a synthetic scipy ``face.dat``."""

from __future__ import annotations

import bz2
import importlib.util
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_script = Path(__file__).resolve().parent.parent / "training" / "package_photos.py"
_spec = importlib.util.spec_from_file_location("package_photos", _script)
package_photos = importlib.util.module_from_spec(_spec)
sys.modules["package_photos"] = package_photos  # dataclasses look their module up there
_spec.loader.exec_module(package_photos)

TOP = b"plain bytes, stored as they are"
DEEP = b"compressed " * 50


def _rcc(version: int, deep_flags: int = 0x01) -> bytes:
    """A Qt binary resource file holding ``/top.txt`` (stored) and ``/sub/deep.bin`` (zlib), as rcc
    writes it: header, tree, data, names."""
    names = b""
    name_offsets = {}
    for name in ("sub", "top.txt", "deep.bin"):
        name_offsets[name] = len(names)
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(name), 0) + encoded  # the hash is not read

    data = b""
    top_offset = len(data)
    data += struct.pack(">I", len(TOP)) + TOP
    deep_offset = len(data)
    packed = struct.pack(">I", len(DEEP)) + zlib.compress(DEEP)
    data += struct.pack(">I", len(packed)) + packed

    stamp = b"" if version == 1 else struct.pack(">Q", 0)

    def directory(name_offset: int, count: int, first: int) -> bytes:
        return struct.pack(">IHII", name_offset, 0x02, count, first) + stamp

    def file(name: str, flags: int, offset: int) -> bytes:
        return struct.pack(">IHHHI", name_offsets[name], flags, 0, 0, offset) + stamp

    tree = (
        directory(0, 2, 1)  # the root; its children are entries 1 and 2
        + directory(name_offsets["sub"], 1, 3)
        + file("top.txt", 0, top_offset)
        + file("deep.bin", deep_flags, deep_offset)
    )
    header_size = 20 if version < 3 else 24
    tree_at = header_size
    data_at = tree_at + len(tree)
    names_at = data_at + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    if version == 3:
        header += struct.pack(">I", 1)  # overall flags: zlib is used
    return header + tree + data + names


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reads_stored_and_compressed_files(version: int) -> None:
    blob = _rcc(version)
    assert package_photos.rcc_read(blob, "/top.txt") == TOP
    assert package_photos.rcc_read(blob, "/sub/deep.bin") == DEEP


def test_rcc_refuses_missing_paths_directories_and_zstd() -> None:
    blob = _rcc(3)
    for missing in ("/nothing", "/sub/top.txt", "/top.txt/deeper"):
        with pytest.raises(KeyError):
            package_photos.rcc_read(blob, missing)
    with pytest.raises(KeyError):
        package_photos.rcc_read(blob, "/sub")
    with pytest.raises(ValueError, match="zstd"):
        package_photos.rcc_read(_rcc(3, deep_flags=0x04), "/sub/deep.bin")
    with pytest.raises(ValueError):
        package_photos.rcc_read(b"PK\x03\x04" + blob[4:], "/top.txt")


def test_face_is_raw_rgb_768_by_1024() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (768, 1024, 3), dtype=np.uint8)
    blob = bz2.compress(pixels.tobytes())
    image = package_photos.decode(blob, "scipy/misc/face.dat")
    assert image.mode == "RGB" and image.size == (1024, 768)
    np.testing.assert_array_equal(np.asarray(image), pixels)


def test_decode_gives_rgb_without_alpha(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGBA", (4, 3), (200, 10, 20, 0)).save(path)
    image = package_photos.decode(path.read_bytes(), "x/a.png")
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (200, 10, 20)


@pytest.mark.parametrize(
    ("size", "shrunk"),
    [
        ((1024, 600), (512, 300)),
        ((600, 1200), (256, 512)),
        ((1920, 1080), (512, 288)),
        ((512, 400), (512, 400)),
        ((300, 200), (300, 200)),
    ],
)
def test_shrink_never_enlarges_and_caps_the_longer_side(size: tuple, shrunk: tuple) -> None:
    assert package_photos.shrink(Image.new("RGB", size)).size == shrunk


def test_shrink_takes_another_max_side() -> None:
    assert package_photos.shrink(Image.new("RGB", (1000, 500)), 100).size == (100, 50)


def test_list_has_80_unique_photos_from_debs_and_wheels() -> None:
    photos = package_photos.read_list()
    assert len(photos) == 80 == len({p.name for p in photos})
    assert {p.source for p in photos} == {"deb", "wheel"}
    for p in photos:
        version = p.version.replace(":", "%3a")
        if p.source == "deb":
            assert p.file == f"{p.package}_{version}_all.deb"
        else:
            assert p.file.startswith(f"{p.package}-{p.version}-") and p.file.endswith(".whl")
        assert p.licence and p.path
    assert 0 < sum(p.red for p in photos) < 80


def test_list_rejects_unknown_sources_and_repeated_names(tmp_path: Path) -> None:
    header = "\t".join(package_photos.COLUMNS)
    row = "a\tdeb\tpkg\t1\tpkg_1_all.deb\tusr/a.jpg\tMIT\tno"
    path = tmp_path / "list.tsv"
    path.write_text(f"{header}\n{row.replace('deb', 'tarball', 1)}\n")
    with pytest.raises(ValueError, match="source"):
        package_photos.read_list(path)
    path.write_text(f"{header}\n{row}\n{row}\n")
    with pytest.raises(ValueError, match="repeat"):
        package_photos.read_list(path)


def test_platform_wheels_are_fetched_for_their_own_python() -> None:
    scipy = "scipy-1.9.3-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    flags = package_photos._wheel_flags(scipy)
    assert flags == [
        "--python-version",
        "3.10",
        "--abi",
        "cp310",
        "--platform",
        "manylinux_2_17_x86_64",
        "--platform",
        "manylinux2014_x86_64",
    ]
    assert package_photos._wheel_flags("imgaug-0.4.0-py2.py3-none-any.whl") == []
