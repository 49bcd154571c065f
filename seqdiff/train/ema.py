"""Exponential moving average of parameters, with MDLM's warm-up of the decay.

``decay_n = min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early averages
are not dominated by the random initialisation (what MDLM's ``models/ema.py`` does).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float = 0.9999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA: decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def current_decay(self) -> float:
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        shadows, params = [], []
        for n, p in model.named_parameters():
            if n in self.shadow:
                shadows.append(self.shadow[n])
                params.append(p.detach())
        torch._foreach_lerp_(shadows, params, 1.0 - d)
        self.num_updates += 1

    @contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """Temporarily load the averaged weights into ``model``."""
        backup = {n: p.detach().clone() for n, p in model.named_parameters() if n in self.shadow}
        self.copy_to(model)
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if n in backup:
                        p.copy_(backup[n])

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for n, p in model.named_parameters():
            if n in self.shadow:
                p.copy_(self.shadow[n])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates}

    def load(self, shadow: dict[str, torch.Tensor], state: dict) -> None:
        missing = set(self.shadow) - set(shadow)
        if missing:
            raise KeyError(f"EMA: checkpoint lacks {sorted(missing)[:3]}")
        from seqdiff.train.distributed import shard_like

        with torch.no_grad():
            for n, t in self.shadow.items():
                t.copy_(shard_like(shadow[n], t))  # FSDP: this rank's shard of the full tensor
        self.num_updates = int(state["num_updates"])
