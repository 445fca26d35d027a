"""Which photos a run colours and where each result goes: files, folders, patterns and path
lists turned into :class:`Job` s, split into shards, and checked so that no two inputs write one
file and no output replaces an input.

Discovery is a generator, so memory stays flat however many files there are, but for a digest
of each input and output (:class:`Claims`).
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from colorcli import imageio

_SUFFIX_FORMATS = {".jpg": "jpg", ".jpeg": "jpg", ".jpe": "jpg", ".jfif": "jpg", ".png": "png"}
_SUFFIX_FORMATS |= {".webp": "webp", ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp"}


@dataclass(frozen=True)
class Job:
    """One photo to colour and where its result goes."""

    source: Path
    target: Path


@dataclass
class Result:
    """What happened to one input: status is ok, failed, skipped or planned (--dry-run)."""

    input: str
    output: str | None
    status: str
    error: str | None = None
    ms: float = 0.0
    megapixels: float = 0.0
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None or k in ("output", "error")}


def target_suffix(source: Path, fmt: str) -> str:
    if fmt != "keep":
        return imageio.OUTPUT_FORMATS[fmt][1]
    return source.suffix if source.suffix.lower() in _SUFFIX_FORMATS else ".png"


def format_of(target: Path) -> str:
    """The output format a result's name asks for (PNG for a suffix no writer has)."""
    return _SUFFIX_FORMATS.get(target.suffix.lower(), "png")


def discover(
    inputs: Iterable[str], output: Path | None, fmt: str, recursive: bool = True
) -> Iterator[Job | Result]:
    """Jobs for files, folders (mirrored under OUTPUT, default ``FOLDER-colorized``) and globs.

    Streams: folders are walked lazily, in sorted order. Inputs that do not exist come out as
    failed :class:`Result` s. Folder walks never enter an output folder and survive symlink loops.
    """
    for raw in inputs:
        path = Path(raw)
        try:
            path.stat()
        except FileNotFoundError:
            pass
        except OSError as exc:  # a name too long, a folder in the path not searchable
            yield Result(raw, None, "failed", f"cannot look it up: {exc.strerror or exc}")
            continue
        if path.is_dir():
            yield from _folder_jobs(path, output, fmt, recursive)
        elif path.is_file():
            yield _loose_job(path, output, fmt)
        elif glob.has_magic(raw):
            matches = _pattern_inputs(raw, output, fmt, recursive)
            if matches is None:
                yield Result(raw, None, "failed", "the pattern matches no files")
            yield from discover(matches or [], output, fmt, recursive)
        else:
            yield Result(raw, None, "failed", "no such file or folder")


def _pattern_inputs(pattern: str, output: Path | None, fmt: str, recursive: bool) -> list[str] | None:
    """A pattern's matches that are inputs, sorted (None when it matches nothing at all)."""
    matches = sorted(glob.glob(pattern, recursive=recursive))
    if not matches:
        return None
    ours = _outputs_among(matches, output, fmt)
    return [match for match in matches if os.path.realpath(match) not in ours]


