"""The ``seqdiff`` command line (the only layer that imports Hydra)."""

from seqdiff.cli.main import main

__all__ = ["main"]
