"""Loading a process's frozen reference model (ENS entropies), where models are built.

A process names its reference (:attr:`seqdiff.processes.Process.reference`) and never
loads it: :func:`seqdiff.run.build_run` binds :func:`reference_loader` to it, and the
process calls that loader the first time it needs the model (so a run that never trains
with ENS never opens it, and sampling never does).

The reference is a Hugging Face masked-LM directory (Diffusion-EAGS' pretrained MLM; read
with the training process's own SUBS parameterisation, on the run's vocabulary) or a
seqdiff checkpoint / run directory (read with its own process; its vocabulary must be
the run's).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable

from seqdiff.backbones.base import Backbone
from seqdiff.errors import ConfigError
from seqdiff.io.checkpoint import is_hf_model_dir
from seqdiff.processes.base import Process, ReferenceLoader
from seqdiff.vocab import VocabSpec


def load_reference(path: str, vocab: VocabSpec, load_run: Callable[[Path], Any]) -> tuple[Backbone, Process | None]:
    """The frozen model at ``path`` and the process that reads it (``None``: the caller's
    own process, for a bare HF masked LM); ``load_run`` opens a seqdiff run or checkpoint
    (:func:`seqdiff.run.load`, handed in by the composition root). Gradients are off."""
    p = Path(path).expanduser()
    if is_hf_model_dir(p):
        from seqdiff.backbones.hf_mlm import HFMaskedLM  # lazy: transformers only when asked for

        net = HFMaskedLM(vocab.size, vocab, path=str(p))
        net.requires_grad_(False)
        return net, None
    ref = load_run(p)
    diff = ref.vocab.describe_difference(vocab)
    if diff:
        raise ConfigError(f"process.ens_entropy: {path} has a different vocabulary ({diff})")
    ref.model.requires_grad_(False)
    return ref.model, ref.process


def reference_loader(path: str, vocab: VocabSpec, load_run: Callable[[Path], Any]) -> ReferenceLoader:
    """A loader of ``path`` for :meth:`Process.bind_reference` (loads nothing yet)."""
    return partial(load_reference, path, vocab, load_run)