class Reads:
    """Every file a run given ``inputs`` (files, folders, patterns) reads, known before it starts.

    :class:`Claims` meets inputs one by one, so an early job's output could replace, under
    --overwrite, an input a later job has yet to read (``colorize dir a.png -o . --overwrite``:
    ``dir/a.png``'s result is ``./a.png``). A path list on standard input is known only as it
    streams; :class:`Claims` covers that.
    """

    def __init__(self, inputs: Iterable[str], output: Path | None, fmt: str, recursive: bool = True) -> None:
        self._files: set[str] = set()
        self._folders: list[tuple[Path, Path | None, bool]] = []  # (root, output inside it, recursive)
        self._recursive = recursive
        for raw in inputs:
            self._add(raw, output, fmt)

    def _add(self, raw: str, output: Path | None, fmt: str) -> None:
        path = Path(raw)
        if not _exists(path):
            pass
        elif path.is_dir():
            root, out = path.resolve(), _folder_output(path, output).resolve()
            self._folders.append((root, out if out.is_relative_to(root) else None, self._recursive))
        elif path.is_file():
            self._files.add(os.path.realpath(path))
        elif glob.has_magic(raw):
            for match in _pattern_inputs(raw, output, fmt, self._recursive) or []:
                self._add(match, output, fmt)

    def __contains__(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        if str(real) in self._files:
            return True
        if real.suffix.lower() not in imageio.INPUT_SUFFIXES or not _exists(real):
            return False
        for root, out, recursive in self._folders:
            if real.is_relative_to(root) and not (out is not None and real.is_relative_to(out)):
                parts = real.relative_to(root).parts
                if (recursive or len(parts) == 1) and not any(p.startswith(".") for p in parts):
                    return True
        return False


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; False for one the system cannot look up, whose name is too long
    say: it holds nothing to read, and writing it fails with the reason, for that file alone."""
    try:
        return path.exists()
    except OSError:
        return False


def _outputs_among(matches: list[str], output: Path | None, fmt: str) -> set[str]:
    """The matches of a pattern that this run writes itself, as real paths (symbolic links
    followed): what lies under ``output``, or else each match's default result (and --compare
    picture) beside it. A rerun of ``colorize 'scans/*.jpg'`` must not colour the last run's
    results."""
    if output is not None:
        root = output.resolve()
        return {os.path.realpath(m) for m in matches if Path(m).resolve().is_relative_to(root)}
    ours = set()
    for match in map(Path, matches):
        if match.is_dir():
            ours.add(os.path.realpath(default_output(match)))
        else:  # in any format: a rerun with another --format must not colour them either
            for suffix in {target_suffix(match, fmt), *(s for _, s in imageio.OUTPUT_FORMATS.values())}:
                target = _loose_job(match, None, fmt).target.with_suffix(suffix)
                ours.update(os.path.realpath(t) for t in (target, compare_path(target)))
    return ours


def _loose_job(path: Path, output: Path | None, fmt: str) -> Job:
    suffix = target_suffix(path, fmt)
    if output is None:
        return Job(path, path.with_name(f"{path.stem}-colorized{suffix}"))
    return Job(path, (output / _relative_part(path)).with_suffix(suffix))


def _relative_part(path: Path) -> Path:
    """Where a file given by name lands under -o: its path relative to the working folder (an
    absolute path inside it, as ``find "$PWD"`` prints, included), else its bare name."""
    if not path.is_absolute() and ".." not in path.parts:
        return path
    absolute = Path(os.path.abspath(path))
    for folder in _working_folder_names():
        if absolute.is_relative_to(folder):
            return absolute.relative_to(folder)
    return Path(path.name)


def _working_folder_names() -> list[Path]:
    """The working folder, and the shell's name for it ($PWD) when that is reached through a
    symbolic link, so ``find "$PWD/"`` paths keep their tree there too."""
    names = [Path.cwd()]
    shell = os.environ.get("PWD")
    try:
        if shell and Path(shell) != names[0] and os.path.samefile(shell, names[0]):
            names.append(Path(shell))
    except OSError:
        pass
    return names


def default_output(folder: Path) -> Path:
    # beside the folder as named: a symbolic link's target may be a read-only archive mount
    absolute = Path(os.path.abspath(folder))
    return absolute.parent / f"{absolute.name}-colorized"


def _folder_output(folder: Path, output: Path | None) -> Path:
    return output if output is not None else default_output(folder)


def _folder_jobs(folder: Path, output: Path | None, fmt: str, recursive: bool) -> Iterator[Job | Result]:
    out_root = _folder_output(folder, output)
    if out_root.resolve() == folder.resolve():
        yield Result(str(folder), None, "failed", "-o is this folder itself; choose another output folder")
        return
    avoid = {out_root.resolve()}
    for path in _walk(folder, recursive, avoid):
        if isinstance(path, Result):
            yield path
            continue
        rel = path.relative_to(folder)
        yield Job(path, (out_root / rel).with_suffix(target_suffix(path, fmt)))


def _walk(root: Path, recursive: bool, avoid: set[Path]) -> Iterator[Path | Result]:
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen or folder.resolve() in avoid:
                continue  # a symlink loop, a folder reached twice, or our own output
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield Result(str(folder), None, "failed", f"cannot list folder: {exc.strerror or exc}")
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files, and our own temporary files
            try:
                if entry.is_dir():
                    subfolders.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() not in imageio.INPUT_SUFFIXES:
                    continue
                elif entry.is_file():
                    yield Path(entry.path)
                elif entry.is_symlink():  # its target is gone: say so, not leave the photo out unseen
                    target = os.readlink(entry.path)
                    yield Result(entry.path, None, "failed", f"a broken symbolic link (to {target})")
            except OSError:
                continue
        if recursive:
            stack.extend(reversed(subfolders))


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) -> (K, N); ValueError with a usable message otherwise."""
    # plain ASCII digits: int() also takes "1_0", "+2" and other scripts' digits
    match = re.fullmatch(r"([0-9]+)/([0-9]+)", text.strip())
    if match is None:
        raise ValueError(f"--shard expects K/N such as 2/8, not {text!r}")
    k, n = int(match[1]), int(match[2])
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K must be between 1 and N")
    return k, n


