"""Live view of a training run: a rich progress bar with running losses on a terminal, plain
lines otherwise (log files, Slurm), and a table of the paper's figures after every epoch."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

FIGURES = (
    ("gen_adv", "G adv"),
    ("gen_l1", "G L1"),
    ("disc_loss", "D loss"),
    ("disc_acc", "D acc"),
    ("psnr", "PSNR"),
    ("class_acc", "class acc"),  # --class-weight only
)


def _running(values: dict[str, float]) -> str:
    return " ".join(f"{label} {values[key]:.4f}" for key, label in FIGURES if key in values)


class TrainDisplay:
    def __init__(self, enabled: bool = True, log_every: float = 30.0) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.log_every = log_every
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=self.console,
            disable=not self.live,
        )
        self._last_line = 0.0
        self._started = 0.0
        self._done = 0

    def __enter__(self) -> TrainDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def start(self, description: str, total: int) -> Any:
        self._started, self._done, self._last_line = time.perf_counter(), 0, time.perf_counter()
        self._description = description
        return self.progress.add_task(description, total=total, speed="", losses="")

    def advance(self, task: Any, n: int, running: dict[str, float]) -> None:
        self._done += n
        rate = self._done / max(time.perf_counter() - self._started, 1e-9)
        self.progress.update(task, advance=1, speed=f"{rate:.0f} img/s", losses=_running(running))
        if self.enabled and not self.live and time.perf_counter() - self._last_line > self.log_every:
            self._last_line = time.perf_counter()
            print(
                f"{self._description}: {self._done} images, {rate:.1f} img/s, {_running(running)}",
                file=sys.stderr,
                flush=True,
            )

    def finish(self, task: Any) -> None:
        self.progress.remove_task(task)

    def epoch_table(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        table = Table(title=f"epoch {record['epoch']} ({record['seconds']:.0f} s, step {record['step']})")
        table.add_column("split")
        shown = [(key, label) for key, label in FIGURES if key in record["train"]]
        for _, label in shown:
            table.add_column(label, justify="right")
        for split in ("train", "val"):
            table.add_row(split, *(f"{record[split][key]:.4f}" for key, _ in shown))
        self.console.print(table)
