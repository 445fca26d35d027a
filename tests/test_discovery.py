"""Discovery: folders, files, patterns and path lists turned into jobs, and shards of them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from photos import grey_file
from PIL import Image

from colorcli import discovery


def _jobs(items) -> list[discovery.Job]:
    return [j for j in items if isinstance(j, discovery.Job)]


def test_folder_is_mirrored_beside_itself_by_default(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    images = ("a.jpg", "b.gif", "c.jfif", "sub/d.png", "sub/e.jp2", "sub/deeper/f.tif")
    for rel in (*images, "notes.txt", ".hidden.jpg"):
        (
            grey_file(root / rel)
            if rel.endswith(("jpg", "gif", "jfif", "png", "jp2", "tif"))
            else (root / rel).write_text("x")
        )
    jobs = _jobs(discovery.discover([str(root)], None, "keep"))
    out = tmp_path / "photos-colorized"
    # formats colorcli cannot write (GIF, JPEG 2000) come out as PNG
    assert [(j.source.relative_to(root).as_posix(), j.target) for j in jobs] == [
        ("a.jpg", out / "a.jpg"),
        ("b.gif", out / "b.png"),
        ("c.jfif", out / "c.jfif"),
        ("sub/d.png", out / "sub" / "d.png"),
        ("sub/e.jp2", out / "sub" / "e.png"),
        ("sub/deeper/f.tif", out / "sub" / "deeper" / "f.tif"),
    ]
    flat = _jobs(discovery.discover([str(root)], tmp_path / "o", "png", recursive=False))
    assert [j.target for j in flat] == [tmp_path / "o" / f"{name}.png" for name in "abc"]


def test_walk_skips_its_own_output_and_survives_symlink_loops(tmp_path: Path) -> None:
    root = tmp_path / "in"
    grey_file(root / "x.jpg")
    grey_file(root / "out" / "old-result.jpg")  # the output folder, inside the input
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "sub").mkdir()
    (root / "sub" / "back").symlink_to(root / "sub", target_is_directory=True)
    (root / "sub" / "moved.png").symlink_to(root / "sub" / "moved away.png")  # its photo is gone
    items = list(discovery.discover([str(root)], root / "out", "keep"))
    assert [j.source.name for j in _jobs(items)] == ["x.jpg"]
    failed = [(Path(r.input).name, r.error) for r in items if isinstance(r, discovery.Result)]
    assert failed == [("moved.png", f"a broken symbolic link (to {root / 'sub' / 'moved away.png'})")]


def test_loose_files_globs_and_missing_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    grey_file(tmp_path / "d" / "-dash.jpg")
    grey_file(tmp_path / "d" / "with space ü.png")
    items = list(
        discovery.discover(["d/*.jpg", "d/with space ü.png", "missing.jpg", "none*.png"], None, "keep")
    )
    jobs = _jobs(items)
    assert [j.target for j in jobs] == [Path("d/-dash-colorized.jpg"), Path("d/with space ü-colorized.png")]
    failures = [(r.input, r.error) for r in items if isinstance(r, discovery.Result)]
    assert failures == [
        ("missing.jpg", "no such file or folder"),
        ("none*.png", "the pattern matches no files"),
    ]
    # under -o a file keeps its path relative to the working folder, however it was spelled
    spellings = ["d/-dash.jpg", str(tmp_path / "d" / "-dash.jpg"), "d/../d/-dash.jpg"]
    mirrored = _jobs(discovery.discover(spellings, Path("o"), "webp"))
    assert [j.target for j in mirrored] == [Path("o/d/-dash.webp")] * 3
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # outside the working folder: its name alone
    outside = _jobs(
        discovery.discover([str(tmp_path / "d" / "-dash.jpg"), "../d/-dash.jpg"], Path("o"), "webp")
    )
    assert [j.target for j in outside] == [Path("o/-dash.webp")] * 2
    # a pattern reached through a symbolic link still leaves the last run's results alone
    for name in ("x/p.png", "x-colorized/p.png", "q.png", "q-colorized.png"):
        grey_file(tmp_path / "real" / "scans" / name)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    again = _jobs(discovery.discover([str(tmp_path / "link" / "scans" / "*")], None, "keep"))
    assert sorted(j.source.relative_to(tmp_path / "link" / "scans").as_posix() for j in again) == [
        "q.png",
        "x/p.png",
    ]


def test_shards_partition_the_files_deterministically(tmp_path: Path) -> None:
    for i in range(40):
        grey_file(tmp_path / "in" / f"{i:02d}.png", (2, 2))
    jobs = _jobs(discovery.discover([str(tmp_path / "in")], None, "keep"))
    shards = [[j for j in jobs if discovery.in_shard(j, (k, 3))] for k in (1, 2, 3)]
    assert sorted(j.source for s in shards for j in s) == [j.source for j in jobs]
    assert all(len(s) > 5 for s in shards)
    # the same slices in every process and on every machine (Python's own hash() is salted)
    named = [discovery.Job(Path(f"in/{i:02d}.png"), Path("o")) for i in range(12)]
    assert [[j.source.name[:2] for j in named if discovery.in_shard(j, (k, 3))] for k in (1, 2, 3)] == [
        ["02", "06", "07"],
        ["01", "03", "04", "05", "08"],
        ["00", "09", "10", "11"],
    ]
    assert discovery.parse_shard("2/3") == (2, 3)
    assert discovery.parse_shard(" 2/3\n") == (2, 3)  # as an unquoted $(cat FILE) may bring it
    for bad in ("0/3", "4/3", "x", "1/0", "1_0/20", "+1/2", "\u0661/2", "1/2/3"):
        with pytest.raises(ValueError, match="shard"):
            discovery.parse_shard(bad)


def test_path_lists_from_standard_input() -> None:
    lines = io.BytesIO(b"a.jpg\r\nwith space.png\n\n-dash.jpg")
    assert list(discovery.read_path_list(lines, nul=False)) == ["a.jpg", "with space.png", "-dash.jpg"]
    nul = io.BytesIO("new\nline.jpg\0ü.png\0".encode())
    assert list(discovery.read_path_list(nul, nul=True)) == ["new\nline.jpg", "ü.png"]
    # the first bytes read already (to tell paths from an image) are part of the list
    rest = io.BytesIO(b"ne.png\nb.jpg")
    assert list(discovery.read_path_list(rest, nul=False, head=b"a.png\no")) == ["a.png", "one.png", "b.jpg"]
    assert list(discovery.read_path_list(io.BytesIO(b""), nul=False, head=b"a.png\nb.png\n")) == [
        "a.png",
        "b.png",
    ]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF", "JPEG2000", "HEIF", "PPM"])
def test_stdin_image_detection(fmt: str) -> None:
    buffer = io.BytesIO()
    Image.new("L", (64, 64)).save(buffer, fmt)
    assert discovery.stdin_is_image(buffer.getvalue()[:16])
    assert not discovery.stdin_is_image(b"photos/BMW 1960.jpg\n")
    assert not discovery.stdin_is_image(b"P5 prints/a.jpg\n")
    assert discovery.stdin_is_image(b"P5\n# scanned by\n")  # a netpbm comment before the size


def test_paths_keep_their_tree_under_a_working_folder_reached_through_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grey_file(tmp_path / "real" / "box1" / "scan.png")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path / "link")
    monkeypatch.setenv("PWD", str(tmp_path / "link"))  # the shell's name for it; getcwd() has the real one
    (job,) = _jobs(discovery.discover([str(tmp_path / "link" / "box1" / "scan.png")], Path("/o"), "keep"))
    assert job.target == Path("/o/box1/scan.png")


def test_a_linked_folder_s_results_go_beside_the_link(tmp_path: Path) -> None:
    grey_file(tmp_path / "archive" / "scans" / "a.png")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "scans").symlink_to(tmp_path / "archive" / "scans")
    (job,) = _jobs(discovery.discover([str(tmp_path / "mine" / "scans")], None, "keep"))
    assert job.target == tmp_path / "mine" / "scans-colorized" / "a.png"


def test_a_pattern_rerun_in_another_format_leaves_the_last_results_alone(tmp_path: Path) -> None:
    grey_file(tmp_path / "g" / "a.jpg")
    grey_file(tmp_path / "g" / "a-colorized.jpg")  # the last run's, in the default format
    jobs = _jobs(discovery.discover([str(tmp_path / "g" / "*.jpg")], None, "png"))
    assert [j.source.name for j in jobs] == ["a.jpg"]


def test_a_path_list_is_read_as_it_arrives() -> None:
    class Pipe(io.RawIOBase):  # a producer that has written one path and not yet the next
        def __init__(self) -> None:
            self.parts = [b"a.png\n", b"b.png\n"]
            self.taken = False  # whether a.png has been coloured, so the producer goes on

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            if not self.parts:
                return 0
            if len(self.parts) == 1 and not self.taken:
                raise AssertionError("waited for the producer before taking the path it had written")
            part = self.parts.pop(0)
            buffer[: len(part)] = part
            return len(part)

    pipe = Pipe()
    paths = discovery.read_path_list(io.BufferedReader(pipe), nul=False)
    assert next(paths) == "a.png"
    pipe.taken = True
    assert list(paths) == ["b.png"]