def in_shard(job: Job | Result, shard: tuple[int, int]) -> bool:
    """Deterministic split by a hash of the input path: the same on every machine, no coordination."""
    name = job.source if isinstance(job, Job) else job.input
    k, n = shard
    # a cryptographic digest, not crc32: CRC's low bits are linear in the input bits, so names
    # differing in one character can all land in the same shard
    digest = hashlib.blake2b(os.fsencode(str(name)), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n == k - 1


def read_path_list(stream: BinaryIO, nul: bool, head: bytes = b"") -> Iterator[str]:
    """Paths from standard input, one per line (or NUL-separated), streamed; ``head``: its first
    bytes, read already."""
    sep = b"\0" if nul else b"\n"
    pending = b""
    # read1: what the pipe holds now, so a slow producer's paths are coloured as they come
    read = getattr(stream, "read1", stream.read)
    for chunk in itertools.chain([head], iter(lambda: read(1 << 16), b"")):
        pending += chunk
        *complete, pending = pending.split(sep)
        for item in complete:
            yield from _decoded_path(item, nul)
    yield from _decoded_path(pending, nul)


def _decoded_path(item: bytes, nul: bool) -> Iterator[str]:
    if not nul:
        item = item.rstrip(b"\r")
    if item:
        yield os.fsdecode(item)


def stdin_is_image(head: bytes) -> bool:
    """Whether the first bytes of standard input are an image rather than a list of paths."""
    signatures = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"GIF8")
    jpeg2000 = (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xffO\xffQ")
    bmp = head[:2] == b"BM" and head[6:10] == b"\0\0\0\0"  # a path list could start with "BM"
    webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    heif = head[4:8] == b"ftyp"  # ISO media box: HEIC/HEIF (no path starts with 4 bytes, then "ftyp")
    # PGM/PPM/PBM, as netpbm and ImageMagick pipes carry them: "P5", blank, a comment or the width
    netpbm = re.match(rb"P[1-7]\s+[#0-9]", head) is not None
    return head.startswith(signatures + jpeg2000) or bmp or webp or heif or netpbm


class Claims:
    """The inputs and outputs one run has met, so that no two inputs write the same file.

    Jobs run several at a time, so two jobs with one target would both find it free and the
    second rename would silently replace the first result. With ``compare``, each job's
    --compare picture is an output too (``a.jpg``'s is where ``a-compare.jpg``'s result goes).
    Kept as 8-byte digests: under 200 bytes a file, however long the paths.
    """

    def __init__(self, compare: bool = False, reads: Reads | None = None) -> None:
        self._compare = compare
        self._reads = reads
        self._outputs: dict[int, int] = {}  # output -> the input that writes it
        self._inputs: set[int] = set()

    def check(self, job: Job) -> Result | None:
        """None when ``job`` may go ahead (and it is claimed), else the Result it ends in."""
        source = _digest(job.source)
        written = [job.target, compare_path(job.target)] if self._compare else [job.target]
        outputs = [_digest(path) for path in written]
        if self._outputs.get(outputs[0]) == source:
            return Result(str(job.source), str(job.target), "skipped", note="given twice")
        for path, output in zip(written, outputs, strict=True):
            if output in self._outputs:
                return Result(
                    str(job.source),
                    str(job.target),
                    "failed",
                    f"another input of this run has the same output, {path}; "
                    "colour them into separate -o folders",
                )
        if any(output in self._inputs for output in outputs) or self._read_later(job, written):
            return Result(
                str(job.source), str(job.target), "failed", "the output would overwrite another input"
            )
        if source in self._outputs:
            return Result(str(job.source), str(job.target), "skipped", note="the output of another input")
        self._outputs.update(dict.fromkeys(outputs, source))
        self._inputs.add(source)
        return None

    def _read_later(self, job: Job, written: list[Path]) -> bool:
        # the job's own input is _target_problem's to report
        own = os.path.realpath(job.source)
        return self._reads is not None and any(
            os.path.realpath(path) != own and path in self._reads for path in written
        )


def _digest(path: Path) -> int:
    # symbolic links followed: d/x.png through a link to . is x.png
    absolute = os.fsencode(os.path.realpath(path))
    return int.from_bytes(hashlib.blake2b(absolute, digest_size=8).digest(), "big")


def compare_path(target: Path) -> Path:
    """Where --compare writes its grey|colour picture: beside the result."""
    return target.with_name(f"{target.stem}-compare{target.suffix}")
