"""Real and generated test images, and tiny training sets built from them."""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def colourful(seed: int, size: int = 48) -> np.ndarray:
    """A smooth, saturated uint8 RGB image: random colour gradients and a disc."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [np.sin(rng.uniform(1, 6) * x + rng.uniform(1, 6) * y + rng.uniform(0, 6)) for _ in range(3)]
    img = (np.stack(channels, -1) * 0.5 + 0.5) * 255
    cy, cx, r = [*rng.uniform(0.3, 0.7, 2).tolist(), rng.uniform(0.1, 0.3)]
    img[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.integers(0, 256, 3)
    return img.astype(np.uint8)


def skimage_photos(size: int = 64) -> list[np.ndarray]:
    """Held-out real photos from scikit-image, resized to ``size`` squares."""
    from skimage import data

    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        im = Image.fromarray(getattr(data, name)()).convert("RGB").resize((size, size), Image.BICUBIC)
        out.append(np.asarray(im))
    return out


def grey_file(path: Path, size: tuple[int, int] = (24, 16)) -> Path:
    """A flat grey image at ``path``, its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, 128).save(path)
    return path


def write_folder(root: Path, n_train: int = 8, n_val: int = 4, size: int = 48) -> Path:
    """A folder with train/ and val/ subfolders of PNG and JPEG colour images."""
    for split, n, offset in (("train", n_train, 0), ("val", n_val, 1000)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            fmt = "png" if i % 2 else "jpg"
            Image.fromarray(colourful(offset + i, size)).save(root / split / f"img{i}.{fmt}")
    return root


def write_tar(path: Path, n_train: int = 8, n_val: int = 4, size: int = 48) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for split, n, offset in (("train", n_train, 0), ("test", n_val, 1000)):
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(colourful(offset + i, size)).save(buf, "WEBP", lossless=True)
                info = tarfile.TarInfo(f"set/{split}/c/img{i}.webp")
                info.size = buf.tell()
                buf.seek(0)
                tf.addfile(info, buf)
    return path


def write_cifar_batches(root: Path, n_train: int = 6, n_val: int = 4) -> Path:
    """CIFAR-10's official python layout: pickled dicts of uint8 rows (3072 = 3×32×32)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, n, offset in (("data_batch_1", n_train, 0), ("test_batch", n_val, 500)):
        rows = np.stack([colourful(offset + i, 32).transpose(2, 0, 1).reshape(-1) for i in range(n)])
        batch = {
            b"data": rows,
            b"labels": [i % 2 for i in range(n)],
            b"filenames": [f"img_{offset + i}.png".encode() for i in range(n)],
        }
        with open(root / name, "wb") as fh:
            pickle.dump(batch, fh)
    with open(root / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [b"airplane", b"automobile"]}, fh)
    return root


def gray_icc_profile(gamma: float, description: str = "test gray") -> bytes:
    """A minimal ICC v2 grey display profile with a pure-gamma tone curve (Pillow cannot make one)."""
    return _icc_profile(b"GRAY", {b"kTRC": _curve(gamma)}, description)


# sRGB's primaries, adapted to the ICC's D50 white (Bradford)
SRGB_PRIMARIES_D50 = ((0.4360, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


def rgb_icc_profile(gamma: float, description: str = "test rgb") -> bytes:
    """A minimal ICC v2 RGB display profile: sRGB's primaries with a pure-gamma tone curve."""
    columns = {
        sig: _xyz(*xyz) for sig, xyz in zip((b"rXYZ", b"gXYZ", b"bXYZ"), SRGB_PRIMARIES_D50, strict=True)
    }
    curves = {sig: _curve(gamma) for sig in (b"rTRC", b"gTRC", b"bTRC")}
    return _icc_profile(b"RGB ", columns | curves, description)


def _s15(x: float) -> bytes:
    return struct.pack(">i", round(x * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def _curve(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def _icc_profile(space: bytes, own_tags: dict[bytes, bytes], description: str) -> bytes:
    text = description.encode("ascii") + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    cprt = b"text" + bytes(4) + b"none\0" + bytes(3)
    tags = [(b"desc", desc), (b"wtpt", _xyz(0.9642, 1.0, 0.8249)), *own_tags.items(), (b"cprt", cprt)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + bytes(4)
        + struct.pack(">I", 0x02100000)
        + b"mntr"
        + space
        + b"XYZ "
        + bytes(12)
        + b"acsp"
        + bytes(4 + 4 + 4 + 4 + 8 + 4)
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + bytes(4 + 16 + 28)
    )
    assert len(header) == 128
    return header + table + body


def png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG of (H, W, C) uint16 pixels, C = 2 (grey+alpha), 3 or 4: Pillow writes none."""
    height, width, channels = pixels.shape
    colour_type = {2: 4, 3: 2, 4: 6}[channels]
    rows = pixels.astype(">u2").reshape(height, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()  # filter 0

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def png_bomb(path: Path, side: int = 20000) -> Path:
    """A 100-byte PNG that says it is side × side pixels: a decompression bomb's header."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    png = bytearray(buffer.getvalue())
    png[16:24] = struct.pack(">II", side, side)  # IHDR's width and height
    png[29:33] = struct.pack(">I", zlib.crc32(png[12:29]))
    path.write_bytes(bytes(png))
    return path
