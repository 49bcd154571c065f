"""Left-to-right sampling for the autoregressive baseline.

One position per step, through the same denoiser interface as the diffusion
samplers. Fixed tokens are teacher-forced (a prefix conditions the continuation; a
fixed token to the right is kept but, by construction, not looked at). When the
backbone supports incremental decoding (KV cache / recurrent state) each step costs
one token of backbone work; otherwise the prefix is recomputed at every step.

Gaps: a position ``i`` reads the *valid* tokens before it (see
:mod:`seqdiff.processes.autoregressive`). A cache feeds every earlier token, so it is
used only when no invalid position precedes a position still to be generated (trailing
padding is fine); a row with an interior gap or left padding is sampled by exact
recomputation instead, O(L) backbone calls of the whole row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seqdiff.samplers.base import Denoiser, Sampler, SamplerState, sample_categorical
from seqdiff.vocab import VocabSpec


@dataclass(kw_only=True)
class AutoregressiveState(SamplerState):
    """``i``: the next position; ``free``: positions to generate; ``cache_exact``: no
    invalid position precedes a free one, so an incremental cache reads what the model's
    NLL reads; ``session``: the incremental denoiser in use, or None (recomputation)."""

    i: int
    free: Tensor
    cache_exact: bool
    session: Any = None


class AutoregressiveSampler(Sampler):
    process_kinds = ("autoregressive",)

    def __init__(self, vocab: VocabSpec, *, temperature: float = 1.0, top_p: float = 1.0,
                 use_cache: bool = True) -> None:
        super().__init__(vocab)
        self.temperature = temperature
        self.top_p = top_p
        self.use_cache = use_cache

    def init_state(self, state: SamplerState) -> AutoregressiveState:
        free = state.valid & ~state.fixed
        # An invalid position j with a free position after it in its row: a cache would feed
        # x_j as context to that position, which the model (and its NLL) never reads.
        later_free = (free.flip(1).long().cumsum(1).flip(1) - free.long()) > 0
        out = AutoregressiveState.extend(state, i=0, free=free, cache_exact=not bool((~state.valid & later_free).any()))
        out.done = not bool(free.any())
        return out

    def _skip_fixed(self, state: AutoregressiveState, i: int) -> int:
        """Without a cache, fully fixed columns need no backbone call."""
        free = state.free
        while i < state.x.shape[1] and not bool(free[:, i].any()):
            i += 1
        return i

    def step(self, state: AutoregressiveState, denoiser: Denoiser) -> AutoregressiveState:
        i, free = state.i, state.free
        # ``incremental``: declared by the AR process's denoiser when its backbone has a cache
        if i == 0 and self.use_cache and state.cache_exact and getattr(denoiser, "incremental", False):
            denoiser.start(state.x.shape[0], state.x.shape[1])
            state.session = denoiser
        session = state.session
        if session is not None:
            prev = state.x[:, i - 1] if i > 0 else torch.full_like(state.x[:, 0], self.vocab.mask_id)
            rows = free[:, i].nonzero(as_tuple=True)[0]
            logp = session.step(prev)[rows]
            state.nfe += 1
        else:
            i = self._skip_fixed(state, i)
            positions = torch.zeros_like(free)
            positions[:, i] = free[:, i]
            rows = positions.any(1).nonzero(as_tuple=True)[0]
            logp = denoiser(state.x[rows], torch.zeros(len(rows), device=state.x.device), state.valid[rows], positions[rows])
            state.nfe[rows] += 1
        if len(rows):
            state.x[rows, i] = sample_categorical(logp, generator=state.generator, temperature=self.temperature, top_p=self.top_p)
        state.calls += 1
        state.step += 1
        state.i = i + 1
        state.done = not bool(free[:, i + 1 :].any())
        return state
