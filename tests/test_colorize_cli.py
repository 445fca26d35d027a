"""`colorcli colorize` run as a user runs it: a subprocess, real files, a real onnxruntime session."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms
from skimage import data

from colorcli import color, imageio


def colorcli(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "colorcli", *args], input=stdin, capture_output=True, cwd=cwd, timeout=120
    )


def _lightness_error(source: Path, result: Path) -> float:
    grey = imageio.load(source).grey
    grey = grey / (65535.0 if grey.dtype == np.uint16 else 255.0)
    rgb = np.asarray(Image.open(result).convert("RGB")) / 255.0
    return float(np.abs(color.rgb_to_lab(rgb)[..., 0] - color.grey_to_lightness(grey)).mean())


def _png_bit_depth(path: Path) -> int:
    return path.read_bytes()[24]  # IHDR: 8 signature + 8 chunk header + width + height, then depth


@pytest.fixture(scope="module")
def photo_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real photos in several formats and modes, with broken files among them."""
    root = tmp_path_factory.mktemp("tree") / "photos"
    (root / "family" / "1950s").mkdir(parents=True)
    astronaut, camera, coffee = data.astronaut(), data.camera(), data.coffee()
    Image.fromarray(camera).save(root / "camera grey.jpg", quality=90)
    Image.fromarray(astronaut).save(root / "family" / "astronaut rgb.jpg")
    rgba = Image.fromarray(coffee).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(root / "family" / "coffee-rgba.png")
    Image.fromarray(camera.astype(np.uint16) * 257).save(root / "family" / "1950s" / "camera16.png")
    Image.fromarray(camera.astype(np.uint16) * 257).save(root / "family" / "1950s" / "camera16.tif")
    Image.fromarray(camera.astype(np.uint16) * 257).save(root / "family" / "1950s" / "scan16.jp2")
    scan48 = np.dstack([camera, camera * 0.9, camera * 0.8]).astype(np.uint16) * 257
    tifffile.imwrite(root / "family" / "1950s" / "scan48.tif", scan48, photometric="rgb")
    Image.fromarray(astronaut).save(root / "family" / "phone.heic")
    frames = [Image.fromarray(np.roll(camera, 40 * i, 1)) for i in range(2)]
    frames[0].save(root / "family" / "animated.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(astronaut).convert("CMYK").save(root / "family" / "cmyk.tif")
    Image.fromarray(coffee).convert("P").save(root / "family" / "palette.bmp")
    Image.fromarray(data.chelsea()).convert("L").save(root / "family" / "ünïcode cat.webp")
    Image.merge("LA", [Image.fromarray(camera)] * 2).save(root / "-dash la.png")
    (root / "empty.jpg").write_bytes(b"")
    (root / "family" / "notes.png").write_text("not an image")
    truncated = (root / "camera grey.jpg").read_bytes()
    (root / "family" / "truncated.jpg").write_bytes(truncated[: len(truncated) // 3])
    return root


BROKEN = {"empty.jpg", "notes.png", "truncated.jpg"}


def test_a_folder_tree_becomes_a_mirrored_tree_of_colour_photos(
    tiny_onnx_model: Path, photo_tree: Path
) -> None:
    run = colorcli("colorize", str(photo_tree), "--model", str(tiny_onnx_model), "--json", "--device", "cpu")
    assert run.returncode == 1, run.stderr.decode()
    records = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert {Path(r["input"]).name for r in records} == {p.name for p in photo_tree.rglob("*") if p.is_file()}
    assert {Path(r["input"]).name for r in records if r["status"] == "failed"} == BROKEN
    assert all(r["error"] for r in records if r["status"] == "failed")
    assert all({"input", "output", "status", "error", "ms"} <= r.keys() for r in records)
    out = photo_tree.parent / "photos-colorized"
    for record in records:
        if record["status"] != "ok":
            continue
        source, result = Path(record["input"]), Path(record["output"])
        # mirrored, same name and format; GIF, JPEG 2000 and HEIC, which colorcli does not write, as PNG
        written_as_png = source.suffix in (".gif", ".jp2", ".heic")
        mirrored = out / source.relative_to(photo_tree)
        assert result == (mirrored.with_suffix(".png") if written_as_png else mirrored)
        colour = Image.open(result)
        assert colour.size == Image.open(source).size
        assert colour.format == ("PNG" if written_as_png else Image.open(source).format)
        assert _lightness_error(source, result) < 1.0, source.name
    assert Image.open(out / "family" / "coffee-rgba.png").mode == "RGBA"
    assert _png_bit_depth(out / "family" / "1950s" / "camera16.png") == 16
    assert _png_bit_depth(out / "family" / "1950s" / "scan16.png") == 16
    animated = next(r for r in records if r["input"].endswith("animated.gif"))
    assert "only the first of 2 frames" in animated["note"]
    for scan in ("camera16.tif", "scan48.tif"):
        assert Image.open(out / "family" / "1950s" / scan).tag_v2[258] == (16, 16, 16), scan
    stderr = run.stderr.decode()
    assert "on cpu" in stderr  # which device ran
    assert "failed: " in stderr and "coloured, 0 skipped, 3 failed" in stderr
    assert not list(out.rglob(".*"))  # no temporary files
    assert not (photo_tree / "photos-colorized").exists()  # nothing written into the input tree


def test_path_lists_and_streams_on_standard_input(
    tiny_onnx_model: Path, photo_tree: Path, tmp_path: Path
) -> None:
    paths = [photo_tree / "camera grey.jpg", photo_tree / "-dash la.png"]
    listing = b"\0".join(os.fsencode(p) for p in paths) + b"\0"
    run = colorcli(
        "colorize", "-", "-0", "-o", str(tmp_path / "o"), "--model", str(tiny_onnx_model), stdin=listing
    )
    assert run.returncode == 0, run.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["-dash la.png", "camera grey.jpg"]
    assert "ok: " in run.stderr.decode()  # plain lines when stderr is not a terminal

    piped = colorcli("colorize", "-", "--json", "--model", str(tiny_onnx_model), stdin=paths[0].read_bytes())
    assert piped.returncode == 0, piped.stderr.decode()
    record = json.loads(piped.stderr.decode().splitlines()[-1])  # standard output holds the image
    assert record["input"] == "-" and record["output"] == "-" and record["status"] == "ok"
    assert record["megapixels"] == round(np.prod(Image.open(paths[0]).size) / 1e6, 3) and record["ms"] > 0
    broken = colorcli(
        "colorize", "-", "--json", "--model", str(tiny_onnx_model), stdin=paths[0].read_bytes()[:300]
    )  # cut short
    assert broken.returncode == 1 and broken.stdout == b""
    failed = json.loads(broken.stderr.decode().splitlines()[0])
    assert failed["status"] == "failed" and failed["error"] and failed["megapixels"] == 0
    (tmp_path / "piped.jpg").write_bytes(piped.stdout)
    assert Image.open(tmp_path / "piped.jpg").mode == "RGB"
    assert _lightness_error(paths[0], tmp_path / "piped.jpg") < 1.0

    # a pattern that names one file can go to standard output too; one that names more cannot
    pattern = colorcli("colorize", "camera*.jpg", "-o", "-", "--model", str(tiny_onnx_model), cwd=photo_tree)
    assert pattern.returncode == 0, pattern.stderr.decode()
    assert Image.open(io.BytesIO(pattern.stdout)).size == Image.open(paths[0]).size
    several = colorcli("colorize", "*", "-o", "-", "--model", str(tiny_onnx_model), cwd=photo_tree)
    assert several.returncode == 2 and b"matches" in several.stderr

    dashed = colorcli("colorize", "--model", str(tiny_onnx_model), "--", "-dash la.png", cwd=photo_tree)
    assert dashed.returncode == 0, dashed.stderr.decode()
    assert (photo_tree / "-dash la-colorized.png").is_file()
    (photo_tree / "-dash la-colorized.png").unlink()


def test_rerun_options_dry_run_and_compare(tiny_onnx_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(data.camera()).save(src / "a.png")
    Image.fromarray(data.moon()).save(src / "b.jpg")
    model = ("--model", str(tiny_onnx_model))

    dry = colorcli("colorize", str(src), "--dry-run", *model)
    assert dry.returncode == 0 and "would write" in dry.stderr.decode()
    assert not (tmp_path / "in-colorized").exists()

    first = colorcli("colorize", str(src), "--format", "webp", "--quality", "60", "--compare", *model)
    assert first.returncode == 0, first.stderr.decode()
    out = tmp_path / "in-colorized"
    assert sorted(p.name for p in out.iterdir()) == ["a-compare.webp", "a.webp", "b-compare.webp", "b.webp"]
    with Image.open(out / "a-compare.webp") as side:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(side.info["icc_profile"]))
        assert side.size == (1024, 512) and "sRGB" in ImageCms.getProfileDescription(profile)

    again = colorcli("colorize", str(src), "--format", "webp", *model)
    assert again.returncode == 1 and "--overwrite" in again.stderr.decode()
    (out / "b.webp").unlink()
    resumed = colorcli("colorize", str(src), "--format", "webp", "--skip-existing", "--json", *model)
    statuses = {
        Path(r["input"]).name: r["status"] for r in map(json.loads, resumed.stdout.decode().splitlines())
    }
    assert resumed.returncode == 0 and statuses == {"a.png": "skipped", "b.jpg": "ok"}

    # a picture left from --compare is found before anything is written, by a dry run too
    (out / "a.webp").unlink()
    for run in ("--dry-run", "--compare"):
        left = colorcli(
            "colorize", str(src / "a.png"), "-o", str(out), "--format", "webp", "--compare", run, *model
        )
        assert left.returncode == 1 and "a-compare.webp exists; pass --overwrite" in left.stderr.decode()
        assert not (out / "a.webp").exists()

    both = colorcli("colorize", str(src), "--skip-existing", "--overwrite", *model)
    assert both.returncode == 2


def test_shards_split_a_job(tiny_onnx_model: Path, tmp_path: Path) -> None:
    for i in range(8):
        Image.fromarray(data.camera()[i * 8 : i * 8 + 64, :96]).save(tmp_path / f"{i}.png")
    outputs = []
    for k in (1, 2):
        out = tmp_path / f"out{k}"
        # relative paths: the split hashes the path given, so it must not depend on tmp_path
        run = colorcli(
            "colorize",
            "*.png",
            "-o",
            str(out),
            "--shard",
            f"{k}/2",
            "--model",
            str(tiny_onnx_model),
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stderr.decode()
        outputs.append({p.name for p in out.rglob("*.png")})
    assert outputs[0] and outputs[1] and not outputs[0] & outputs[1]
    assert outputs[0] | outputs[1] == {f"{i}.png" for i in range(8)}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--shard", "3/2"], 2, "K must be between 1 and N"),
        (["--format", "gif"], 2, "--format must be one of"),
        (["--device", "cuda"], 1, "--device cuda needs onnxruntime-gpu"),
        (["--model", "missing.onnx"], 1, "no such model file"),
        (["-o", "a-file.txt"], 1, "cannot create the output folder"),
        (["a-file.txt", "-o", "-", "--dry-run"], 2, "give exactly one input"),  # as the real run would
    ],
)
def test_errors_are_one_clear_line(
    tiny_onnx_model: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    import onnxruntime

    if "cuda" in args and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA")
    Image.fromarray(data.camera()).save(tmp_path / "a.png")
    (tmp_path / "a-file.txt").write_text("x")
    model = [] if "--model" in args else ["--model", str(tiny_onnx_model)]
    run = colorcli("colorize", "a.png", *model, *args, cwd=tmp_path)
    assert run.returncode == code
    assert message in run.stderr.decode()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(tiny_onnx_model: Path, tmp_path: Path) -> None:
    Image.fromarray(data.camera()).save(tmp_path / "a.png")
    (tmp_path / "ro").mkdir(mode=0o555)
    run = colorcli("colorize", "a.png", "-o", "ro", "--model", str(tiny_onnx_model), cwd=tmp_path)
    assert run.returncode == 1 and "not writable" in run.stderr.decode()


def test_exif_orientation_and_notes_end_to_end(tiny_onnx_model: Path, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to display
    exif[0x010F] = "Leica"  # Make
    Image.fromarray(data.camera()[:, :200]).save(tmp_path / "sideways.jpg", exif=exif.tobytes())
    pages = [Image.fromarray(data.camera()), Image.fromarray(data.moon())]
    pages[0].save(tmp_path / "scan.tif", save_all=True, append_images=pages[1:])
    Image.fromarray(data.astronaut()).save(tmp_path / "colour.jpg")
    run = colorcli("colorize", str(tmp_path), "--json", "--model", str(tiny_onnx_model))
    assert run.returncode == 0, run.stderr.decode()
    notes = {Path(r["input"]).name: r.get("note") for r in map(json.loads, run.stdout.decode().splitlines())}
    assert "first of 2 frames" in notes["scan.tif"]
    assert notes["colour.jpg"] == "in colour already: the model's colours replaced the photo's own"
    assert notes["sideways.jpg"] is None
    assert "1 of them in colour already (--skip-colour leaves such photos alone)" in run.stderr.decode()
    out = tmp_path.parent / f"{tmp_path.name}-colorized"
    upright = Image.open(out / "sideways.jpg")
    assert upright.size == (512, 200)
    assert upright.getexif()[0x0112] == 1 and upright.getexif()[0x010F] == "Leica"
    profile = ImageCms.ImageCmsProfile(io.BytesIO(upright.info["icc_profile"]))
    assert "sRGB" in ImageCms.getProfileDescription(profile)
    assert getattr(Image.open(out / "scan.tif"), "n_frames", 1) == 1
    # --skip-colour leaves the colour photo alone and colours the rest
    rerun = colorcli(
        "colorize",
        str(tmp_path),
        "--skip-colour",
        "--json",
        "-o",
        str(out / "again"),
        "--model",
        str(tiny_onnx_model),
    )
    assert rerun.returncode == 0, rerun.stderr.decode()
    status = {
        Path(r["input"]).name: (r["status"], r.get("note"))
        for r in map(json.loads, rerun.stdout.splitlines())
    }
    assert status["colour.jpg"] == ("skipped", "in colour already") and status["sideways.jpg"][0] == "ok"
    assert not (out / "again" / "colour.jpg").exists() and (out / "again" / "sideways.jpg").exists()
    assert "in colour already" not in rerun.stderr.decode()


def test_base_install_never_imports_torch_and_help_is_light(tiny_onnx_model: Path, tmp_path: Path) -> None:
    Image.fromarray(data.camera()).save(tmp_path / "a.png")
    script = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx", "onnxscript", "skimage"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, NoTorch())
import colorcli.cli
heavy = [m for m in ("numpy", "PIL", "onnxruntime", "rich") if m in sys.modules]
assert not heavy, heavy
sys.argv = ["colorcli", "colorize", "a.png", "-o", "out", "--model", {str(tiny_onnx_model)!r}]
colorcli.cli.main()
"""
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()
    assert (tmp_path / "out" / "a.png").is_file()


def test_the_clis_defaults_are_the_pipelines() -> None:
    from colorcli import imageio, pipeline
    from colorcli.commands import colorize

    assert ("keep", *imageio.OUTPUT_FORMATS) == colorize.FORMATS
    assert colorize.QUALITY == pipeline.DEFAULT_QUALITY
    assert colorize.MAX_MEGAPIXELS == imageio.DEFAULT_MAX_MEGAPIXELS


def test_progress_bar_on_a_terminal(tiny_onnx_model: Path, tmp_path: Path) -> None:
    import pty

    Image.fromarray(data.camera()).save(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"")
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.run(
        [sys.executable, "-m", "colorcli", "colorize", "a.png", "bad.png", "--model", str(tiny_onnx_model)],
        cwd=tmp_path,
        stderr=follower,
        stdout=subprocess.PIPE,
        timeout=120,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 1
    assert "MP/s" in screen and "failed: 1" in screen  # the bar's columns
    assert "ok: " not in screen  # no plain per-image lines on a terminal
    assert "1 coloured, 0 skipped, 1 failed" in screen


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_whole_images_and_a_rerun_finishes(
    tiny_onnx_model: Path, tmp_path: Path, stop: str
) -> None:
    import signal
    import time

    src = tmp_path / "in"
    src.mkdir()
    for i in range(40):
        Image.fromarray(np.roll(data.camera(), i * 7, axis=1)).save(src / f"{i:02d}.png")
    out = tmp_path / "in-colorized"
    args = [
        sys.executable,
        "-m",
        "colorcli",
        "colorize",
        str(src),
        "--model",
        str(tiny_onnx_model),
        "--workers",
        "1",
        "--json",
    ]
    # a shell starts background jobs with SIGINT ignored, and the child would inherit that
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.is_dir() and any(out.glob("*.png"))):
        time.sleep(0.02)
    proc.send_signal(getattr(signal, stop))
    log, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert b"stopped: " in err and b"--skip-existing finishes the job" in err
    if stop == "SIGTERM":  # a batch scheduler's stop: a clean exit, no temporary files left
        assert proc.returncode == 128 + signal.SIGTERM and b"error: terminated" in err, err
        assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    written = sorted(out.glob("*.png"))
    assert 0 < len(written) < 40  # really interrupted midway
    # the log and the summary name every result on disk, those finished while stopping too
    reported = [json.loads(line) for line in log.decode().splitlines()]
    assert {Path(r["output"]) for r in reported if r["status"] == "ok"} == set(written)
    assert f"stopped: {len(written)} coloured".encode() in err, err
    for path in written:
        Image.open(path).load()  # every visible output is a whole image
    rerun = colorcli("colorize", str(src), "--model", str(tiny_onnx_model), "--skip-existing", "--json")
    assert rerun.returncode == 0, rerun.stderr.decode()
    statuses = [json.loads(line)["status"] for line in rerun.stdout.decode().splitlines()]
    assert statuses.count("skipped") == len(written) and statuses.count("ok") == 40 - len(written)
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:02d}.png" for i in range(40)]


def test_a_closed_standard_output_stops_the_run_like_a_signal(tiny_onnx_model: Path, tmp_path: Path) -> None:
    # `colorcli colorize photos/ --json | head -1`: the reader goes after one line
    src = tmp_path / "in"
    src.mkdir()
    for i in range(40):
        Image.fromarray(np.roll(data.camera(), i * 7, axis=1)).save(src / f"{i:02d}.png")
    out = tmp_path / "out"
    args = ["colorize", str(src), "-o", str(out), "--model", str(tiny_onnx_model), "--workers", "1", "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "colorcli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = json.loads(proc.stdout.readline())
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert first["status"] == "ok" and "Traceback" not in err and "Exception ignored" not in err
    written = sorted(out.glob("*.png"))
    assert 0 < len(written) < 40  # stopped, not run to the end
    assert f"stopped (standard output was closed): {len(written)} coloured" in err
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_the_shipped_model_colours_with_no_model_option_from_any_directory(tmp_path: Path) -> None:
    from colorcli import runtime

    info = runtime.read_info(runtime.default_model_path())
    assert info.arch == "unet-sn" and info.render_size >= 128
    shown = colorcli("info")
    assert shown.returncode == 0 and b"unet-sn" in shown.stdout and b"colorcli-default.onnx" in shown.stdout
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()).convert("L").save(photos / "astronaut.jpg", quality=95)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = colorcli("colorize", str(photos), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    result = tmp_path / "photos-colorized" / "astronaut.jpg"
    assert _lightness_error(photos / "astronaut.jpg", result) < 1.0
    lab = color.rgb_to_lab(np.asarray(Image.open(result).convert("RGB")) / 255.0)
    assert np.hypot(lab[..., 1], lab[..., 2]).mean() > 3.0  # it is coloured, not grey


def test_no_two_inputs_write_one_file_and_reruns_leave_results_alone(
    tiny_onnx_model: Path, tmp_path: Path
) -> None:
    model = ("--model", str(tiny_onnx_model))
    for name, photo in (("a", data.camera()), ("b", data.moon())):
        (tmp_path / "in" / name).mkdir(parents=True)
        Image.fromarray(photo[:64, :96]).save(tmp_path / "in" / name / "p.png")
    a, b = (str(tmp_path / "in" / name / "p.png") for name in "ab")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    # absolute paths inside the working folder keep their place under -o, as relative ones do
    kept = colorcli("colorize", a, b, "-o", "out", *model, cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr.decode()
    assert (tmp_path / "out" / "in" / "a" / "p.png").is_file() and (
        tmp_path / "out" / "in" / "b" / "p.png"
    ).is_file()

    # outside it they come down to one name: the second is refused, not written over the first
    clash = colorcli("colorize", a, b, "-o", str(tmp_path / "flat"), "--json", *model, cwd=elsewhere)
    results = {r["input"]: r for r in map(json.loads, clash.stdout.decode().splitlines())}
    assert clash.returncode == 1
    assert (results[a]["status"], results[b]["status"]) == ("ok", "failed")
    assert "same output" in results[b]["error"]
    written = np.asarray(Image.open(tmp_path / "flat" / "p.png"))
    assert np.array_equal(written, np.asarray(Image.open(tmp_path / "out" / "in" / "a" / "p.png")))

    twice = colorcli("colorize", a, a, "in/a/./p.png", "-o", "twice", "--json", *model, cwd=tmp_path)
    assert twice.returncode == 0, twice.stderr.decode()
    statuses = sorted(json.loads(line)["status"] for line in twice.stdout.decode().splitlines())
    assert statuses == ["ok", "skipped", "skipped"]

    same = colorcli("colorize", "in", "-o", "in", *model, cwd=tmp_path)
    assert same.returncode == 1 and "-o is this folder itself" in same.stderr.decode()

    # a pattern run twice beside its files: the second run does not colour the first's results
    for _ in range(2):
        rerun = colorcli("colorize", "in/a/*.png", "--skip-existing", "--compare", *model, cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "in" / "a").iterdir()) == [
        "p-colorized-compare.png",
        "p-colorized.png",
        "p.png",
    ]
    # and a dry run tells what a rerun would do
    dry = colorcli(
        "colorize", "in/a/*.png", "in/b/p.png", "--dry-run", "--skip-existing", *model, cwd=tmp_path
    )
    assert dry.returncode == 0 and "dry run: 1 to colour, 1 skipped, 0 failed" in dry.stderr.decode()
    assert not (tmp_path / "in" / "b" / "p-colorized.png").exists()


def test_json_lines_stay_utf8_for_a_file_name_that_is_not(tiny_onnx_model: Path, tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: a lone surrogate in Python
    Image.fromarray(data.camera()[:64, :64]).save(tmp_path / name)
    done = colorcli("colorize", ".", "-o", "out", "--json", "--model", str(tiny_onnx_model), cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    (result,) = map(json.loads, done.stdout.decode("utf-8").splitlines())  # strict UTF-8
    assert result["input"] == name and result["status"] == "ok"


def test_a_piped_image_goes_to_a_file_never_to_a_terminal_or_a_silently_ignored_o(
    tiny_onnx_model: Path, tmp_path: Path
) -> None:
    import pty

    grey = io.BytesIO()
    Image.fromarray(data.camera()[:32, :32]).save(grey, "PNG")
    into_folder = colorcli(
        "colorize", "-", "-o", str(tmp_path / "o"), "--model", str(tiny_onnx_model), stdin=grey.getvalue()
    )
    assert into_folder.returncode == 2 and into_folder.stdout == b""
    assert b"drop -o and redirect" in into_folder.stderr
    assert not (tmp_path / "o").exists()

    terminal, side = pty.openpty()  # a small image: before the fix it fitted in the terminal's buffer
    try:
        run = subprocess.run(
            [sys.executable, "-m", "colorcli", "colorize", "-", "--model", str(tiny_onnx_model)],
            input=grey.getvalue(),
            stdout=side,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(side)
        os.close(terminal)
    assert run.returncode == 2 and b"redirect it to a file" in run.stderr


def test_a_piped_image_the_encoder_refuses_is_one_clear_line(tiny_onnx_model: Path) -> None:
    wide = io.BytesIO()
    Image.new("L", (17000, 20), 90).save(wide, "PNG")  # WebP holds at most 16383 px a side
    run = colorcli(
        "colorize", "-", "--format", "webp", "--json", "--model", str(tiny_onnx_model), stdin=wide.getvalue()
    )
    assert run.returncode == 1 and run.stdout == b""
    record, message = run.stderr.decode().strip().splitlines()
    assert json.loads(record)["status"] == "failed"
    assert message == (
        "error: -: WebP holds at most 16383 pixels a side and this image is 17000×20; "
        "choose --format png or tiff"
    )


def test_an_empty_standard_input_is_no_paths_but_not_an_image(tiny_onnx_model: Path, tmp_path: Path) -> None:
    model = ["--model", str(tiny_onnx_model)]
    nothing = colorcli("colorize", "-", *model, stdin=b"")  # find matched nothing: nothing to do
    assert nothing.returncode == 0 and nothing.stdout == b""
    assert nothing.stderr.decode().splitlines() == [
        "no images found: standard input was empty (give it paths, one a line, or one image)"
    ]
    piped = colorcli("colorize", "-", "-o", "-", *model, stdin=b"")  # an empty file given as the image
    assert piped.returncode == 1 and piped.stdout == b""
    assert piped.stderr.decode() == "error: standard input is empty: there is no image to colour\n"


def test_a_folder_to_standard_output_is_a_usage_error(tiny_onnx_model: Path, tmp_path: Path) -> None:
    (tmp_path / "scans").mkdir()
    for extra in ((), ("--skip-colour",), ("--compare",)):  # the folder is the mistake to name
        run = colorcli("colorize", str(tmp_path / "scans"), "-o", "-", *extra, "-m", str(tiny_onnx_model))
        assert run.returncode == 2 and b"is a folder; drop -o - to colour the folder" in run.stderr, extra
    paths = colorcli("colorize", "-", "-o", "-", "--model", str(tiny_onnx_model), stdin=b"a.png\n")
    assert paths.returncode == 2 and b"standard input holds paths; drop -o -" in paths.stderr
    grey = io.BytesIO()
    Image.new("L", (8, 8)).save(grey, "PNG")
    side = colorcli("colorize", "-", "--compare", "--model", str(tiny_onnx_model), stdin=grey.getvalue())
    assert side.returncode == 2 and b"--compare writes NAME-compare beside a result file" in side.stderr
    kept = colorcli("colorize", "-", "--skip-colour", "--model", str(tiny_onnx_model), stdin=grey.getvalue())
    assert kept.returncode == 2 and b"a piped image always gets its result" in kept.stderr


def test_a_piped_image_arriving_in_pieces_is_still_an_image(tiny_onnx_model: Path) -> None:
    import time

    grey = io.BytesIO()
    Image.fromarray(data.camera()[:40, :48]).save(grey, "PNG")
    proc = subprocess.Popen(
        [sys.executable, "-m", "colorcli", "colorize", "-", "--model", str(tiny_onnx_model)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdin.write(grey.getvalue()[:4])  # fewer bytes than any image signature needs
    proc.stdin.flush()
    time.sleep(0.5)
    out, err = proc.communicate(grey.getvalue()[4:], timeout=120)
    assert proc.returncode == 0, err.decode()
    assert Image.open(io.BytesIO(out)).size == (48, 40)


def test_a_compare_picture_the_encoder_refuses_writes_nothing(tiny_onnx_model: Path, tmp_path: Path) -> None:
    Image.new("L", (9000, 10), 90).save(tmp_path / "wide.webp", lossless=True)  # its compare: 18000 px
    run = colorcli("colorize", "wide.webp", "--compare", "--model", str(tiny_onnx_model), cwd=tmp_path)
    assert run.returncode == 1 and b"cannot encode the --compare picture" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.webp"]


def test_standard_input_misused_is_a_usage_error(tiny_onnx_model: Path, tmp_path: Path) -> None:
    model = ("--model", str(tiny_onnx_model))
    png = io.BytesIO()
    Image.new("L", (8, 8)).save(png, "PNG")
    other = tmp_path / "other.png"
    Image.new("L", (8, 8)).save(other)
    mixed = colorcli("colorize", "-", str(other), *model, stdin=png.getvalue())
    assert mixed.returncode == 2 and b"standard input holds an image; colour it on its own" in mixed.stderr
    binary = colorcli("colorize", "-", *model, stdin=b"SQLite format 3\0" + bytes(64))  # a database
    assert binary.returncode == 2 and b"neither an image colorcli reads nor a list of paths" in binary.stderr
    named = colorcli("colorize", str(other), "-o", str(tmp_path / "colour.jpg"), *model)
    assert named.returncode == 2 and b"-o - > " in named.stderr
    assert not (tmp_path / "colour.jpg").exists()


def test_runs_with_nothing_to_do_say_so(tiny_onnx_model: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    model = ("--model", str(tiny_onnx_model))
    run = colorcli("colorize", str(tmp_path / "empty"), *model)
    assert run.returncode == 0 and run.stderr.decode().strip().endswith(
        "no images found (colorcli reads JPEG, PNG, WebP, TIFF, BMP, GIF, JPEG 2000 and HEIC files)"
    )
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    Image.new("L", (8, 8)).save(tmp_path / "a-colorized.png")
    dry = colorcli("colorize", str(tmp_path / "a.png"), "--skip-existing", "--dry-run", *model)
    assert dry.stderr.decode().strip().splitlines()[-1] == "dry run: 0 to colour, 1 skipped, 0 failed"


def test_a_newline_in_a_file_name_keeps_one_line_per_image(tiny_onnx_model: Path, tmp_path: Path) -> None:
    Image.new("L", (8, 8)).save(tmp_path / "two\nlines.png")
    run = colorcli("colorize", str(tmp_path), "--model", str(tiny_onnx_model))
    lines = run.stderr.decode().strip().splitlines()
    assert run.returncode == 0 and len(lines) == 3, lines  # the model, the image, the summary
    assert "two\\nlines.png" in lines[1]


def test_a_pillow_warning_is_one_line_naming_its_file(tiny_onnx_model: Path, tmp_path: Path) -> None:
    # an EXIF tag whose data would lie past the end: Pillow warns and skips it
    entry = struct.pack("<HHII", 0x010E, 2, 100, 0x1000)
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)
    for name in ("cut-exif.jpg", "cut-exif-too.jpg"):
        Image.new("L", (16, 16), 90).save(tmp_path / name, exif=b"Exif\x00\x00" + tiff)
    Image.new("L", (16, 16), 90).save(tmp_path / "fine.jpg")
    run = colorcli("colorize", str(tmp_path), "--model", str(tiny_onnx_model), "--workers", "2")
    lines = run.stderr.decode().strip().splitlines()
    said = [line for line in lines if line.startswith("warning:")]
    # every file that warns is named, once, though Pillow repeats itself from one line of code
    # (its words vary by version: "Tag data larger than file. Skipping tag 270", "Truncated File Read")
    named = [line.split(": ", 2)[1] for line in sorted(said)]
    assert run.returncode == 0 and named == [str(tmp_path / n) for n in ("cut-exif-too.jpg", "cut-exif.jpg")]
    assert all(len(line.split(": ", 2)[2]) > 5 for line in said), lines
    assert not any("warnings.warn" in line or "UserWarning" in line for line in lines)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()[:32, :32]).save(photos / "cut-exif.jpg", exif=b"Exif\x00\x00" + tiff)
    run = colorcli("evaluate", str(photos), "--model", str(tiny_onnx_model))
    said = run.stderr.decode()
    assert run.returncode == 0 and f"warning: {photos / 'cut-exif.jpg'}: " in said
    assert "UserWarning" not in said


@pytest.mark.parametrize("fmt", ["png", "jpg", "tiff"])
def test_colouring_a_photo_twice_gives_the_same_bytes(
    tiny_onnx_model: Path, tmp_path: Path, fmt: str
) -> None:
    # archives compare results by checksum: nothing in a result may depend on when it was made
    import time

    source = tmp_path / "camera.png"
    Image.fromarray(data.camera()[:96, :128]).save(source)
    runs = []
    for _ in range(2):
        done = colorcli("colorize", str(source), "-o", "-", "--format", fmt, "--model", str(tiny_onnx_model))
        assert done.returncode == 0, done.stderr.decode()
        runs.append(done.stdout)
        time.sleep(1.1)  # the ICC header's time stamp counts seconds
    assert runs[0] == runs[1]


def test_a_piped_result_whose_reader_goes_is_not_reported_written(
    tiny_onnx_model: Path, tmp_path: Path
) -> None:
    # `colorcli colorize photo.png -o - | head -c 10`: more than a pipe holds, so the write stops short
    source = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 600), dtype=np.uint8)).save(source)
    args = ["colorize", str(source), "-o", "-", "--json", "--model", str(tiny_onnx_model)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "colorcli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(8) == b"\x89PNG\r\n\x1a\n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert f"standard output was closed before {source}'s colour image was written whole" in err
    assert '"status": "ok"' not in err and "Traceback" not in err


def test_a_name_too_long_fails_alone_and_the_run_goes_on(tiny_onnx_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "z", "写真" * 41):  # 250 bytes: a legal name, whose -compare name is not
        Image.fromarray(data.camera()[:64, :64]).save(src / f"{name}.png")
    model = ["--model", str(tiny_onnx_model)]
    folder = colorcli("colorize", str(src), "-o", str(tmp_path / "out"), "--compare", "--json", *model)
    assert folder.returncode == 1, folder.stderr.decode()
    statuses = {Path(r["input"]).name[:2]: r["status"] for r in map(json.loads, folder.stdout.splitlines())}
    assert statuses == {"a.": "ok", "z.": "ok", "写真": "failed"}
    assert b"Traceback" not in folder.stderr and b"File name too long" in folder.stderr
    listed = colorcli(
        "colorize",
        "-",
        "-o",
        str(tmp_path / "out2"),
        *model,
        stdin=b"x" * 300 + b"\n" + b"in/a.png\n",
        cwd=tmp_path,
    )
    assert listed.returncode == 1 and b"Traceback" not in listed.stderr, listed.stderr.decode()
    assert b"cannot look it up: File name too long" in listed.stderr
    assert [p.name for p in (tmp_path / "out2").rglob("*.png")] == ["a.png"]
