r"""Confidence-threshold parallel decoding (Fast-dLLM, Wu et al. 2025, ``get_transfer_index``).

Each step reveals every candidate masked position whose top probability
:math:`\max_v p_\theta(x^i = v \mid x_t)` exceeds ``tau``, and at least the most confident
one (ties: leftmost), so a step never stalls. The chosen positions are drawn from their
conditionals (``temperature=0``: argmax, Fast-dLLM's default).

What is exact: the selection reads the top probability, not the drawn value, so with
``tau >= 1`` (no conditional has a top probability above 1) one token is revealed per step,
the most confident first, and the sampler draws the model's joint exactly when its
conditionals are those of one joint. With a smaller ``tau`` confident positions are drawn
in parallel, independently given the same state: not exact (the toy test shows the gap),
and the point of the method is that the gap is small when ``tau`` is high. Fast-dLLM's code
ranks by the probability of the *sampled* token; with sampling that would couple the choice
to the value and bias even one-at-a-time decoding, so here the top probability ranks.
Semi-AR blocks: ``block_size`` (:mod:`seqdiff.samplers.adaptive`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from seqdiff.samplers.adaptive import AdaptiveSampler, scatter_rows
from seqdiff.vocab import VocabSpec


class ThresholdSampler(AdaptiveSampler):
    """Reveal every masked position with top probability > ``tau`` (at least one per step).

    Args:
        vocab: the model's vocabulary.
        tau: the confidence threshold in [0, 1] (Fast-dLLM: 0.9); 1: one token per step, exact.
        block_size, temperature, top_p: :class:`~seqdiff.samplers.adaptive.AdaptiveSampler`'s.
    """

    def __init__(self, vocab: VocabSpec, tau: float = 0.9, *, block_size: int | None = None,
                 temperature: float = 1.0, top_p: float = 1.0) -> None:
        super().__init__(vocab, block_size=block_size, temperature=temperature, top_p=top_p)
        if not 0.0 <= float(tau) <= 1.0:
            raise ValueError(f"ThresholdSampler: tau must be in [0, 1], got {tau!r}")
        self.tau = float(tau)

    def select(self, logp: Tensor, sub: Tensor) -> Tensor:
        top = scatter_rows(sub, logp.double().max(-1).values, -math.inf)  # log of the top probability
        best = top.argmax(1)  # first maximum: ties leftmost
        out = top > math.log(self.tau) if self.tau > 0 else sub.clone()
        out[torch.arange(sub.shape[0], device=sub.device), best] = True
        return out & sub
