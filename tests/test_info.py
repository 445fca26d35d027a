"""`colorcli info`: metadata, inputs and outputs of an exported model, as text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import TINY_DATA, TINY_METRICS

from colorcli import checkpoint


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "colorcli", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_info_text(tiny_onnx_model, tiny_checkpoint_factory):
    result = run_cli("info", tiny_onnx_model)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "architecture  unet-sn" in out
    assert "render size   64" in out
    assert "precision     fp32" in out
    assert "colour gain   1\n" in out
    assert "context size  off\n" in out
    assert "L/50 - 1, a,b/110" in out
    assert checkpoint.sha256(tiny_checkpoint_factory("unet-sn", image_size=64)) in out
    assert "tiny-test" in out and "val_psnr" in out
    assert "l     tensor(float)   [batch, 1, height, width]" in out
    assert "ab    tensor(float)   [batch, 2, height, width]" in out
    assert f"({tiny_onnx_model.stat().st_size / 1e6:.2f} MB)" in out


def test_info_json(tiny_onnx_model):
    result = run_cli("info", tiny_onnx_model, "--json")
    assert result.returncode == 0, result.stderr
    d = json.loads(result.stdout)
    assert d["size_bytes"] == tiny_onnx_model.stat().st_size
    assert d["metadata"]["arch"] == "unet-sn"
    assert d["metadata"]["render_size"] == 64
    assert d["metadata"]["training_data"] == TINY_DATA
    assert d["metadata"]["metrics"] == TINY_METRICS
    assert d["inputs"] == [{"name": "l", "type": "tensor(float)", "shape": ["batch", 1, "height", "width"]}]
    assert d["outputs"] == [{"name": "ab", "type": "tensor(float)", "shape": ["batch", 2, "height", "width"]}]


def test_info_json_is_strict_json_when_a_metric_is_not_a_number(tiny_onnx_model, tmp_path):
    # a run that diverged: Python's json writes NaN and Infinity, which JSON itself does not have
    diverged = _setting("metrics", '{"val_l1": NaN, "val_psnr": Infinity}')(tiny_onnx_model, tmp_path)
    result = run_cli("info", diverged, "--json")
    assert result.returncode == 0, result.stderr
    strict = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert strict["metadata"]["metrics"] == {"val_l1": None, "val_psnr": None}
    text = run_cli("info", diverged)
    assert text.returncode == 0 and "val_l1                NaN" in text.stdout, text.stdout


def _truncated(model: Path, tmp: Path) -> Path:
    p = tmp / "truncated.onnx"
    p.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    return p


def _foreign(model: Path, tmp: Path) -> Path:
    # a valid ONNX model, but not one colorcli wrote: no colorcli metadata
    import onnx

    m = onnx.load(model)
    del m.metadata_props[:]
    p = tmp / "foreign.onnx"
    onnx.save(m, p)
    return p


def _setting(key: str, value: str) -> Callable[[Path, Path], Path]:
    """A copy of the model with one metadata value changed."""

    def make(model: Path, tmp: Path) -> Path:
        import onnx

        m = onnx.load(model)
        for prop in m.metadata_props:
            if prop.key == f"colorcli.{key}":
                prop.value = value
        p = tmp / f"{key}.onnx"
        onnx.save(m, p)
        return p

    return make


def _checkpoint_file(folder: Path) -> Path:
    path = folder / "run.pt"
    path.write_bytes(b"PK\x03\x04 a torch zip")
    return path


@pytest.mark.parametrize(
    ("make", "code", "message"),
    [
        (lambda m, t: t / "missing.onnx", 1, "no such model file"),
        (lambda m, t: t, 1, "is a folder; give the .onnx file in it"),
        (_truncated, 1, "is not a readable ONNX model"),
        (lambda m, t: _checkpoint_file(t), 1, "is a training checkpoint, not an ONNX model; export it first"),
        (_foreign, 1, "not a colorcli model"),
        (_setting("colour_gain", "0"), 1, "colour gain 0.0 in the model's metadata is not usable"),
        (_setting("ab_scale", "128"), 1, "normalises L and a,b otherwise (ab_scale 128.0, not 110.0)"),
        (_setting("training_data", '["photos"]'), 1, "malformed: training_data is not a JSON object"),
    ],
    ids=[
        "missing",
        "folder",
        "truncated",
        "checkpoint",
        "foreign",
        "zero-gain",
        "other-normalisation",
        "not-an-object",
    ],
)
def test_info_bad_input(make, code, message, tiny_onnx_model, tmp_path):
    result = run_cli("info", make(tiny_onnx_model, tmp_path))
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert result.stdout == ""
