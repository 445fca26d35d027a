"""Opening exported models with onnxruntime: the default model, device choice, metadata.

Used by ``colorize``, ``evaluate``, ``info`` and the Python API; imports no torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from colorcli import metadata

DEFAULT_MODEL_NAME = "colorcli-default.onnx"
DEVICES = ("auto", "cpu", "cuda")


class ModelLoadError(RuntimeError):
    """A model file that is missing, unreadable, truncated, or not a colorcli model."""


class DeviceError(RuntimeError):
    """The requested device cannot be used here."""


def default_model_path() -> Path:
    """The model shipped inside the package (``weights/`` in the source tree)."""
    path = Path(str(resources.files("colorcli.weights").joinpath(DEFAULT_MODEL_NAME)))
    if not path.is_file():
        raise ModelLoadError(
            f"the default model is not installed ({path}); pass --model MODEL.onnx or reinstall colorcli"
        )
    return path


def providers_for(device: str) -> list[str]:
    """onnxruntime execution providers for ``device``: auto prefers CUDA when it is usable."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise DeviceError(
                "--device cuda needs onnxruntime-gpu and a CUDA GPU "
                f"(pip install 'colorcli[gpu]'{_BOTH_RUNTIMES if _both_runtimes() else ''}); "
                "use --device cpu or auto"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto":
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    raise DeviceError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")


# onnxruntime and onnxruntime-gpu install the same module, and side by side the CPU one's files
# can hide CUDA; installing the GPU one alone again gives it back
_BOTH_RUNTIMES = (
    ", then, as both onnxruntime and onnxruntime-gpu are installed: "
    "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
)


def _both_runtimes() -> bool:
    from importlib import metadata as installed

    try:
        installed.version("onnxruntime")
        installed.version("onnxruntime-gpu")
    except installed.PackageNotFoundError:
        return False
    return True


def read_info(path: str | Path) -> metadata.ModelInfo:
    """The colorcli metadata of an ONNX model (through a one-thread CPU session, which also
    checks that onnxruntime can run the graph)."""
    return _session(Path(path), ["CPUExecutionProvider"], threads=1)[1]


@dataclass
class LoadedModel:
    path: Path
    session: Any  # onnxruntime.InferenceSession
    info: metadata.ModelInfo
    device: str  # "cuda" or "cpu": what actually runs

    def run(self, l_norm: Any) -> Any:
        """(N, 1, H, W) float32 normalised L -> (N, 2, H, W) float32 normalised a,b."""
        return self.session.run([metadata.OUTPUT_NAME], {metadata.INPUT_NAME: l_norm})[0]


def load_model(path: str | Path | None = None, device: str = "auto", threads: int = 0) -> LoadedModel:
    """Open a colorcli ONNX model (``None``: the shipped default) on ``device``.

    ``threads`` sets onnxruntime's intra-op threads (0: onnxruntime's default, all cores).
    """
    model_path = default_model_path() if path is None else Path(path)
    session, info = _session(model_path, providers_for(device), threads)
    running = "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
    if device == "cuda" and running != "cuda":
        raise DeviceError("CUDA was requested but onnxruntime could not start it; use --device cpu")
    return LoadedModel(model_path, session, info, running)


def _session(path: Path, providers: list[str], threads: int) -> tuple[Any, metadata.ModelInfo]:
    import onnxruntime as ort

    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder; give the .onnx file in it")
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # idle intra-op threads sleep instead of spinning: colorize decodes and encodes on the same
    # cores while the model runs, and spinning threads took ~8% of its throughput
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    elif os.environ.get("OMP_NUM_THREADS", "").isdigit():
        options.intra_op_num_threads = int(os.environ["OMP_NUM_THREADS"])
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        if path.suffix.lower() in (".pt", ".pth"):
            raise ModelLoadError(
                f"{path} is a training checkpoint, not an ONNX model; export it first: "
                f"colorcli export {path} -o model.onnx"
            ) from None
        raise ModelLoadError(f"{path} is not a readable ONNX model ({first})") from None
    try:
        info = metadata.parse(session.get_modelmeta().custom_metadata_map)
    except metadata.ModelFormatError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    return session, info
