"""Enumerable toy distributions and their exact denoisers, computed independently of
the library's loss code (by brute-force enumeration of every sequence)."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from seqdiff.backbones.base import Backbone, select_outputs
from seqdiff.vocab import VocabSpec


class Toy:
    """A distribution over all ``V**L`` sequences of ``V`` real tokens (ids ``0..V-1``);
    the vocabulary adds [MASK] (id V) and [PAD] (id V+1)."""

    def __init__(self, V: int = 3, L: int = 3, seed: int = 0, concentration: float = 1.0) -> None:
        self.V, self.L = V, L
        self.vocab = VocabSpec(size=V + 2, mask_id=V, pad_id=V + 1)
        self.seqs = torch.tensor(list(itertools.product(range(V), repeat=L)), dtype=torch.long)
        g = torch.Generator().manual_seed(seed)
        w = torch._standard_gamma(torch.full((len(self.seqs),), concentration, dtype=torch.float64), generator=g)
        self.p = w / w.sum()

    def neg_log_p(self, x: Tensor) -> Tensor:
        idx = torch.zeros(x.shape[0], dtype=torch.long)
        for i in range(self.L):
            idx = idx * self.V + x[:, i]
        return -torch.log(self.p[idx])

    def entropy(self) -> float:
        return float(-(self.p * self.p.log()).sum())

    def conditional(self, x_t: Tensor) -> Tensor:
        """``[L, V]``: p(x_i = v | the unmasked tokens of ``x_t``), by enumeration."""
        visible = x_t != self.vocab.mask_id
        consistent = (self.seqs[:, visible] == x_t[visible]).all(1)
        w = self.p * consistent
        out = torch.zeros(self.L, self.V, dtype=torch.float64)
        for i in range(self.L):
            out[i].index_add_(0, self.seqs[:, i], w)
        return out / out.sum(-1, keepdim=True)


class ExactDenoiser(Backbone):
    """Backbone whose logits are the toy's true conditionals (plus an optional,
    optionally time-dependent, perturbation)."""

    def __init__(self, toy: Toy, noise: float = 0.0, time_scale: float = 0.0, seed: int = 1) -> None:
        super().__init__()
        self.toy = toy
        self.vocab_size = toy.vocab.size
        self.time_conditioning = time_scale != 0.0
        g = torch.Generator().manual_seed(seed)
        self.perturb = noise * torch.randn(toy.L, toy.V, generator=g, dtype=torch.float64)
        self.time_scale = time_scale
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.calls = 0

    def features(self, x_t, t, valid):  # pragma: no cover - forward is overridden
        raise NotImplementedError

    def head(self, h):  # pragma: no cover
        raise NotImplementedError

    def forward(self, x_t: Tensor, t: Tensor | None = None, valid=None, output_mask=None) -> Tensor:
        self.calls += 1
        B, L = x_t.shape
        logits = torch.full((B, L, self.vocab_size), -30.0, dtype=torch.float64)
        for b in range(B):
            lp = self.toy.conditional(x_t[b].cpu()).clamp_min(1e-300).log() + self.perturb
            if self.time_scale and t is not None:
                lp = lp + self.time_scale * float(t[b]) * torch.arange(self.toy.V, dtype=torch.float64)
            logits[b, :, : self.toy.V] = lp
        return select_outputs(logits, output_mask)
