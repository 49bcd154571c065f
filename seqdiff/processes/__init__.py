"""Diffusion (and autoregressive) processes: corruption, parameterisation, loss."""

from seqdiff.processes.autoregressive import AutoregressiveProcess
from seqdiff.processes.masked import LossOutput, MaskedDiffusion
from seqdiff.processes.sedd import ScoreEntropyDiffusion
from seqdiff.processes.time_sampling import order_statistic_mask, stratified_uniform, uniform

__all__ = [
    "AutoregressiveProcess",
    "LossOutput",
    "MaskedDiffusion",
    "ScoreEntropyDiffusion",
    "order_statistic_mask",
    "stratified_uniform",
    "uniform",
]
