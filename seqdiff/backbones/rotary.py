"""Rotary position embedding (RoPE, Su et al. 2021), half-split ("NeoX") layout.

Relative positions matter for local structure (DNA motifs, character n-grams): a
learned absolute-position transformer trained with the MDLM loss on an order-3 Markov
source stalled at unigram statistics in our prototypes, a rotary one did not.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Rotary(nn.Module):
    """Caches ``cos``/``sin`` tables per (length, device, dtype)."""

    def __init__(self, head_dim: int, base: float = 10_000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"Rotary: head_dim must be even, got {head_dim}")
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        self.register_buffer("inv_freq", inv_freq.float(), persistent=False)
        self._cache: tuple[int, torch.device, torch.dtype, Tensor, Tensor] | None = None

    def tables(self, length: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        c = self._cache
        if c is None or c[0] < length or c[1] != device or c[2] != dtype:
            pos = torch.arange(length, device=device, dtype=torch.float32)
            freqs = torch.outer(pos, self.inv_freq.to(device))
            emb = torch.cat([freqs, freqs], dim=-1)
            c = (length, device, dtype, emb.cos().to(dtype), emb.sin().to(dtype))
            self._cache = c
        return c[3][:length], c[4][:length]


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x[..., L, D]`` by position: ``x * cos + rotate_half(x) * sin``."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin
