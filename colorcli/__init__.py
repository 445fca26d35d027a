"""colorcli: colour black-and-white photos with GAN colorizers, whole folders at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from colorcli.pipeline import Colorizer, WriteOptions

__all__ = ["Colorizer", "WriteOptions", "__version__"]


def __getattr__(name: str) -> Any:
    # lazy, so `import colorcli` (and `colorcli --help`) stays fast
    if name in ("Colorizer", "WriteOptions"):
        from colorcli import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
