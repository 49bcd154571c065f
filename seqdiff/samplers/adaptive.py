r"""Adaptive parallel unmasking: each step predicts every candidate masked position and a
rule decides, from those predictions, *how many* (and which) to reveal at once.

The rule (:meth:`AdaptiveSampler.select`) sees only the model's conditionals
:math:`p_\theta(x^i \mid x_t)` of the candidates, never the values it is about to draw, and
always keeps at least one position per row. The chosen positions are then drawn each from
its own conditional (the parallel-decoding approximation: their joint draw is the product
of the per-site conditionals, not the block conditional). When the rule keeps exactly one
position per step the sampler is therefore one-token-at-a-time sampling in a
state-dependent order, which samples the model's joint exactly whenever the conditionals
are those of one joint (tested on an enumerable toy for each subclass at its limit).

**Blocks** (``block_size``, LLaDA / Fast-dLLM's semi-autoregressive mode): the candidates
are the masked positions of the leftmost block of ``block_size`` positions that still has
one; the model still reads the whole sequence (later blocks masked). This is not
:class:`~seqdiff.samplers.semi_ar.SemiAutoregressiveSampler`, which slides a window of the
trained length over a *longer* sequence; wrap an adaptive sampler in it (``inner``) for that.

**Noise level.** There is no time grid: each call gets the row's masked share of its free
positions as the masking rate :math:`1-\alpha(t)`, the level at which the model saw states
with that many masks in training.

Every step runs one batched denoiser call for the rows that still have masked positions
(one NFE each) and the loop ends as soon as nothing is masked.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field

import torch
from torch import Tensor

from seqdiff.samplers.base import Denoiser, Sampler, SamplerState, sample_categorical
from seqdiff.vocab import VocabSpec


def current_block(masked: Tensor, block_size: int | None) -> Tensor:
    """``masked [B, L]`` restricted to each row's leftmost block (of ``block_size``
    positions, from position 0) that still holds a masked position; all of it if None."""
    if block_size is None:
        return masked
    L = masked.shape[1]
    blk = torch.arange(L, device=masked.device) // int(block_size)
    first = torch.where(masked, blk, torch.full_like(blk, L)).min(1).values
    return masked & (blk.unsqueeze(0) == first.unsqueeze(1))


def scatter_rows(sub: Tensor, values: Tensor, fill: float) -> Tensor:
    """``[R, L]`` float64 holding ``values`` (row-major over ``sub``'s True entries), ``fill`` elsewhere."""
    full = torch.full(sub.shape, fill, dtype=torch.float64, device=sub.device)
    full[sub] = values.double()
    return full


@dataclass(kw_only=True)
class AdaptiveState(SamplerState):
    """``free``: positions to generate; ``revealed``: tokens each row revealed per step (list of ``[B]``)."""

    free: Tensor
    revealed: list[Tensor] = field(default_factory=list)


class AdaptiveSampler(Sampler):
    """Base of :class:`~seqdiff.samplers.threshold.ThresholdSampler` and
    :class:`~seqdiff.samplers.entropy_bound.EntropyBoundSampler` (see the module docstring).

    Args:
        vocab: the model's vocabulary.
        block_size: semi-autoregressive blocks (None: the whole sequence is one block).
        temperature, top_p: applied to every token draw (the rule reads the untempered conditionals).
    """

    def __init__(self, vocab: VocabSpec, *, block_size: int | None = None, temperature: float = 1.0,
                 top_p: float = 1.0) -> None:
        super().__init__(vocab)
        if block_size is not None and int(block_size) < 1:
            raise ValueError(f"{type(self).__name__}: block_size must be null or >= 1, got {block_size!r}")
        self.block_size = None if block_size is None else int(block_size)
        self.temperature = temperature
        self.top_p = top_p

    @abstractmethod
    def select(self, logp: Tensor, sub: Tensor) -> Tensor:
        """Which of the scored positions to reveal: ``logp [N, V]`` row-major over the True
        entries of ``sub [R, L]``; returns ``[R, L]`` bool inside ``sub``, >= 1 per row."""

    def init_state(self, state: SamplerState) -> AdaptiveState:
        free = state.valid & ~state.fixed
        out = AdaptiveState.extend(state, free=free)
        out.done = not bool(free.any())
        return out

    def step(self, state: AdaptiveState, denoiser: Denoiser) -> AdaptiveState:
        masked = (state.x == self.vocab.mask_id) & state.free
        cand = current_block(masked, self.block_size)
        rows = cand.any(1).nonzero(as_tuple=True)[0]
        sub = cand[rows]
        rate = masked[rows].sum(1).double() / state.free[rows].sum(1).clamp(min=1).double()
        logp = denoiser(state.x[rows], rate, state.valid[rows], sub)
        chosen = self.select(logp, sub) & sub
        values = sample_categorical(logp[chosen[sub]], generator=state.generator, temperature=self.temperature,
                                    top_p=self.top_p)
        x_rows = state.x[rows]
        x_rows[chosen] = values
        state.x[rows] = x_rows
        count = torch.zeros(state.x.shape[0], dtype=torch.long)
        count[rows.cpu()] = chosen.sum(1).cpu()
        state.revealed.append(count)
        state.nfe[rows] += 1
        state.calls += 1
        state.step += 1
        state.done = not bool(((state.x == self.vocab.mask_id) & state.free).any())
        return state

    def trace(self, state: AdaptiveState) -> dict:
        """``revealed [steps, B]``: tokens each row revealed at each step."""
        return {"revealed": torch.stack(state.revealed) if state.revealed else None}
