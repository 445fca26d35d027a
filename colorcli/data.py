"""Training data: image folders, tar archives read in place, and CIFAR-10 pickled batches.

Every ``--data`` path becomes a list of :class:`Record`; a quick inspection pass drops
corrupt and near-grey images (counted and reported), and :class:`ColourDataset` turns the
rest into uint8 RGB crops. Lab conversion happens later, on whole batches, in the trainer.
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import random
import tarfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from colorcli import color, imageio
from colorcli.imageio import INPUT_SUFFIXES

TRAIN_DIRS = {"train", "training"}
VAL_DIRS = {"val", "valid", "validation", "test"}
GREY_CHROMA = 3.0  # mean CIELAB chroma below which an image teaches only "no colour"
NAMED_GREY = 20  # near-grey images named one by one; the rest are counted


class DataError(ValueError):
    """A ``--data`` path that is missing, empty or of an unknown kind."""


@dataclass(frozen=True)
class Record:
    """One training image: its name, split, and either encoded bytes, a file path, or pixels."""

    key: str
    split: str  # "train" or "val"
    payload: bytes | str | np.ndarray

    def open(self, draft: int = 0) -> Image.Image:
        """The decoded image; a JPEG with ``draft`` decoded at the smallest DCT scale that keeps
        both sides at least that long (much faster for a large photo; Pillow's ``draft``)."""
        if isinstance(self.payload, np.ndarray):
            return Image.fromarray(self.payload)
        src = io.BytesIO(self.payload) if isinstance(self.payload, bytes) else self.payload
        with Image.open(src) as im:
            imageio.check_megapixels(im)
            if draft:
                im.draft("RGB", (draft, draft))
            im.load()
            return im


def to_rgb(im: Image.Image) -> Image.Image:
    """EXIF orientation applied, any mode (CMYK, palette, grey, 16-bit) to 8-bit RGB."""
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32)
        peak = 65535.0 if arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if im.mode in ("P", "LA", "PA", "RGBA"):
        im = im.convert("RGBA").convert("RGB")
    return im.convert("RGB")


def _hash_fraction(key: str) -> float:
    """A fixed number in [0, 1) for ``key``: the same split on every machine and every run."""
    return int.from_bytes(hashlib.md5(key.encode()).digest()[:8], "big") / 2.0**64


def _split_of(path_parts: Iterable[str], key: str, val_fraction: float) -> str:
    dirs = {p.lower() for p in path_parts}
    if dirs & VAL_DIRS:
        return "val"
    if dirs & TRAIN_DIRS:
        return "train"
    return "val" if _hash_fraction(key) < val_fraction else "train"


def _is_image_name(parts: tuple[str, ...]) -> bool:
    """An image's path, inside a folder or an archive, by its suffix. Hidden files and folders
    are left out, as colorize and evaluate leave them: macOS's ``._NAME.jpg`` resource forks
    are not images, and a ``.thumbnails/`` folder holds small copies of the photos."""
    return Path(*parts).suffix.lower() in INPUT_SUFFIXES and not any(p.startswith(".") for p in parts)


def class_of(key: str) -> str:
    """A training image's class, for ``train --class-weight``: the folder it lies in (CIFAR's
    ``cifar10/train/automobile/``), or where that folder is a split, its file name up to the
    first "_" (ImageNet's ``train/n01440764_10043.jpg``, ``buildings_10014.jpg``)."""
    parts = key.replace(":", "/").split("/")
    folder = parts[-2].lower() if len(parts) > 1 else ""
    if folder and folder not in TRAIN_DIRS | VAL_DIRS:
        return parts[-2]
    return Path(parts[-1]).stem.split("_")[0]


class _Seen:
    """The images taken so far, by key (a resolved file, an (archive, member) pair, a CIFAR batch
    file), and how many came again."""

    def __init__(self) -> None:
        self.keys: set[object] = set()
        self.repeats = 0

    def first(self, key: object) -> bool:
        """Whether ``key`` is new (it is then taken); a repeat is counted."""
        if key in self.keys:
            self.repeats += 1
            return False
        self.keys.add(key)
        return True


def _from_folder(root: Path, val_fraction: float, seen: _Seen, skip: Path | None = None) -> list[Record]:
    skipped = skip.resolve() if skip is not None else None
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not _is_image_name(rel.parts) or not p.is_file():
            continue
        real = p.resolve()
        if (skipped is not None and real.is_relative_to(skipped)) or not seen.first(real):
            continue
        name = rel.as_posix()  # "/" on every OS: the split hashes it
        out.append(Record(f"{root.name}/{name}", _split_of(rel.parts[:-1], name, val_fraction), str(p)))
    return out


