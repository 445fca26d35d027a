"""`colorcli export`: tiny checkpoints of every architecture exported, checked and described."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import TINY_DATA, TINY_METRICS, make_tiny_checkpoint
from PIL import Image
from skimage import data as skimage_data

from colorcli import checkpoint, export, export_checks, metadata, runtime
from colorcli.models import registry
from colorcli.pipeline import Colorizer

PARITY_LINE = re.compile(r"fp32 ONNX vs PyTorch: max abs difference in a,b \(normalised\) (\S+)")


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "colorcli", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("arch", sorted(registry.ARCHITECTURES))
def test_every_architecture_exports_with_parity_and_metadata(arch, tiny_checkpoint_factory, tmp_path):
    ckpt = tiny_checkpoint_factory(arch)
    out = tmp_path / f"{arch}.onnx"
    lines: list[str] = []
    report = export.export_model(ckpt, out, log=lines.append)

    printed = [float(m.group(1)) for line in lines if (m := PARITY_LINE.search(line))]
    assert printed and printed[0] == pytest.approx(report.max_abs_diff, rel=0.01)
    assert 0 < report.max_abs_diff <= export.FP32_TOLERANCE
    assert any(c.shape[-1] % 16 != 0 for c in report.parity), "a size that is not a multiple of 16"
    assert {c.name for c in report.parity} >= {"random", *export_checks.SAMPLE_PHOTOS}

    info = runtime.read_info(out)
    assert info.arch == arch
    assert info.render_size == 64  # the checkpoint's image_size
    assert info.precision == "fp32"
    assert (info.l_scale, info.l_offset, info.ab_scale) == (50.0, 1.0, 110.0)
    assert info.training_data == TINY_DATA
    assert info.metrics == TINY_METRICS
    assert info.checkpoint_sha256 == checkpoint.sha256(ckpt)
    assert files_in(tmp_path) == [out.name]


def test_exported_graph_is_plain_and_dynamic(tiny_onnx_model, tiny_checkpoint_factory):
    model = onnx.load(tiny_onnx_model)
    onnx.checker.check_model(model, full_check=True)
    (inp,), (outp,) = model.graph.input, model.graph.output
    assert (inp.name, outp.name) == (metadata.INPUT_NAME, metadata.OUTPUT_NAME)
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (inp, outp)]
    assert dims == [["batch", 1, "height", "width"], ["batch", 2, "height", "width"]]

    # any batch and size runs, and matches the checkpoint's generator in eval mode
    generator = checkpoint.load_generator(checkpoint.load(tiny_checkpoint_factory("unet-sn")))
    session = ort.InferenceSession(str(tiny_onnx_model), providers=["CPUExecutionProvider"])
    l_norm = np.random.default_rng(1).uniform(-1, 1, (3, 1, 41, 19)).astype(np.float32)
    got = session.run(["ab"], {"l": l_norm})[0]
    with torch.no_grad():
        expected = generator(torch.from_numpy(l_norm)).numpy()
    assert got.shape == (3, 2, 41, 19)
    np.testing.assert_allclose(got, expected, atol=export.FP32_TOLERANCE)


def test_spectral_norm_is_folded_into_plain_weights():
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(0)
    net = torch.nn.Sequential(spectral_norm(torch.nn.Conv2d(1, 4, 3)), torch.nn.Tanh())
    net.train()
    for _ in range(3):  # power iterations move the stored singular vectors
        net(torch.randn(1, 1, 8, 8))
    net.eval()
    x = torch.randn(2, 1, 9, 9)
    with torch.no_grad():
        before = net(x)
        export.plain_weights(net)
        after = net(x)
    assert not parametrize.is_parametrized(net[0])
    assert isinstance(net[0].weight, torch.nn.Parameter)
    torch.testing.assert_close(after, before)


def test_parity_failure_writes_nothing(tiny_checkpoint_factory, tmp_path, monkeypatch):
    real = export_checks.parity_check

    def off_by_a_little(generator, session, inputs):
        return [
            export_checks.ParityCase(c.name, c.shape, c.max_abs_diff + 1e-3)
            for c in real(generator, session, inputs)
        ]

    monkeypatch.setattr(export_checks, "parity_check", off_by_a_little)
    with pytest.raises(export.ExportError, match="disagree"):
        export.export_model(tiny_checkpoint_factory("unet-sn"), tmp_path / "m.onnx", log=lambda _: None)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    ("precision", "head"),
    [
        ("fp16", {}),
        ("fp16", {"colour_bins": 6}),
        ("int8", {}),
        ("int8", {"colour_bins": 6, "blocks": 1}),
        ("int8", {"colour_bins": 6, "imagenet_encoder": True}),
    ],
    ids=[
        "fp16",
        "fp16-colour-classes",
        "int8",
        "int8-colour-classes-bottleneck-blocks",
        "int8-imagenet-encoder",
    ],
)
def test_reduced_precision_runs_on_cpu_and_reports_size_and_quality(
    precision, head, tiny_checkpoint_factory, tmp_path
):
    calibration = None
    if precision == "int8":  # static quantization over real photos
        calibration = tmp_path / "calib"
        calibration.mkdir()
        for name in ("coffee", "chelsea", "astronaut"):
            Image.fromarray(getattr(skimage_data, name)()).save(calibration / f"{name}.png")
        (calibration / "broken.jpg").write_bytes(b"not a photo")
    out = tmp_path / f"m-{precision}.onnx"
    lines: list[str] = []
    report = export.export_model(
        tiny_checkpoint_factory("unet-sn", generator_args={"width": 8, "depth": 2, **head}),
        out,
        precision=precision,
        calibration=calibration,
        log=lines.append,
    )
    text = "\n".join(lines)

    assert runtime.read_info(out).precision == precision
    assert report.size_bytes == out.stat().st_size
    assert f"size: {precision} " in text and "vs fp32" in text
    assert re.search(rf"mean PSNR .* \(fp32\) -> .* \({precision}\), change [+-]\d", text)
    # close to fp32 but not bit-identical: the conversion really happened
    assert all(10 < c.psnr_vs_fp32 < float("inf") for c in report.quality)
    assert 0 < report.max_abs_diff < 0.5  # a,b span [-1, 1]; a broken conversion is off by ~1
    if precision == "int8":
        assert "3 calibration images (1 unreadable, skipped)" in report.quantization
        ops = {n.op_type for n in onnx.load(out).graph.node}
        # every convolution quantized: the up-steps are exported as convolutions and pixel
        # shuffles, since onnxruntime leaves transposed convolutions in float
        assert "QuantizeLinear" in ops and "DepthToSpace" in ops and "ConvTranspose" not in ops
    else:
        graph = onnx.load(out).graph
        assert {i.type.tensor_type.elem_type for i in (*graph.input, *graph.output)} == {
            onnx.TensorProto.FLOAT
        }
        assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)

    model = runtime.load_model(out, device="cpu", threads=1)
    ab = model.run(np.zeros((1, 1, 37, 53), np.float32))
    assert ab.shape == (1, 2, 37, 53) and ab.dtype == np.float32


def test_calibration_reads_a_16_bit_grey_scan_as_its_8_bit_copy(tmp_path):
    camera = skimage_data.camera()
    Image.fromarray(camera).save(tmp_path / "8.png")
    Image.fromarray(camera.astype(np.uint16) * 257).save(tmp_path / "16.png")  # mode I;16
    reader = export._CalibrationReader([tmp_path / "8.png", tmp_path / "16.png"], 64)
    eight, sixteen = (reader.get_next()[metadata.INPUT_NAME] for _ in range(2))
    assert eight.std() > 0.2  # a photo, not a white page
    np.testing.assert_allclose(sixteen, eight, atol=0.02)


def test_int8_without_calibration_is_dynamic(tiny_checkpoint_factory, tmp_path):
    out = tmp_path / "m.onnx"
    report = export.export_model(
        tiny_checkpoint_factory("resnet-sn"), out, precision="int8", log=lambda _: None
    )
    assert report.quantization.startswith("dynamic")
    ab = runtime.load_model(out, device="cpu", threads=1).run(np.zeros((2, 1, 30, 30), np.float32))
    assert ab.shape == (2, 2, 30, 30)


def test_cli_export_from_run_directory_with_render_size(tiny_checkpoint_factory, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes(tiny_checkpoint_factory("unet-bn").read_bytes())
    out = tmp_path / "model.onnx"
    result = run_cli("export", run, "-o", out, "--render-size", "48")
    assert result.returncode == 0, result.stderr
    assert float(PARITY_LINE.search(result.stdout).group(1)) <= export.FP32_TOLERANCE
    assert f"wrote {out}" in result.stdout
    info = runtime.read_info(out)
    assert (info.arch, info.render_size) == ("unet-bn", 48)
    assert files_in(tmp_path) == ["model.onnx", "run"]


# -- bad input ---------------------------------------------------------------------------------


def _not_a_checkpoint(tmp_path: Path) -> Path:
    p = tmp_path / "notes.pt"
    p.write_text("hello, I am not a checkpoint\n")
    return p


def _pickled_object(tmp_path: Path) -> Path:
    import torch as t

    p = tmp_path / "object.pt"
    t.save({"model": object()}, p)  # torch refuses it with advice to load unsafely
    return p


def _exported_model(tmp_path: Path) -> Path:
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x08\x07")  # what matters is the name: a model, not a checkpoint
    return p


def _unknown_arch(tmp_path: Path) -> Path:
    import torch as t

    state = t.load(make_tiny_checkpoint(tmp_path / "src.pt", "unet-sn"), weights_only=True)
    state["arch"] = "vit-huge"
    p = tmp_path / "future.pt"
    checkpoint.save(state, p)
    (tmp_path / "src.pt").unlink()
    return p


def _diverged(tmp_path: Path) -> Path:
    import torch as t

    state = t.load(make_tiny_checkpoint(tmp_path / "src.pt", "unet-sn"), weights_only=True)
    name = next(k for k, v in state["generator"].items() if v.is_floating_point())
    state["generator"][name].view(-1)[0] = float("inf")  # one weight is enough to spoil every pixel
    p = tmp_path / "diverged.pt"
    checkpoint.save(state, p)
    (tmp_path / "src.pt").unlink()
    return p


@pytest.mark.parametrize(
    ("make_input", "output", "code", "message"),
    [
        (lambda d: d / "missing.pt", "m.onnx", 2, "no such checkpoint"),
        (_not_a_checkpoint, "m.onnx", 1, "not a readable colorcli checkpoint"),
        (_pickled_object, "m.onnx", 1, "not plain tensors and numbers, or a damaged file)"),
        (_exported_model, "m.onnx", 1, "is an exported ONNX model; give the checkpoint"),
        (_unknown_arch, "new-folder/m.onnx", 1, "unknown architecture 'vit-huge'"),
        (_diverged, "m.onnx", 1, "1 of the generator's weight tensors hold NaN or infinity"),
    ],
    ids=["missing", "not-a-checkpoint", "pickled-object", "exported-model", "unknown-arch", "diverged"],
)
def test_bad_input_is_one_line_error_and_no_file(
    make_input, output, code, message, tiny_checkpoint_factory, tmp_path
):
    source = make_input(tmp_path) if make_input else tiny_checkpoint_factory("unet-sn")
    before = files_in(tmp_path)
    result = run_cli("export", source, "-o", tmp_path / output)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert files_in(tmp_path) == before


def test_an_output_that_is_not_an_onnx_file_is_refused(tiny_checkpoint_factory, tmp_path):
    source = tiny_checkpoint_factory("unet-sn")
    kept = source.read_bytes()
    for output in (source, tmp_path / "photo.png"):  # the checkpoint being read, a training photo
        result = run_cli("export", source, "-o", output)
        assert result.returncode == 2 and "give a file name ending in .onnx" in result.stderr
    assert source.read_bytes() == kept and not (tmp_path / "photo.png").exists()
    os.mkfifo(tmp_path / "pipe.onnx")
    result = run_cli("export", source, "-o", tmp_path / "pipe.onnx")
    assert result.returncode == 2 and "is not a regular file" in result.stderr
    assert (tmp_path / "pipe.onnx").is_fifo()


def test_missing_output_folders_are_made_when_the_model_is_written(tiny_checkpoint_factory, tmp_path):
    output = tmp_path / "models" / "v2" / "m.onnx"
    export.export_model(tiny_checkpoint_factory("unet-sn"), output, log=lambda _: None)
    assert files_in(output.parent) == ["m.onnx"]


def test_an_output_under_a_file_is_refused(tiny_checkpoint_factory, tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    with pytest.raises(export.ExportUsageError, match=r"notes\.txt is a file, not a folder"):
        export.export_model(tiny_checkpoint_factory("unet-sn"), tmp_path / "notes.txt" / "m.onnx", log=print)


def test_read_only_output_folder_is_refused_before_any_work(tiny_checkpoint_factory, tmp_path):
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root ignores permission bits; sysfs refuses new files even to root
        folder = Path("/sys")
    lines: list[str] = []
    try:
        with pytest.raises(export.ExportUsageError, match="is not writable"):
            export.export_model(tiny_checkpoint_factory("unet-sn"), folder / "m.onnx", log=lines.append)
        assert lines == []
        assert not (folder / "m.onnx").exists()
    finally:
        (tmp_path / "readonly").chmod(0o755)
    assert files_in(tmp_path / "readonly") == []


def test_bad_options_are_usage_errors(tiny_checkpoint_factory, tmp_path):
    ckpt = tiny_checkpoint_factory("unet-sn")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "scan.jpg").write_bytes(b"not a photo")
    cases = [
        (("--precision", "fp8"), "unknown precision"),
        (("--render-size", "4"), "at least 8"),
        (("--calibration", tmp_path), "only applies to --precision int8"),
        (("--precision", "int8", "--calibration", tmp_path / "nope"), "no such folder"),
        (("--precision", "int8", "--calibration", tmp_path / "broken"), "none of its 1 images could be read"),
    ]
    for extra, message in cases:
        with pytest.raises(export.ExportUsageError, match=message):
            options = dict(zip(extra[::2], extra[1::2], strict=True))
            export.export_model(
                ckpt,
                tmp_path / "m.onnx",
                render_size=int(options.get("--render-size", 64)),
                precision=options.get("--precision", "fp32"),
                calibration=options.get("--calibration"),
                log=lambda _: None,
            )
    assert files_in(tmp_path) == ["broken"]


def test_colour_class_model_exports_with_parity_and_its_temperature(tiny_checkpoint_factory, tmp_path):
    ckpt = tiny_checkpoint_factory("unet-sn", generator_args={"width": 8, "depth": 2, "colour_bins": 6})
    outputs = {}
    for temperature in (None, 0.1):
        out = tmp_path / f"t{temperature}.onnx"
        report = export.export_model(ckpt, out, log=lambda _: None, temperature=temperature)
        assert report.max_abs_diff <= export.FP32_TOLERANCE
        info = runtime.read_info(out)
        assert info.generator_args["colour_bins"] == 6
        assert info.generator_args["temperature"] == (temperature or 0.38)
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        l_in = np.linspace(-1, 1, 2 * 40 * 56, dtype=np.float32).reshape(2, 1, 40, 56)
        outputs[temperature] = session.run(None, {"l": l_in})[0]
    assert outputs[None].shape == (2, 2, 40, 56)
    # a colder read-off leans to each cell's most likely colour: further from grey
    assert np.abs(outputs[0.1]).mean() > np.abs(outputs[None]).mean()


def test_temperature_needs_a_colour_class_model(tiny_checkpoint_factory, tmp_path):
    with pytest.raises(export.ExportUsageError, match="colour-class models"):
        export.export_model(tiny_checkpoint_factory("unet-sn"), tmp_path / "m.onnx", temperature=0.3)
    assert files_in(tmp_path) == []


def test_colour_gain_is_stored_and_applied_like_saturation(tiny_checkpoint_factory, tmp_path):
    ckpt = tiny_checkpoint_factory("unet-sn")
    export.export_model(ckpt, tmp_path / "plain.onnx", log=lambda _: None)
    export.export_model(ckpt, tmp_path / "gain.onnx", log=lambda _: None, colour_gain=1.5)
    assert runtime.read_info(tmp_path / "gain.onnx").colour_gain == 1.5
    assert runtime.read_info(tmp_path / "plain.onnx").colour_gain == 1.0
    photo = Image.fromarray(skimage_data.astronaut()).resize((96, 96)).convert("L")

    def colour(model: str, saturation: float) -> np.ndarray:
        return np.asarray(Colorizer(tmp_path / model, saturation=saturation).colorize(photo), dtype=np.int16)

    assert np.array_equal(colour("gain.onnx", 1.0), colour("plain.onnx", 1.5))
    assert np.array_equal(colour("gain.onnx", 2.0), colour("plain.onnx", 3.0))
    assert np.abs(colour("gain.onnx", 1.0) - colour("plain.onnx", 1.0)).max() > 0
    with pytest.raises(export.ExportUsageError, match="--colour-gain"):
        export.export_model(ckpt, tmp_path / "bad.onnx", log=lambda _: None, colour_gain=0)


def test_context_size_is_stored_and_used_by_default(tiny_checkpoint_factory, tmp_path):
    ckpt = tiny_checkpoint_factory("unet-sn", image_size=64)
    export.export_model(ckpt, tmp_path / "ctx.onnx", log=lambda _: None, context_size=32)
    assert runtime.read_info(tmp_path / "ctx.onnx").context_size == 32
    assert Colorizer(tmp_path / "ctx.onnx").context_size == 32
    assert Colorizer(tmp_path / "ctx.onnx", context_size=0).context_size == 0
    for bad, message in [(4, "at least 8"), (64, "not below the render size 64")]:
        with pytest.raises(export.ExportUsageError, match=message):
            export.export_model(ckpt, tmp_path / "bad.onnx", log=lambda _: None, context_size=bad)
    assert not (tmp_path / "bad.onnx").exists()
