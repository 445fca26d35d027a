"""The model zoo: generators and discriminators, built by name through :mod:`.registry`."""

from colorcli.models.registry import ARCHITECTURES, Architecture, build_discriminator, build_generator

__all__ = ["ARCHITECTURES", "Architecture", "build_discriminator", "build_generator"]
