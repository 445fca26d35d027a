"""The Colorizer API and the colouring pipeline, with a real onnxruntime session on real photos."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import nan_colour_model
from photos import grey_file
from PIL import Image
from skimage import data

from colorcli import color, discovery, imageio, pipeline


def _lightness_error(grey: np.ndarray, colour: Image.Image) -> float:
    rgb = np.asarray(colour.convert("RGB")) / 255.0
    return float(np.abs(color.rgb_to_lab(rgb)[..., 0] - color.grey_to_lightness(grey / 255.0)).mean())


# -- the Colorizer ----------------------------------------------------------------------------


def test_colorizer_pickles_cheaply_and_opens_its_session_lazily(tiny_onnx_model: Path) -> None:
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu")
    assert colorizer._loaded is None
    first = colorizer.colorize(Image.fromarray(data.camera()))
    payload = pickle.dumps(colorizer)
    assert len(payload) < 2000  # no session, no weights
    clone = pickle.loads(payload)
    assert clone._loaded is None
    assert np.array_equal(np.asarray(clone.colorize(Image.fromarray(data.camera()))), np.asarray(first))
    assert clone._loaded is not None


@pytest.mark.parametrize("name", ["camera", "astronaut", "coffee"])
def test_full_resolution_with_the_luminance_kept(tiny_onnx_model: Path, name: str) -> None:
    photo = getattr(data, name)()
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu", saturation=2.0)
    result = colorizer.colorize(Image.fromarray(photo))
    assert result.size == (photo.shape[1], photo.shape[0])
    assert result.mode == "RGB"
    grey = photo if photo.ndim == 2 else np.asarray(pipeline.imageio.from_pil(Image.fromarray(photo)).grey)
    assert _lightness_error(grey, result) < 1.0
    chroma = np.hypot(*color.rgb_to_lab(np.asarray(result) / 255.0)[..., 1:].transpose(2, 0, 1))
    assert chroma.mean() > 1.0  # it really is coloured


def test_colorize_keeps_alpha_and_handles_sixteen_bit(tiny_onnx_model: Path) -> None:
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu")
    rgba = Image.fromarray(data.astronaut()).convert("RGBA")
    rgba.putalpha(Image.fromarray(data.camera()))
    out = colorizer.colorize(rgba)
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], data.camera())
    deep = colorizer.colorize(Image.fromarray(data.camera().astype(np.uint16) * 257))
    assert _lightness_error(data.camera(), deep) < 1.0


def test_a_model_giving_colours_that_are_not_numbers_fails_each_photo(
    tiny_onnx_model: Path, tmp_path: Path
) -> None:
    Image.fromarray(data.camera()).save(tmp_path / "camera.png")
    colorizer = pipeline.Colorizer(nan_colour_model(tiny_onnx_model, tmp_path), device="cpu")
    (result,) = colorizer.colorize_files([tmp_path / "camera.png"], tmp_path / "o")
    assert result.status == "failed" and "not numbers (NaN or infinity)" in result.error
    assert not (tmp_path / "o" / "camera.png").exists()
    with pytest.raises(imageio.ImageError, match="the model is broken"):
        colorizer.colorize(Image.fromarray(data.camera()))


def test_run_reports_failures_and_goes_on(tiny_onnx_model: Path, tmp_path: Path) -> None:
    good = tmp_path / "in" / "good.png"
    good.parent.mkdir()
    Image.fromarray(data.camera()).save(good)
    (tmp_path / "in" / "empty.jpg").write_bytes(b"")
    (tmp_path / "in" / "text.png").write_text("not an image")
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu", batch_size=2, workers=2)
    results = {
        Path(r.input).name: r
        for r in colorizer.colorize_files(sorted((tmp_path / "in").iterdir()), tmp_path / "o")
    }
    assert results["good.png"].status == "ok"
    assert results["empty.jpg"].status == results["text.png"].status == "failed"
    assert "not an image" in results["empty.jpg"].error
    assert Image.open(tmp_path / "o" / "good.png").size == (512, 512)
    again = list(colorizer.colorize_files([good], tmp_path / "o"))
    assert again[0].status == "failed" and "--overwrite" in again[0].error
    skipped = list(
        colorizer.colorize_files([good], tmp_path / "o", pipeline.WriteOptions(skip_existing=True))
    )
    assert skipped[0].status == "skipped"
    same = list(colorizer.run([discovery.Job(good, good)], pipeline.WriteOptions(overwrite=True)))
    assert same[0].status == "failed" and "overwrite the input" in same[0].error
    assert sorted(os.listdir(tmp_path / "o")) == ["good.png"]  # no temporary files left


def test_the_api_can_leave_photos_in_colour_already_alone(tiny_onnx_model: Path, tmp_path: Path) -> None:
    from colorcli import Colorizer, WriteOptions

    Image.fromarray(data.astronaut()).save(tmp_path / "colour.jpg")
    Image.fromarray(data.camera()).save(tmp_path / "grey.jpg")
    colorizer = Colorizer(tiny_onnx_model, device="cpu")
    photos = sorted(tmp_path.glob("*.jpg"))
    kept = {
        Path(r.input).name: r
        for r in colorizer.colorize_files(photos, tmp_path / "o", WriteOptions(skip_colour=True))
    }
    assert (kept["colour.jpg"].status, kept["colour.jpg"].note) == ("skipped", "in colour already")
    assert kept["grey.jpg"].status == "ok" and kept["grey.jpg"].note is None
    every = {Path(r.input).name: r for r in colorizer.colorize_files(photos, tmp_path / "all")}
    assert every["colour.jpg"].status == "ok" and every["colour.jpg"].note == imageio.IN_COLOUR
    assert sorted(os.listdir(tmp_path / "o")) == ["grey.jpg"]


def test_colorize_files_keeps_an_archive_s_folders_under_root(tiny_onnx_model: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    for box in ("box1", "box2"):
        (archive / box).mkdir(parents=True)
        Image.fromarray(data.camera()[:64, :80]).save(archive / box / "scan.png")
    paths = sorted(archive.glob("*/scan.png"))
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu", workers=2)

    by_root = list(colorizer.colorize_files(paths, tmp_path / "o", root=archive))
    assert [r.status for r in by_root] == ["ok", "ok"]
    assert sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.png")) == [
        "box1/scan.png",
        "box2/scan.png",
    ]
    by_name = {r.input: r for r in colorizer.colorize_files(paths, tmp_path / "flat")}
    assert [by_name[str(p)].status for p in paths] == ["ok", "failed"]  # one name: never both
    outside = list(colorizer.colorize_files([tmp_path / "elsewhere.png"], tmp_path / "o", root=archive))
    assert outside[0].status == "failed" and "not inside root" in outside[0].error


def test_many_files_stream_through_bounded_queues(tiny_onnx_model: Path, tmp_path: Path) -> None:
    for i in range(40):
        Image.fromarray(data.camera()[i : i + 64, :80]).save(tmp_path / f"{i:02d}.png")
    consumed = []

    def jobs():
        for path in sorted(tmp_path.glob("*.png")):
            consumed.append(path)
            yield discovery.Job(path, tmp_path / "o" / path.name)

    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu", batch_size=3, workers=2)
    results = colorizer.run(jobs(), pipeline.WriteOptions())
    first = next(results)
    assert first.status == "ok"
    # discovery is pulled lazily: at most the decode queue, a batch and the encode queue ahead
    assert len(consumed) <= 2 * (2 * 2 + 3) + 3 + 1
    rest = list(results)
    assert len(rest) == 39 and all(r.status == "ok" for r in rest)


def _record_model_calls(colorizer: pipeline.Colorizer) -> tuple[list[tuple[int, ...]], Callable]:
    """Makes the colorizer's model note each batch's shape; returns the shapes and the real run."""
    seen: list[tuple[int, ...]] = []
    model = colorizer.model
    run = model.run
    model.run = lambda l_norm: (seen.append(l_norm.shape), run(l_norm))[1]  # type: ignore[method-assign]
    return seen, run


def test_small_photos_are_never_upscaled_for_the_model(tiny_onnx_model: Path, tmp_path: Path) -> None:
    sizes = {"big.png": (160, 100), "small.png": (40, 30), "small2.png": (30, 40)}
    for name, size in sizes.items():
        Image.fromarray(data.camera()[: size[1], : size[0]]).save(tmp_path / name)
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu", batch_size=8, workers=1)
    seen, _ = _record_model_calls(colorizer)
    results = list(colorizer.colorize_files(sorted(tmp_path.glob("*.png")), tmp_path / "o"))
    assert [r.status for r in results] == ["ok"] * 3
    # the render size (64) for the big photo; the two small ones at their longer side, batched together
    assert sorted(seen) == [(1, 1, 64, 64), (2, 1, 40, 40)]
    assert Image.open(tmp_path / "o" / "small.png").size == (40, 30)


def test_context_pass_runs_on_photos_larger_than_it_and_is_blended_in(
    tiny_onnx_model: Path, tmp_path: Path
) -> None:
    from colorcli import render

    Image.fromarray(data.astronaut()).resize((160, 120)).convert("L").save(tmp_path / "big.png")
    Image.fromarray(data.camera()[:30, :40]).save(tmp_path / "small.png")
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu", batch_size=8, workers=1, context_size=32)
    assert colorizer.context_size == 32 and colorizer.render_size == 64
    seen, run = _record_model_calls(colorizer)
    results = list(colorizer.colorize_files(sorted(tmp_path.glob("*.png")), tmp_path / "o"))
    assert [r.status for r in results] == ["ok"] * 2
    # the big photo at the render size and at the context size; the small one (40 > 32) too
    assert sorted(seen) == [(1, 1, 40, 40), (1, 1, 64, 64), (2, 1, 32, 32)]

    picture = pipeline.imageio.load(tmp_path / "big.png")
    inputs = colorizer._model_inputs(picture)
    assert [x.shape for x in inputs] == [(1, 64, 64), (1, 32, 32)]
    (ab,) = colorizer._predict([inputs])
    alone, context = (run(x[None])[0] for x in inputs)
    assert np.allclose(ab, render.blend_context(alone, context, pipeline.CONTEXT_WEIGHT), atol=1e-6)
    assert np.abs(ab - alone).max() > 1e-3
    # off: one pass, the render size's a,b untouched
    off = pipeline.Colorizer(tiny_onnx_model, device="cpu", context_size=0)
    assert [x.shape for x in off._model_inputs(picture)] == [(1, 64, 64)]
    with pytest.raises(ValueError, match="context size"):
        pipeline.Colorizer(tiny_onnx_model, context_size=4)


def test_a_compare_picture_is_an_output_no_other_input_may_write(
    tiny_onnx_model: Path, tmp_path: Path
) -> None:
    for name in ("a-compare.png", "a.png"):
        grey_file(tmp_path / "in" / name, (40, 30))
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu", workers=2)
    paths = sorted((tmp_path / "in").iterdir())
    options = pipeline.WriteOptions(compare=True)
    results = {Path(r.input).name: r for r in colorizer.colorize_files(paths, tmp_path / "o", options)}
    assert results["a-compare.png"].status == "ok"
    assert results["a.png"].status == "failed"  # its picture would be where a-compare.png's result is
    assert "same output" in results["a.png"].error
    assert Image.open(tmp_path / "o" / "a-compare.png").size == (40, 30)  # the colour result, not a pair
    assert Image.open(tmp_path / "o" / "a-compare-compare.png").size == (80, 30)
    assert not (tmp_path / "o" / "a.png").exists()


@pytest.mark.parametrize(
    ("flag", "status"), [("", "failed"), ("skip_existing", "skipped"), ("overwrite", "ok")]
)
def test_an_output_another_process_writes_meanwhile_is_not_replaced(
    tiny_onnx_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str, status: str
) -> None:
    source = grey_file(tmp_path / "scan.png", (40, 30))
    target = tmp_path / "o" / "scan.png"
    load = pipeline.imageio.load

    def load_while_another_process_writes(path, *args):  # after the check that the output is free
        grey_file(target, (8, 8))
        return load(path, *args)

    monkeypatch.setattr(pipeline.imageio, "load", load_while_another_process_writes)
    options = pipeline.WriteOptions(**({flag: True} if flag else {}))
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu", workers=1)
    (result,) = colorizer.colorize_files([source], tmp_path / "o", options)
    assert result.status == status
    assert Image.open(target).size == ((40, 30) if flag == "overwrite" else (8, 8))
    assert flag or "exists; pass --overwrite" in result.error
    assert [p.name for p in target.parent.iterdir()] == ["scan.png"]  # no temporary file left


def test_an_output_path_in_a_symlink_loop_fails_that_image_alone(tmp_path: Path) -> None:
    grey_file(tmp_path / "in" / "a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").symlink_to(tmp_path / "out" / "a.png")  # points at itself
    job = discovery.Job(tmp_path / "in" / "a.png", tmp_path / "out" / "a.png")
    (result,) = pipeline.plan([job], pipeline.WriteOptions())
    assert result.status == "failed" and result.error.startswith("cannot check the output")


def test_an_input_reached_through_a_symlink_is_still_never_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    grey_file(tmp_path / "x.png")
    grey_file(tmp_path / "x-colorized.png")
    (tmp_path / "d").symlink_to(tmp_path)
    jobs = discovery.discover(["d/x-colorized.png", "x.png"], None, "keep")
    results = {r.input: r for r in pipeline.plan(jobs, pipeline.WriteOptions(overwrite=True))}
    assert results["x.png"].status == "failed" and "another input" in results["x.png"].error


def test_overwrite_never_replaces_an_input_a_later_job_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    grey_file(tmp_path / "a.png")
    grey_file(tmp_path / "dir" / "a.png")  # its result under -o . would be ./a.png
    grey_file(tmp_path / "ow" / "top" / "z" / "x.png")
    grey_file(tmp_path / "ow" / "top" / "top" / "z" / "x.png")  # mirrored into ow: ow/top/z/x.png
    options = pipeline.WriteOptions(overwrite=True)
    for inputs, out in ((["dir", "a.png"], Path(".")), (["ow/top"], Path("ow"))):
        reads = discovery.Reads(inputs, out, "keep")
        results = list(pipeline.plan(discovery.discover(inputs, out, "keep"), options, reads))
        planned = {Path(r.output).resolve() for r in results if r.status == "planned"}
        assert not planned & {p.resolve() for p in tmp_path.glob("**/*.png")}, inputs
        assert any("would overwrite another input" in (r.error or "") for r in results), inputs
    # outputs that are not inputs are still replaced
    grey_file(tmp_path / "photos" / "p.png")
    grey_file(tmp_path / "photos-colorized" / "p.png")
    reads = discovery.Reads(["photos"], None, "keep")
    (again,) = pipeline.plan(discovery.discover(["photos"], None, "keep"), options, reads)
    assert again.status == "planned"


def test_a_rerun_with_skip_existing_writes_a_missing_compare_picture(
    tiny_onnx_model: Path, tmp_path: Path
) -> None:
    source = grey_file(tmp_path / "scan.png", (40, 30))
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu", workers=1)
    first = pipeline.WriteOptions(compare=True)
    (done,) = colorizer.colorize_files([source], tmp_path / "o", first)
    result = tmp_path / "o" / "scan.png"
    assert done.status == "ok"
    (tmp_path / "o" / "scan-compare.png").unlink()  # as a run stopped between the two writes leaves it
    before = result.read_bytes()
    resume = pipeline.WriteOptions(compare=True, skip_existing=True)
    (finished,) = colorizer.colorize_files([source], tmp_path / "o", resume)
    assert finished.status == "ok", finished.error
    assert "kept the existing result" in finished.note
    assert result.read_bytes() == before and (tmp_path / "o" / "scan-compare.png").exists()
    (nothing,) = colorizer.colorize_files([source], tmp_path / "o", resume)
    assert nothing.status == "skipped"


def test_colorize_files_compares_paths_with_root_as_the_paths_they_name(
    tiny_onnx_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    grey_file(tmp_path / "in" / "sub" / "grey.png")
    colorizer = pipeline.Colorizer(tiny_onnx_model, device="cpu", workers=1)
    (mixed,) = colorizer.colorize_files(["in/sub/grey.png"], "out", root=tmp_path / "in")
    assert mixed.status == "ok" and Path(mixed.output) == Path("out/sub/grey.png")
    (escaping,) = colorizer.colorize_files(["g/../in/sub/grey.png"], "out2", root="g")
    assert escaping.status == "failed" and "not inside root" in escaping.error
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("**/grey.png")) == [
        "in/sub/grey.png",
        "out/sub/grey.png",
    ]


def test_cuda_asked_for_beside_two_runtimes_says_how_to_keep_the_gpu_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib import metadata

    from colorcli import runtime

    real_version = metadata.version
    monkeypatch.setattr(
        metadata, "version", lambda name: "1.20" if name == "onnxruntime-gpu" else real_version(name)
    )
    with pytest.raises(runtime.DeviceError, match="pip uninstall -y onnxruntime onnxruntime-gpu"):
        runtime.providers_for("cuda")
    monkeypatch.setattr(metadata, "version", real_version)
    with pytest.raises(runtime.DeviceError) as alone:
        runtime.providers_for("cuda")
    assert "uninstall" not in str(alone.value)
