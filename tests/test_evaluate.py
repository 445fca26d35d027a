"""`colorcli evaluate`: the engine on real photos and a real onnxruntime model, and the CLI as a
user runs it (subprocesses on a folder of scikit-image photos with two models, --json, --grid)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import nan_colour_model
from photos import png_bomb
from PIL import Image
from skimage import data

from colorcli import color, imageio, metrics, render
from colorcli import evaluate as engine
from colorcli.pipeline import Colorizer

# non-square and of different shapes, so a swapped axis or a lost aspect ratio shows
PHOTOS = {"astronaut": (72, 60), "coffee": (90, 60), "chelsea": (64, 48), "rocket": (50, 80)}


def _run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "colorcli", "evaluate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small colour photos, one grey photo (skipped) and two unreadable files."""
    folder = tmp_path_factory.mktemp("photos")
    for name, size in PHOTOS.items():
        Image.fromarray(getattr(data, name)()).resize(size, Image.LANCZOS).save(folder / f"{name}.png")
    (folder / "nested").mkdir()
    Image.fromarray(data.camera()).resize((40, 40)).save(folder / "nested" / "camera.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "moved.png").symlink_to(folder / "moved away.png")  # a link whose photo is gone
    (folder / ".hidden").mkdir()  # e.g. a thumbnail cache: never looked at
    (folder / ".hidden" / "thumb.jpg").write_bytes(b"not a jpeg either")
    (folder / "notes.txt").write_text("not a photo")
    return folder


@pytest.fixture(scope="module")
def colour_model(
    tiny_checkpoint_factory: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny unet-sn of conftest with a random colour head, exported at render size 64.

    A freshly built generator starts at a,b = 0 (its head is zero-initialised), so an untrained
    model would colour exactly like the grey baseline and hide most mistakes.
    """
    import torch

    from colorcli import checkpoint
    from colorcli.export import export_model

    state = checkpoint.load(tiny_checkpoint_factory("unet-sn"))
    head = state["generator"]["head.0.weight"]
    state["generator"]["head.0.weight"] = torch.randn(head.shape, generator=torch.Generator().manual_seed(0))
    folder = tmp_path_factory.mktemp("colour-model")
    checkpoint.save(state, folder / "tiny.pt")
    export_model(folder / "tiny.pt", folder / "tiny-colour.onnx", render_size=64, log=lambda _: None)
    return folder / "tiny-colour.onnx"


@pytest.fixture(scope="module")
def second_model(colour_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model declaring render size 48: a second model that colours differently."""
    import onnx

    model = onnx.load(colour_model)
    for prop in model.metadata_props:
        if prop.key == "colorcli.render_size":
            prop.value = "48"
    out = tmp_path_factory.mktemp("second") / "tiny-48.onnx"
    onnx.save(model, out)
    return out


def _originals(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(folder / f"{name}.png").convert("RGB")) for name in sorted(PHOTOS)]


def _grey_auc_by_hand(rgb: np.ndarray) -> float:
    """a,b AUC of a grey prediction: every pixel's error is its own chroma |a,b|."""
    chroma = np.hypot(*np.moveaxis(color.rgb_to_lab(rgb / 255.0)[..., 1:], -1, 0))
    return float(np.mean(1 - np.minimum(chroma, 150) / 150))


def test_model_candidate_colours_at_full_size_and_keeps_the_grey(colour_model: Path) -> None:
    candidate = engine.model_candidate("tiny", Colorizer(colour_model, device="cpu", render_size=40))
    assert (candidate.name, candidate.path, candidate.render_size) == ("tiny", colour_model, 40)
    grey = render.luminance8(data.coffee()[:37, :53])
    produced = candidate.colour(grey)
    assert produced.shape == (37, 53, 3) and produced.dtype == np.uint8
    assert metrics.colourfulness(produced, 255) > 1  # a model that colours
    # colouring changes a,b only: the CIE L of the result is the grey's, to 8-bit rounding
    lightness = color.rgb_to_lab(produced / 255.0)[..., 0]
    assert np.abs(lightness - color.grey_to_lightness(grey / 255.0)).max() < 1.0


def test_grey_candidate_is_the_grey_photo() -> None:
    grey = render.luminance8(data.astronaut()[::8, ::8])
    produced = engine.grey_candidate().colour(grey)
    assert produced.shape == (*grey.shape, 3)
    assert (produced == grey[..., None]).all()


def test_load_photo_skips_grey_and_shrinks_to_max_side(tmp_path: Path) -> None:
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.jpg")  # 600×400
    Image.fromarray(data.camera()).save(tmp_path / "camera.png")  # mode L
    Image.fromarray(data.camera()).convert("RGB").save(tmp_path / "camera-rgb.png")  # grey in RGB
    assert engine.load_photo(tmp_path / "coffee.jpg", 150).shape == (100, 150, 3)
    assert engine.load_photo(tmp_path / "coffee.jpg", None).shape == (400, 600, 3)
    assert engine.load_photo(tmp_path / "camera.png", 150) is None
    assert engine.load_photo(tmp_path / "camera-rgb.png", 150) is None


def test_load_photo_skips_a_grey_tiff_pillow_cannot_open_and_no_other(tmp_path: Path) -> None:
    import tifffile

    grey16 = (data.camera()[:48, :64].astype(np.uint16)) * 257
    tifffile.imwrite(tmp_path / "la16.tif", np.dstack([grey16, grey16]), extrasamples="unassalpha")
    colour32 = data.coffee()[:48, :64].astype(np.float32) / 255
    tifffile.imwrite(tmp_path / "rgb32.tif", colour32, photometric="rgb")
    assert engine.load_photo(tmp_path / "la16.tif", 150) is None  # grey: skipped, not unreadable
    with pytest.raises(engine.UNREADABLE):
        engine.load_photo(tmp_path / "rgb32.tif", 150)


def test_load_photo_refuses_a_decompression_bomb_before_decoding_it(tmp_path: Path) -> None:
    with pytest.raises(imageio.ImageError, match="over the limit of 180"):
        engine.load_photo(png_bomb(tmp_path / "bomb.png"), None)


def test_find_images_is_recursive_and_sorted(photo_dir: Path) -> None:
    assert [p.name for p in imageio.find_images(photo_dir)] == [
        "astronaut.png", "broken.jpg", "chelsea.png", "coffee.png", "moved.png", "camera.png", "rocket.png"
    ]  # fmt: skip


def test_engine_scores_a_perfect_colourer_and_the_grey_baseline(photo_dir: Path) -> None:
    original = _originals(photo_dir)[0]
    perfect = engine.Candidate("perfect", lambda lightness: original)
    evaluation, rows = engine.evaluate([photo_dir / "astronaut.png"], [perfect], grid_rows=8)
    grey, best = evaluation.results
    assert evaluation.photos == 1
    assert best.psnr == engine.PSNR_CAP_DB
    assert best.ssim == pytest.approx(1.0)
    assert best.ab_auc == pytest.approx(1.0, abs=1e-6)
    assert best.ab_error == pytest.approx(0.0, abs=1e-3)
    assert best.colourfulness_ratio == pytest.approx(1.0)
    assert best.colourfulness_gap == pytest.approx(0.0)
    assert grey.colourfulness == 0.0
    assert grey.ab_auc == pytest.approx(_grey_auc_by_hand(original), abs=1e-4)
    assert grey.psnr == pytest.approx(best.psnr - best.psnr_gain)
    assert [len(r) for r in rows] == [3]  # original, grey, perfect


def test_engine_hues_of_a_red_and_green_photo_all_coloured_red(tmp_path: Path) -> None:
    red, green = (255, 0, 0), (0, 160, 0)
    photo = np.zeros((8, 8, 3), np.uint8)
    photo[:, :4], photo[:, 4:] = red, green
    Image.fromarray(photo).save(tmp_path / "photo.png")
    all_red = engine.Candidate("all red", lambda grey: np.broadcast_to(np.uint8(red), (*grey.shape, 3)))
    evaluation, _ = engine.evaluate([tmp_path / "photo.png"], [all_red])
    grey, model = (r.hues for r in evaluation.results)

    chroma = {c: np.hypot(*color.rgb_to_lab(np.float32(c) / 255)[1:]) for c in (red, green)}
    assert model["red"]["share"] == model["green"]["share"] == 0.5
    assert model["red"]["given"]["red"] == model["green"]["given"]["red"] == 1.0
    assert model["red"]["chroma_ratio"] == pytest.approx(1.0)
    assert model["green"]["chroma_ratio"] == pytest.approx(chroma[red] / chroma[green], rel=1e-5)
    assert model["yellow"] == {
        "share": 0.0, "given": dict.fromkeys([*engine.HUE_NAMES, "grey"], 0.0), "chroma_ratio": None
    }  # fmt: skip
    assert grey["red"]["given"]["grey"] == grey["green"]["given"]["grey"] == 1.0
    assert grey["green"]["chroma_ratio"] == pytest.approx(0.0, abs=1e-4)


def test_hue_table_shows_no_figures_for_a_hue_that_is_not_there(tmp_path: Path, capsys) -> None:
    from colorcli.commands.evaluate import _print_hues

    red, green = (255, 0, 0), (0, 160, 0)
    photo = np.zeros((8, 8, 3), np.uint8)
    photo[:, :4], photo[:, 4:] = red, green
    Image.fromarray(photo).save(tmp_path / "photo.png")
    all_red = engine.Candidate("all red", lambda grey: np.broadcast_to(np.uint8(red), (*grey.shape, 3)))
    _print_hues(engine.evaluate([tmp_path / "photo.png"], [all_red])[0])
    lines = capsys.readouterr().out.splitlines()
    cells = [[c.strip() for c in line.split("│")] for line in lines if line.count("│") > 6]
    rows = {row[2]: row[3:8] for row in cells}
    assert rows["yellow"] == ["0.0%", "–", "–", "–", "–"]
    assert rows["red"][1:4] == ["100%", "0%", "–"]  # nothing given another hue
    assert rows["green"][1:4] == ["0%", "0%", "red 100%"]


def test_grid_size_and_layout() -> None:
    tiles = [[Image.new("RGB", (256, 192), c) for c in ("red", "grey", "blue")]]
    tiles.append([Image.new("RGB", (128, 256), c) for c in ("green", "grey", "white")])
    sheet = engine.render_grid(tiles, ["original", "grey", "a model with a very long name indeed"])
    gap, header = engine.GRID_GAP, engine.GRID_HEADER
    assert sheet.size == (3 * 256 + 4 * gap, header + 192 + 256 + 3 * gap)
    assert sheet.getpixel((gap + 128, header + gap + 96)) == (255, 0, 0)
    # a narrower portrait tile is centred in its cell: white on either side
    second_row = header + 2 * gap + 192 + 128
    assert sheet.getpixel((gap + 10, second_row)) == (255, 255, 255)
    assert sheet.getpixel((gap + 128, second_row)) == (0, 128, 0)


def test_cli_two_models_json_and_grid(
    photo_dir: Path, colour_model: Path, second_model: Path, tmp_path: Path
) -> None:
    grid, per_photo = tmp_path / "out" / "grid.png", tmp_path / "out" / "photos.csv"
    done = _run_cli(
        photo_dir, "--model", colour_model, "--model", second_model, "--json", "--grid", grid,
        "--per-photo", per_photo,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # the progress bar must not leak into stdout

    assert report["photos"] == 4
    assert report["skipped"]["grey"] == [str(photo_dir / "nested" / "camera.png")]
    assert report["skipped"]["unreadable"] == [str(photo_dir / n) for n in ("broken.jpg", "moved.png")]
    originals = _originals(photo_dir)
    expected_m = np.mean([metrics.colourfulness(o, 255) for o in originals])
    assert report["originals"]["colourfulness"] == pytest.approx(expected_m)

    grey, first, second = report["models"]
    assert [m["name"] for m in report["models"]] == ["grey", colour_model.stem, "tiny-48"]
    assert (first["render_size"], second["render_size"]) == (64, 48)
    assert grey["path"] is None and first["path"] == str(colour_model)
    assert grey["colourfulness"] == 0.0
    assert grey["colourfulness_ratio"] == 0.0
    assert grey["colourfulness_gap"] == pytest.approx(-expected_m)
    assert grey["psnr_gain"] == 0.0
    assert grey["ab_auc"] == pytest.approx(np.mean([_grey_auc_by_hand(o) for o in originals]), abs=1e-4)
    for model in (first, second):
        assert set(model) == set(grey)
        assert 5 < model["psnr"] < 60
        assert model["psnr_gain"] == pytest.approx(model["psnr"] - grey["psnr"])
        assert 0 < model["ssim"] <= 1 and 0 < model["ab_auc"] < 1 and model["ab_error"] > 0
        assert model["colourfulness"] > 1  # a model that colours, unlike the grey baseline
        assert model["colourfulness_ratio"] == pytest.approx(model["colourfulness"] / expected_m)
    assert first["psnr"] != second["psnr"]  # each model ran at its own render size
    for model in report["models"]:
        assert list(model["hues"]) == engine.HUE_NAMES
        assert sum(h["share"] for h in model["hues"].values()) == pytest.approx(1.0)
        for hue in model["hues"].values():
            assert sum(hue["given"].values()) == pytest.approx(1.0)

    with per_photo.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(engine.PER_PHOTO_COLUMNS)
    names = [m["name"] for m in report["models"]]
    photos = sorted(str(photo_dir / f"{name}.png") for name in PHOTOS)
    assert [(r["photo"], r["model"]) for r in rows] == [(p, n) for p in photos for n in names]
    for model in report["models"]:  # the photos' own figures average to the report's
        own = [r for r in rows if r["model"] == model["name"]]
        for figure in (*engine.MEAN_FIGURES, "psnr_gain"):
            assert np.mean([float(r[figure]) for r in own]) == pytest.approx(
                model[figure], rel=1e-4, abs=1e-4
            )
    for row, original in zip(rows[1::3], originals, strict=True):
        own_m = metrics.colourfulness(original, 255)
        assert float(row["colourfulness_ratio"]) == pytest.approx(
            float(row["colourfulness"]) / own_m, rel=1e-4
        )

    with Image.open(grid) as sheet:
        rows = sum(round(h * engine.GRID_TILE / max(w, h)) for w, h in PHOTOS.values())
        gap = engine.GRID_GAP
        assert sheet.size == (4 * engine.GRID_TILE + 5 * gap, engine.GRID_HEADER + rows + 5 * gap)


def test_cli_table_limit_and_render_size(photo_dir: Path, colour_model: Path) -> None:
    # the limit counts photos scored: broken.jpg comes second and does not count
    done = _run_cli(photo_dir, "-m", colour_model, "--limit", "2", "--render-size", "32")
    assert done.returncode == 0, done.stderr
    assert "2 photos from" in done.stdout
    assert "grey" in done.stdout and colour_model.stem in done.stdout
    assert "skipped 0 grey and 1 unreadable" in done.stdout
    assert "most often instead" not in done.stdout

    with_hues = _run_cli(photo_dir, "-m", colour_model, "--limit", "2", "--hues")
    assert with_hues.returncode == 0, with_hues.stderr
    assert "most often instead" in with_hues.stdout
    assert all(hue in with_hues.stdout for hue in engine.HUE_NAMES)

    as_json = json.loads(_run_cli(photo_dir, "-m", colour_model, "--render-size", "32", "--json").stdout)
    assert as_json["models"][1]["render_size"] == 32


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["{missing}"], 2, "is not a folder"),
        (["{empty}"], 1, "no photos in"),
        (["{photos}", "--model", "{missing}/model.onnx"], 1, "no such model file"),
        (["{photos}", "--device", "cuda"], 1, "CUDA"),  # as colorize: a failure, not a usage error
        (["{photos}", "--grid", "{empty}/grid.jpg"], 2, "ending in .png"),
        (["{photos}", "--per-photo", "{empty}"], 2, "is a folder; give a file name"),
        (["{photos}", "--grid", "{file}/g.png"], 2, "is a file, in the way of the folder"),
        (["{photos}", "--grid", "{photos}/sheet.png"], 2, "is inside"),  # over a photo, or scored next time
        (["{photos}", "--per-photo", "{empty}/model.onnx"], 2, "give a file name ending in .csv"),
        (["{photos}", "--per-photo", "{fifo}"], 2, "is not a regular file"),
    ],
)
def test_cli_errors(photo_dir: Path, tmp_path: Path, args: list[str], code: int, message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").touch()
    places = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "photos": photo_dir}
    places["file"] = tmp_path / "file"
    os.mkfifo(tmp_path / "fifo.csv")
    places["fifo"] = tmp_path / "fifo.csv"
    done = _run_cli(*(a.format(**places) for a in args))
    assert done.returncode == code
    assert done.stderr.startswith("error: ") and message in done.stderr


def test_cli_a_model_giving_colours_that_are_not_numbers_is_one_error(
    photo_dir: Path, colour_model: Path, tmp_path: Path
) -> None:
    broken = nan_colour_model(colour_model, tmp_path)
    done = _run_cli(photo_dir, "--model", colour_model, "--model", broken)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"error: {broken}: the model gave colours that are not numbers")
    assert done.stderr.count("\n") == 1, done.stderr


def test_markdown_table_has_the_bars_three_figures_per_candidate():
    row = engine.Result("m", None, 256, 25.0, 1.234, 0.9, 5.0, 0.8912, 20.0, -5.0, 0.7049, {})
    table = engine.Evaluation(3, 25.0, [row]).markdown("temperature").splitlines()
    assert table[0].startswith("| temperature | PSNR gain over grey")
    assert table[2] == "| m | +1.23 dB | 0.891 | 0.70 |"


def test_models_are_named_by_their_stems_unless_that_would_be_ambiguous() -> None:
    from colorcli.commands.evaluate import _names

    paths = [Path("a/m.onnx"), Path("b/m.onnx"), Path("grey.onnx"), Path("v2.onnx")]
    assert _names(paths) == ["a/m.onnx", "b/m.onnx", "grey.onnx", "v2"]
