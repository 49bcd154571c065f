"""Learning-rate schedules as pure functions of the step (nothing to save for resume)."""

from __future__ import annotations

import math


def lr_at(step: int, *, base_lr: float, warmup: int, total: int, decay: str = "constant", min_ratio: float = 0.1) -> float:
    """Linear warm-up over ``warmup`` steps, then ``constant`` (MDLM), ``cosine`` or
    ``linear`` decay to ``min_ratio * base_lr`` at ``total`` steps."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    if decay == "constant" or total <= warmup:
        return base_lr
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if decay == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif decay == "linear":
        f = 1.0 - progress
    else:
        raise ValueError(f"lr schedule: unknown decay {decay!r} (constant, cosine, linear)")
    return base_lr * (min_ratio + (1.0 - min_ratio) * f)
