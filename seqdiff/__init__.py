"""seqdiff: discrete (masked) diffusion language models over any token vocabulary.

The core (this package, minus :mod:`seqdiff.cli`) knows integer tokens, a
:class:`VocabSpec`, schedules, processes, samplers, backbones, evaluation and the
trainer; domains (DNA, text, ...) live in ``recipes`` and are chosen by configuration.
"""

__version__ = "0.1.0"

from seqdiff.experiment import Experiment, build_experiment, load
from seqdiff.processes import AutoregressiveProcess, MaskedDiffusion
from seqdiff.samplers import AncestralSampler, AutoregressiveSampler, Condition
from seqdiff.schedules import CosineSchedule, LinearSchedule, LogLinearSchedule
from seqdiff.vocab import VocabSpec

__all__ = [
    "AncestralSampler",
    "AutoregressiveProcess",
    "AutoregressiveSampler",
    "Condition",
    "CosineSchedule",
    "Experiment",
    "LinearSchedule",
    "LogLinearSchedule",
    "MaskedDiffusion",
    "VocabSpec",
    "__version__",
    "build_experiment",
    "load",
]
