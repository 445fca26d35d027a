"""The processes of a training run: DDP ranks and their reductions, the device and precision
they train at, and how stops (SIGTERM from Slurm or Kubernetes, Ctrl-C) reach the run and its
data workers without leaving half-written files or tracebacks behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from colorcli.train_config import ConfigError


class Distributed:
    """Rank, world size and reductions; a single process is world size 1."""

    def __init__(self, device: torch.device) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            if device.type == "cuda":  # where NCCL's collectives of Python objects put their bytes
                torch.cuda.set_device(device)
            torch.distributed.init_process_group(backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            torch.distributed.all_reduce(t)
        return t

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (on every rank)."""
        if self.world == 1:
            return [obj]
        gathered: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(gathered, obj)
        return gathered

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: PyTorch sees no CUDA GPU here; use --device cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if name != "cpu":
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device("cpu")


def pick_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if _cpu_has_bf16() else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def leave_sigterm_to_parent(worker_id: int) -> None:
    """Data workers survive their first SIGTERM: the training process stops them itself after
    its clean stop. A SIGTERM to the whole process group (Slurm's ``scancel``) would otherwise
    kill them first and turn that stop into a DataLoader crash. A second one ends a worker: it
    is what a worker that has not stopped by itself gets from the DataLoader's shutdown and at
    interpreter exit (``Process.terminate``), and one that ignored it kept the training process
    waiting for it at exit."""
    signal.signal(signal.SIGTERM, _survive_first_sigterm)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _survive_first_sigterm(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _ignore_lost_parent(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """A data worker's excepthook. The training process fetches each batch's shared memory from
    the worker over a socket (multiprocessing's resource sharer); stopped halfway through one,
    it left the worker's sharer thread printing a ConnectionResetError traceback after the clean
    stop message. Nobody is left to tell; anything else is reported as usual."""
    if not issubclass(kind, ConnectionError):
        sys.__excepthook__(kind, value, tb)


def init_worker(worker_id: int) -> None:
    leave_sigterm_to_parent(worker_id)
    sys.excepthook = _ignore_lost_parent


# the stops a run honours cleanly: SIGTERM (Slurm, Kubernetes) and SIGINT (Ctrl-C)
_STOPS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stops_deferred() -> Iterator[None]:
    """Lets the epoch's files (checkpoints, metrics line, samples) be written whole before a
    stop takes effect: one that arrives meanwhile is noted and raised again afterwards.
    Stopped inside ``torch.save``, the run reported a zip-writer error instead of a clean stop;
    stopped between its files, it named an epoch its checkpoint did not hold."""
    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return
    caught: list[int] = []
    previous = {stop: signal.signal(stop, lambda signum, frame: caught.append(signum)) for stop in _STOPS}
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
        if caught:
            signal.raise_signal(caught[0])


@contextlib.contextmanager
def stops_held() -> Iterator[None]:
    """Holds SIGTERM and SIGINT back while data workers start. A handler's exception raised
    inside ``os.fork`` is lost there (the run went on to its end), and a worker forked inside
    the window inherits the block, so a signal to the process group cannot kill it before it has
    set itself up; the training process gets its own copy as soon as the block lifts, and stops
    its workers itself."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no process groups to signal anyway
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, set(_STOPS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
