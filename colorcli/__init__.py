"""colorcli: colour black-and-white photos with GAN colorizers, whole folders at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from colorcli.pipeline import Colorizer

__all__ = ["Colorizer", "__version__"]


def __getattr__(name: str) -> Any:
    # lazy, so `import colorcli` (and `colorcli --help`) stays fast
    if name == "Colorizer":
        from colorcli.pipeline import Colorizer

        return Colorizer
    raise AttributeError(name)
