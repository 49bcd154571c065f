"""Training: the loop (``trainer``) and what it calls, one module each: ``config``,
``parallel`` (device, DDP/FSDP), ``optim``, ``lr``, ``ema``, ``resume``, ``metrics``, ``guards``.

The names below load on first use (PEP 562), so importing one piece (``seqdiff.train.parallel``
for the device) does not import the loop."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EMA": "seqdiff.train.ema",
    "Checkpoint": "seqdiff.io.checkpoint",
    "load_checkpoint": "seqdiff.io.checkpoint",
    "save_checkpoint": "seqdiff.io.checkpoint",
    "Trainer": "seqdiff.train.trainer",
    "TrainerConfig": "seqdiff.train.config",
    "TrainResult": "seqdiff.train.trainer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seqdiff.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
