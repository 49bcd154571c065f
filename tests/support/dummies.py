"""Dummy denoisers with known, state-dependent outputs (no training, no equivariance)."""

from __future__ import annotations

import torch

from seqdiff.vocab import VocabSpec

# A, C, G, T, N, [MASK], [PAD]: the DNA layout with a complement map
DNA = VocabSpec(size=7, mask_id=5, pad_id=6, complement=(3, 2, 1, 0, 4, 5, 6), never_generate=(4,))


class Arbitrary:
    """``log p(x^i = v | x_t)`` from fixed random tables of the position, both neighbours
    and the row's number of visible tokens: deterministic, state dependent, and neither
    position- nor reverse-complement-symmetric. Records every call."""

    def __init__(self, vocab: VocabSpec, L: int, seed: int = 0, sharpness: float = 3.0):
        g = torch.Generator().manual_seed(seed)
        V = vocab.size
        self.vocab = vocab
        self.pos = torch.randn(L, V, generator=g, dtype=torch.float64) * sharpness
        self.left = torch.randn(V, V, generator=g, dtype=torch.float64)
        self.right = torch.randn(V, V, generator=g, dtype=torch.float64)
        self.scale = torch.rand(L, generator=g, dtype=torch.float64) * 2 + 0.1
        self.calls = 0

    def full(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        B, L = x.shape
        pad = torch.full((B, 1), self.vocab.pad_id)
        left = torch.cat([pad, x[:, :-1]], 1)
        right = torch.cat([x[:, 1:], pad], 1)
        visible = ((x != self.vocab.mask_id) & valid).sum(1, keepdim=True).double()
        scale = self.scale.unsqueeze(0) * (1 + 0.1 * (visible % 3))
        logits = (self.pos.unsqueeze(0) + self.left[left] + self.right[right]) * scale.unsqueeze(-1)
        logits[..., list(self.vocab.never_generate)] = float("-inf")
        return torch.log_softmax(logits, -1)

    def __call__(self, x, rate, valid, positions):
        self.calls += 1
        return self.full(x, valid)[positions]
