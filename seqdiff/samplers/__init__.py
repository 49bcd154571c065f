"""Samplers: ``start``/``step`` loops over a denoiser, all with fixed-token conditioning."""

from seqdiff.samplers.ancestral import AncestralSampler
from seqdiff.samplers.autoregressive import AutoregressiveSampler
from seqdiff.samplers.base import Condition, Denoiser, Sampler, SampleOutput, SamplerState, sample_categorical

__all__ = [
    "AncestralSampler",
    "AutoregressiveSampler",
    "Condition",
    "Denoiser",
    "SampleOutput",
    "Sampler",
    "SamplerState",
    "sample_categorical",
]

from seqdiff.samplers.semi_ar import SemiAutoregressiveSampler

__all__ += ["SemiAutoregressiveSampler"]

from seqdiff.samplers.ordered import OrderedSampler

__all__ += ["OrderedSampler"]

from seqdiff.samplers.keywords import KeywordCondition, keyword_coverage, keyword_variants, place_keywords

__all__ += ["KeywordCondition", "keyword_coverage", "keyword_variants", "place_keywords"]

from seqdiff.samplers.rc import RCSymmetricDenoiser, RCSymmetricSampler, reverse_complement

__all__ += ["RCSymmetricDenoiser", "RCSymmetricSampler", "reverse_complement"]

from seqdiff.samplers.sedd import ScoreDenoiser, SEDDAnalyticSampler, SEDDEulerSampler

__all__ += ["ScoreDenoiser", "SEDDAnalyticSampler", "SEDDEulerSampler"]
