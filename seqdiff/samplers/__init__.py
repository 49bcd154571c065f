"""Samplers: ``start``/``step`` loops over a denoiser, all with fixed-token conditioning."""

from seqdiff.samplers.ancestral import AncestralSampler, AncestralState
from seqdiff.samplers.autoregressive import AutoregressiveSampler, AutoregressiveState
from seqdiff.samplers.base import (
    Condition, Denoiser, Sampler, SampleOutput, SamplerState, SamplingContext, sample_categorical,
)

__all__ = [
    "AncestralSampler",
    "AncestralState",
    "AutoregressiveSampler",
    "AutoregressiveState",
    "Condition",
    "Denoiser",
    "SampleOutput",
    "Sampler",
    "SamplerState",
    "SamplingContext",
    "sample_categorical",
]

from seqdiff.samplers.semi_ar import SemiAutoregressiveSampler, SemiAutoregressiveState

__all__ += ["SemiAutoregressiveSampler", "SemiAutoregressiveState"]

from seqdiff.samplers.ordered import EAGSSampler, OrderedSampler, OrderedState

__all__ += ["EAGSSampler", "OrderedSampler", "OrderedState"]

from seqdiff.samplers.keywords import KeywordCondition, keyword_coverage, keyword_variants, place_keywords

__all__ += ["KeywordCondition", "keyword_coverage", "keyword_variants", "place_keywords"]

from seqdiff.samplers.rc import RCSymmetricDenoiser, RCSymmetricSampler, RCSymmetricState, reverse_complement

__all__ += ["RCSymmetricDenoiser", "RCSymmetricSampler", "RCSymmetricState", "reverse_complement"]
from seqdiff.samplers.sedd import ScoreDenoiser, SEDDAnalyticSampler, SEDDEulerSampler

__all__ += ["ScoreDenoiser", "SEDDAnalyticSampler", "SEDDEulerSampler"]

from seqdiff.samplers.adaptive import AdaptiveSampler, AdaptiveState
from seqdiff.samplers.entropy_bound import EntropyBoundSampler
from seqdiff.samplers.remdm import ReMDMSampler, ReMDMState
from seqdiff.samplers.threshold import ThresholdSampler

__all__ += ["AdaptiveSampler", "AdaptiveState", "EntropyBoundSampler", "ReMDMSampler", "ReMDMState",
            "ThresholdSampler"]
