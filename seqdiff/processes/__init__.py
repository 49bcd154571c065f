"""Diffusion (and autoregressive) processes: corruption, parameterisation, loss.

Every process implements :class:`~seqdiff.processes.base.Process` (the contract)."""

from seqdiff.processes.autoregressive import AutoregressiveProcess
from seqdiff.processes.base import DenoiserFn, LossOutput, Process, ReferenceLoader
from seqdiff.processes.masked import MaskedDiffusion
from seqdiff.processes.sedd import ScoreEntropyDiffusion
from seqdiff.processes.time_sampling import order_statistic_mask, stratified_uniform, uniform

__all__ = [
    "AutoregressiveProcess",
    "DenoiserFn",
    "LossOutput",
    "MaskedDiffusion",
    "Process",
    "ReferenceLoader",
    "ScoreEntropyDiffusion",
    "order_statistic_mask",
    "stratified_uniform",
    "uniform",
]
