"""Rotary position embedding (RoPE, Su et al. 2021) as one complex multiplication.

Relative positions matter for local structure (DNA motifs, character n-grams): a
learned absolute-position transformer trained with the MDLM loss on an order-3 Markov
source stalled at unigram statistics in our prototypes, a rotary one did not.

Channel pairs ``(2i, 2i+1)`` of each head are read as one complex number and rotated
by ``exp(i * pos * theta_i)`` (the GPT-J / LLaMA "interleaved" layout). On CPU this is
one fused op instead of the half-split form's slice/negate/concat/multiply/add chain,
which cost a fifth of a DiT training step in our profiles.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Rotary(nn.Module):
    """Caches the complex rotation table per (length, device)."""

    def __init__(self, head_dim: int, base: float = 10_000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"Rotary: head_dim must be even, got {head_dim}")
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._cache: tuple[int, torch.device, Tensor] | None = None

    def table(self, length: int, device: torch.device) -> Tensor:
        """``exp(i * pos * theta)``, complex64 ``[length, head_dim // 2]``."""
        c = self._cache
        if c is None or c[0] < length or c[1] != device:
            pos = torch.arange(length, dtype=torch.float64)
            angles = torch.outer(pos, self.inv_freq.cpu())
            c = (length, device, torch.polar(torch.ones_like(angles), angles).to(torch.complex64).to(device))
            self._cache = c
        return c[2][:length]


def apply_rotary(x: Tensor, table: Tensor) -> Tensor:
    """Rotate ``x[..., L, D]`` by position; returns a contiguous tensor of ``x``'s dtype."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * table).flatten(-2).to(x.dtype)
