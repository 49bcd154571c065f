"""seqdiff: discrete (masked) diffusion language models over any token vocabulary.

The core (this package, minus :mod:`seqdiff.cli`) knows integer tokens, a
:class:`VocabSpec`, schedules, processes, samplers, backbones, evaluation and the
trainer; domains (DNA, text, ...) live in ``seqdiff_recipes`` (the repository's ``recipes/``
folder) and are chosen by configuration.
"""

__version__ = "0.1.0"

# Public names, imported on first use (PEP 562): ``import seqdiff`` loads no torch, and
# opening a checkpoint loads the run's pieces but never the trainer or the evaluator.
_EXPORTS = {
    "Run": "seqdiff.run",
    "build_run": "seqdiff.run",
    "load": "seqdiff.run",
    "AutoregressiveProcess": "seqdiff.processes",
    "MaskedDiffusion": "seqdiff.processes",
    "AncestralSampler": "seqdiff.samplers",
    "AutoregressiveSampler": "seqdiff.samplers",
    "Condition": "seqdiff.samplers",
    "CosineSchedule": "seqdiff.schedules",
    "LinearSchedule": "seqdiff.schedules",
    "LogLinearSchedule": "seqdiff.schedules",
    "VocabSpec": "seqdiff.vocab",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seqdiff' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
