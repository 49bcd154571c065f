"""Backbones behind one contract: ``forward(x_t, t, valid) -> logits``."""

from seqdiff.backbones.base import Backbone, select_outputs
from seqdiff.backbones.dit import DiT, PRESETS as DIT_PRESETS

__all__ = ["Backbone", "DiT", "DIT_PRESETS", "select_outputs"]
from seqdiff.backbones.ar_mamba import ARMamba
from seqdiff.backbones.bimamba import BiMamba
from seqdiff.backbones.caduceus import PRESETS as CADUCEUS_PRESETS, CaduceusPH, CaduceusPS
from seqdiff.backbones.hyena import PRESETS as HYENA_PRESETS, HyenaDNA

__all__ += ["ARMamba", "BiMamba", "CADUCEUS_PRESETS", "CaduceusPH", "CaduceusPS", "HYENA_PRESETS", "HyenaDNA"]


def __getattr__(name: str):
    # HFMaskedLM imports transformers; load it only when asked for, so `import seqdiff`
    # stays free of transformers (tests/test_layering.py).
    if name == "HFMaskedLM":
        from seqdiff.backbones.hf_mlm import HFMaskedLM

        return HFMaskedLM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
