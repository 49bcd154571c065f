"""Left-to-right sampling for the autoregressive baseline.

One position per step, through the same denoiser interface as the diffusion
samplers. Fixed tokens are teacher-forced (a prefix conditions the continuation; a
fixed token to the right is kept but, by construction, not looked at). The backbone
recomputes the prefix at every step here; the KV-cached version belongs with the
AR backbones.
"""

from __future__ import annotations

import torch

from seqdiff.samplers.base import Denoiser, Sampler, SamplerState, sample_categorical
from seqdiff.vocab import VocabSpec


class AutoregressiveSampler(Sampler):
    def __init__(self, vocab: VocabSpec, schedule=None, *, temperature: float = 1.0, top_p: float = 1.0) -> None:
        super().__init__(vocab)
        self.temperature = temperature
        self.top_p = top_p

    def init_state(self, state: SamplerState) -> None:
        state.extra["i"] = 0
        state.extra["free"] = state.valid & ~state.fixed
        self._advance(state)

    def _advance(self, state: SamplerState) -> None:
        free = state.extra["free"]
        i = state.extra["i"]
        while i < state.x.shape[1] and not bool(free[:, i].any()):
            i += 1
        state.extra["i"] = i
        state.done = i >= state.x.shape[1]

    def step(self, state: SamplerState, denoiser: Denoiser) -> SamplerState:
        i = state.extra["i"]
        positions = state.extra["free"].clone()
        positions[:, :i] = False
        positions[:, i + 1 :] = False
        rows = positions.any(1).nonzero(as_tuple=True)[0]
        logp = denoiser(state.x[rows], torch.zeros(len(rows), device=state.x.device), state.valid[rows], positions[rows])
        state.x[rows, i] = sample_categorical(logp, generator=state.generator, temperature=self.temperature, top_p=self.top_p)
        state.nfe[rows] += 1
        state.calls += 1
        state.step += 1
        state.extra["i"] = i + 1
        self._advance(state)
        return state
