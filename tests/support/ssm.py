"""Helpers for the state-space backbones' tests (Mamba, BiMamba, Caduceus)."""

from __future__ import annotations

import torch


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.3) -> torch.nn.Module:
    """Non-trivial weights (the init zeroes biases and shrinks out_proj), so tests can fail;
    ``A_log`` and ``dt_proj.bias`` keep their stable initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "A_log" in name or "dt_proj.bias" in name:
                continue
            p.add_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.eval()
