"""The public checkpoint formats, by ``config.json``'s ``model_type``.

A format is a module with

- ``MODEL_TYPE``; ``EXPORTS``: the backbone ``_target_``\\ s it can write back;
- ``run_overrides(hf_dir, hf_config, tokenizer) -> [str]``: Hydra overrides for the run around
  the model (domain, data, process, sampler, trainer);
- ``to_seqdiff(hf_config, tensors, vocab, weights_file, config_file) -> (backbone config, state dict)``;
- ``from_seqdiff(backbone config, state dict, vocab, seq_len, where, domain=run's domain section)
  -> (config.json dict, tensors)``;
- optionally ``tokenizer_files(seq_len) -> {name: json}`` written next to an export.

Adding a format is one line here and one module.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from seqdiff.errors import CheckpointError

FORMATS: dict[str, str] = {
    "mdlm": "seqdiff.interop.mdlm",
    "caduceus": "seqdiff.interop.caduceus",
}


def get_format(model_type: object, where: str) -> ModuleType:
    if model_type not in FORMATS:
        raise CheckpointError(f"{where}: model_type {model_type!r} is not importable "
                              f"(known: {', '.join(sorted(FORMATS))})")
    return importlib.import_module(FORMATS[str(model_type)])


def format_for_backbone(target: object, where: str) -> ModuleType:
    """The format that writes a run with backbone ``_target_`` ``target``."""
    for path in FORMATS.values():
        mod = importlib.import_module(path)
        if target in getattr(mod, "EXPORTS", ()):
            return mod
    known = [t for p in FORMATS.values() for t in getattr(importlib.import_module(p), "EXPORTS", ())]
    raise CheckpointError(f"{where}: no public layout for backbone {target!r} (exportable: {', '.join(known)})")
