"""Backbones behind one contract: ``forward(x_t, t, attention_mask) -> logits``."""

from seqdiff.backbones.base import Backbone, select_outputs
from seqdiff.backbones.dit import DiT, PRESETS as DIT_PRESETS

__all__ = ["Backbone", "DiT", "DIT_PRESETS", "select_outputs"]
