"""Deterministic seeds derived from integers (run seed, step, rank, ...).

Python's ``hash`` of a tuple is not guaranteed stable across interpreter versions;
SplitMix64 is, so a batch or mask drawn for step ``s`` is the same on every machine.
"""

from __future__ import annotations

import torch

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part and their order."""
    h = 0
    for p in parts:
        h = _splitmix64(h ^ (int(p) & _MASK64))
    return h & 0x7FFF_FFFF_FFFF_FFFF


def generator(*parts: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))
