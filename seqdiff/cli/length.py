"""Can the model be run at the requested sample length? The rule of ``seqdiff sample``.

The model was trained on windows of ``data.seq_len`` tokens (its *trained length*). A
masked-diffusion sampler runs the backbone on a whole window at every call: all of the
sequence, or ``block_length`` tokens for semi-AR (:meth:`Sampler.window`). For a window
longer than the trained length:

1. a backbone with a position limit (``max_length``: a Hugging Face model's position
   embeddings) cannot run at all: refused;
2. a backbone with attention holds, in one layer at a time, the scores and weights of
   ``batch x heads x window^2`` pairs (float32): when that exceeds the memory available
   on the device, refused (this is what made ``length=100000`` on the 64-token
   quickstart model run for minutes without an answer: ~1.3 TB for 8 sequences);
3. otherwise the samples are drawn, with a note that the model never saw windows that
   long (a Mamba backbone's memory grows linearly, so only the note applies).

Every refusal says what to do instead: ``sampler=semi_ar`` slides trained-length windows
over the sequence (MDLM's stride continuation). An autoregressive model is sampled one
token per call (with a KV or recurrent cache), so only rule 1 and the note apply to it.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from seqdiff.errors import ConfigError

FLOAT_BYTES = 4


def check_length(exp: Any, sampler: Any, length: int, batch: int, *, warn=lambda s: print(s, file=sys.stderr)) -> None:
    """Raise a one-line :class:`ConfigError` (or print a note) per the module's rule."""
    trained = trained_length(exp)
    window = int(sampler.window(length))
    masked = exp.process.kind != "autoregressive"
    name = type(sampler).__name__
    limit = getattr(exp.model, "max_length", None)  # declared by backbones with position embeddings
    if limit is not None and window > int(limit):
        instead = (f"use sampler=semi_ar sampler.block_length={min(int(limit), trained or int(limit))}" if masked
                   else f"use length<={int(limit)}")
        raise ConfigError(f"length={length}: the backbone has {int(limit)} positions and {name} would run it on "
                          f"{window}; {instead}")
    if trained is None or window <= trained:
        return
    if masked:
        need, heads = attention_bytes(exp.model, batch, window), attention_heads(exp.model)
        have = available_bytes(next(exp.model.parameters()).device)
        if heads and have is not None and need > have:
            raise ConfigError(
                f"length={length}: {name} runs the model on all {window} positions at once, beyond the {trained} "
                f"tokens it was trained on, and its attention needs ~{_gb(need)} for {batch} sequences "
                f"({_gb(have)} available); generate window by window with sampler=semi_ar (windows of {trained} tokens)")
        warn(f"note: length={length} is beyond the {trained}-token windows the model was trained on and {name} "
             "denoises them all at once; samples may degrade (sampler=semi_ar generates window by window)")
    else:
        warn(f"note: length={length} is beyond the {trained} tokens the model was trained on; samples may degrade")


def trained_length(exp: Any) -> int | None:
    """``data.seq_len`` of the checkpoint (not of a data section overridden at sample time)."""
    cfg = exp.checkpoint.config if exp.checkpoint is not None else exp.config
    seq_len = (cfg.get("data") or {}).get("seq_len")
    return None if seq_len is None else int(seq_len)


def attention_heads(model: torch.nn.Module) -> int:
    """The most attention heads of one layer (0: no attention layer we know of)."""
    from seqdiff.backbones.dit import DiTBlock

    heads = [m.n_heads for m in model.modules() if isinstance(m, DiTBlock)]
    for m in model.modules():  # a Hugging Face transformer (hf_mlm) carries its config
        n = getattr(getattr(m, "config", None), "num_attention_heads", None)
        if isinstance(n, int):
            heads.append(n)
    return max(heads, default=0)


def attention_bytes(model: torch.nn.Module, batch: int, window: int) -> int:
    """Scores and softmax weights of one layer, ``2 x batch x heads x window^2`` floats."""
    return 2 * batch * attention_heads(model) * window * window * FLOAT_BYTES


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (CUDA: the driver's count; CPU: Linux's MemAvailable)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _gb(n: float) -> str:
    return f"{n / 1e12:.1f} TB" if n >= 1e12 else f"{n / 1e9:.1f} GB"