def _from_tar(path: Path, val_fraction: float, seen: _Seen, inner: str = "") -> list[Record]:
    """The archive's images, or with ``inner`` only those in that folder of it."""
    archive = path.resolve()
    out = []
    try:
        with tarfile.open(path) as tf:
            for member in tf:
                name = member.name
                parts = Path(name).parts
                if not member.isfile() or not _is_image_name(parts):
                    continue
                if inner and not Path(name).is_relative_to(inner):
                    continue
                if not seen.first((archive, name)):
                    continue
                fh = tf.extractfile(member)
                if fh is None:
                    continue
                out.append(
                    Record(f"{path.name}:{name}", _split_of(parts[:-1], name, val_fraction), fh.read())
                )
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the archive ({exc})") from None
    return out


def _from_cifar_batches(root: Path, seen: _Seen) -> list[Record]:
    """The batches' images, each keyed by its class's name (``batches.meta``) as a folder, so
    :func:`class_of` reads it as it reads CIFAR's image-folder archives."""
    meta = root / "batches.meta"
    classes: list[str] = []
    if meta.is_file():
        with open(meta, "rb") as fh:
            classes = [c.decode() for c in pickle.load(fh, encoding="bytes").get(b"label_names", [])]
    out = []
    for batch in sorted(root.glob("data_batch_*")) + sorted(root.glob("test_batch")):
        if not seen.first(batch.resolve()):
            continue
        with open(batch, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
        pixels = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        names = d.get(b"filenames") or [f"{i:05d}".encode() for i in range(len(pixels))]
        labels = [classes[i] if i < len(classes) else str(i) for i in d.get(b"labels", [])]
        labels += ["unlabelled"] * (len(pixels) - len(labels))
        split = "val" if batch.name == "test_batch" else "train"
        out += [
            Record(f"{root.name}/{batch.name}/{label}/{n.decode()}", split, np.ascontiguousarray(px))
            for n, label, px in zip(names, labels, pixels, strict=True)
        ]
    return out


def find_records(
    paths: Iterable[str | Path], val_fraction: float = 0.05, skip: Path | None = None
) -> list[Record]:
    """All images under the ``--data`` paths, with their train/val split; none under ``skip``
    (the run's own folder, whose sample sheets a run inside its data folder would train on).
    An image that two paths name (``--data photos --data photos/val``, a folder and a link to
    it, an archive and a folder of it) is taken once, from the first: twice, it could land in
    both splits and validation would score photos the model trained on."""
    records: list[Record] = []
    seen = _Seen()
    for raw in paths:
        path = Path(raw)
        repeats = seen.repeats
        found = _from_source(path, val_fraction, seen, skip)
        if not found and seen.repeats > repeats:
            raise DataError(
                f"--data {path}: each of its images is already in an earlier --data; pass each once"
            )
        if not found:
            archive, inner = _archive_and_folder(path)
            if archive is not None:
                raise DataError(f"--data {path}: {archive} holds no images under {inner}/")
            raise DataError(f"--data {path}: no images found{_cifar_hint(path)}")
        records += found
    return records


def _from_source(path: Path, val_fraction: float, seen: _Seen, skip: Path | None) -> list[Record]:
    """The images of one ``--data`` path that are not in ``seen``, whatever kind of path it is."""
    archive, inner = _archive_and_folder(path)
    if archive is not None:
        return _from_tar(archive, val_fraction, seen, inner)
    if not path.exists():
        raise DataError(f"--data {path}: no such file or folder")
    if path.is_dir() and any(path.glob("data_batch_*")):
        return _from_cifar_batches(path, seen)
    if path.is_dir():
        return _from_folder(path, val_fraction, seen, skip)
    if tarfile.is_tarfile(path):
        return _from_tar(path, val_fraction, seen)
    raise DataError(
        f"--data {path}: not a folder of images, a .tar/.tar.gz archive or a CIFAR batches folder"
    )


def _archive_and_folder(path: Path) -> tuple[Path | None, str]:
    """``photos.tar.gz/cifar10/train/automobile`` names a folder inside an archive, to train on
    part of one in place: (the archive, the folder's path inside it). (None, "") otherwise."""
    if path.exists():
        return None, ""
    for parent in path.parents:
        if parent.is_file():
            inner = path.relative_to(parent).as_posix()
            return (parent, inner) if tarfile.is_tarfile(parent) else (None, "")
    return None, ""


def _cifar_hint(path: Path) -> str:
    """What to pass instead when CIFAR-10's python batches lie deeper in a folder, or in the
    archive they are downloaded as (read only once unpacked: they are pickles)."""
    if path.is_dir():
        batch = next(path.rglob("data_batch_*"), None)
        return f"; CIFAR-10's batches are in {batch.parent}: pass that folder" if batch else ""
    with tarfile.open(path) as tf:
        name = next((m.name for m in tf if Path(m.name).name.startswith("data_batch_")), None)
    if name is None:
        return ""
    return f"; it is CIFAR-10's python archive: unpack it and pass its {Path(name).parent} folder"


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean CIELAB chroma of a uint8 RGB image."""
    lab = color.rgb_to_lab(rgb.astype(np.float32) / 255.0)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def _inspect(record: Record) -> str | None:
    """None for a usable image, else the reason it is skipped."""
    try:
        im = to_rgb(record.open(draft=64))  # enough to judge colour
        im.thumbnail((64, 64))
    except Exception as exc:  # any decoder error means the file is unusable, whatever its type
        return f"unreadable ({type(exc).__name__}: {exc})"
    if mean_chroma(np.asarray(im)) < GREY_CHROMA:
        return "grey"
    return None


@dataclass
class DataSummary:
    train: int = 0
    val: int = 0
    grey: int = 0
    corrupt: int = 0
    sources: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "train": self.train,
            "val": self.val,
            "skipped_grey": self.grey,
            "skipped_corrupt": self.corrupt,
            "sources": self.sources,
        }


def select(
    records: list[Record], threads: int = 4, warn: Callable[[str], None] = print
) -> tuple[list[Record], list[Record], DataSummary]:
    """Split records into train and val, dropping corrupt and near-grey images."""
    summary = DataSummary()
    with ThreadPoolExecutor(max(1, threads)) as pool:
        verdicts = list(pool.map(_inspect, records, chunksize=64))
    train, val = [], []
    for rec, why in zip(records, verdicts, strict=True):
        if why == "grey":
            summary.grey += 1
            if summary.grey <= NAMED_GREY:  # a whole folder of black-and-white photos would flood
                warn(f"skipping {rec.key}: near-grey, nothing to learn colour from")
        elif why is not None:
            summary.corrupt += 1
            warn(f"skipping {rec.key}: {why}")
        else:
            (val if rec.split == "val" else train).append(rec)
    if summary.grey > NAMED_GREY:
        warn(f"skipping {summary.grey - NAMED_GREY} more near-grey images")
    if not val and len(train) > 1:
        # a folder of a dozen photos of one's own rarely hashes any into a 5 % validation
        # share; one image, the same every run, lets it train rather than fail
        held = min(train, key=lambda rec: _hash_fraction(rec.key))
        train.remove(held)
        val.append(held)
        warn(f"no validation images; validating on {held.key} (add a val/ folder or raise --val-fraction)")
    summary.train, summary.val = len(train), len(val)
    return train, val, summary


class ColourDataset:
    """uint8 RGB tensors (3, S, S): a random square crop (``crop_scale`` to 1 of the shorter
    side), resized to ``size``, randomly flipped. ``augment=False`` gives the centre crop.
    Given ``labels`` (one class index per record), each item is ``(image, label)``.

    Randomness comes from (seed, epoch, index) alone, so an epoch's batches are the same
    whichever worker decodes them and whether or not the run was resumed.
    """

    def __init__(
        self,
        records: list[Record],
        size: int,
        augment: bool,
        seed: int = 0,
        crop_scale: float = 0.8,
        labels: list[int] | None = None,
    ) -> None:
        self.records, self.size, self.augment, self.labels = records, size, augment, labels
        self.seed, self.crop_scale, self.epoch = seed, crop_scale, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Any:
        import torch

        rng = random.Random(f"{self.seed}/{self.epoch}/{index}")
        try:
            # a crop of crop_scale of the shorter side must still reach the training size
            draft = math.ceil(self.size / self.crop_scale) if self.augment else self.size
            im = to_rgb(self.records[index].open(draft))
        except Exception:
            # files were inspected before training, so only one changed since lands here:
            # a black square (a,b = 0) costs one sample instead of the whole run
            im = Image.new("RGB", (self.size, self.size))
        w, h = im.size
        side = min(w, h)
        if self.augment:
            side = max(1, round(side * rng.uniform(self.crop_scale, 1.0)))
            x, y = rng.randint(0, w - side), rng.randint(0, h - side)
        else:
            x, y = (w - side) // 2, (h - side) // 2
        im = im.resize((self.size, self.size), Image.BICUBIC, box=(x, y, x + side, y + side))
        if self.augment and rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        image = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)
        return image if self.labels is None else (image, self.labels[index])
