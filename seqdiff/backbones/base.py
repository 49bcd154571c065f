"""The one contract every backbone obeys.

``forward(x_t, t, valid, output_mask=None, label=None) -> logits``

- ``x_t``: LongTensor ``[B, L]`` of (partly masked) token ids.
- ``t``: FloatTensor ``[B]`` noise level, or ``None``. Processes pass the masking rate
  :math:`1-\\alpha(t)\\in[0,1]` (schedule-independent), and ``None`` when the process
  is not time-conditioned (the MDLM default) or autoregressive.
- ``valid``: BoolTensor ``[B, L]``, True at real tokens; padding is neither
  attended to nor predicted. ``None`` means all positions are real.
- ``output_mask``: optional BoolTensor ``[B, L]``. When given, only the logits of the
  selected positions are returned, packed as ``[N, V]`` in row-major order. The MDLM
  loss only needs masked positions, and for large vocabularies the output projection
  dominates the cost, so backbones that can skip it for other positions should.
- ``label``: optional LongTensor ``[B, F]`` of label ids per sequence (one column per label
  field, :mod:`seqdiff.labels`; id ``K_f`` is the learned "no label"). Only a backbone built
  with ``label_sizes`` (the number of names ``K_f`` of each field) takes it: it is part of
  the conditioning (DiT: added to the adaLN vector), and ``None`` means no label (every
  field's no-label id). A label is strand-free: it never breaks an RC-equivariant model's
  symmetry. Passing a label to a backbone without ``label_sizes`` is a ``ValueError``;
  :func:`seqdiff.run.build_run` refuses a labelled run on a backbone whose constructor has
  no ``label_sizes`` argument (one-line ``ConfigError``), so that is never reached.

Logits are returned in the backbone's compute dtype; processes cast to float32.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

import torch
from torch import Tensor, nn


class Backbone(nn.Module, ABC):
    """Base class: subclasses implement :meth:`features` and :meth:`head`, or override forward."""

    vocab_size: int
    #: True for left-to-right (autoregressive) networks; processes check it.
    causal: bool = False
    #: True when the network actually uses its ``t`` argument.
    time_conditioning: bool = False
    #: Names per label field the network embeds (``()``: it takes no labels).
    label_sizes: tuple[int, ...] = ()

    @abstractmethod
    def features(self, x_t: Tensor, t: Tensor | None, valid: Tensor | None) -> Tensor:
        """Hidden states ``[B, L, D]``."""

    @abstractmethod
    def head(self, h: Tensor) -> Tensor:
        """Logits ``[..., V]`` from hidden states ``[..., D]``."""

    def forward(
        self,
        x_t: Tensor,
        t: Tensor | None = None,
        valid: Tensor | None = None,
        output_mask: Tensor | None = None,
        label: Tensor | None = None,
    ) -> Tensor:
        if label is not None:
            check_label(self, label, x_t)
            h = self.features(x_t, t, valid, label=label)  # only labelled backbones take the keyword
        else:
            h = self.features(x_t, t, valid)
        if output_mask is not None:
            h = h[output_mask]
        return self.head(h)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def unwrap(model: nn.Module) -> nn.Module:
    """The backbone inside DDP / ``torch.compile`` wrappers (for its attributes)."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def select_outputs(logits: Tensor, output_mask: Tensor | None) -> Tensor:
    """For backbones that can only produce full logits: apply ``output_mask`` afterwards."""
    return logits if output_mask is None else logits[output_mask]


def check_inputs(x_t: Tensor, valid: Tensor | None) -> None:
    if x_t.dim() != 2:
        raise ValueError(f"backbone: x_t must be [batch, length], got shape {tuple(x_t.shape)}")
    if valid is not None and valid.shape != x_t.shape:
        raise ValueError(
            f"backbone: valid shape {tuple(valid.shape)} != x_t shape {tuple(x_t.shape)}"
        )


def check_label(model: nn.Module, label: Tensor, x_t: Tensor) -> Tensor:
    """``label`` as ``[B, F]`` ids in range for ``model.label_sizes``; a one-line ``ValueError`` else."""
    sizes = tuple(getattr(model, "label_sizes", ()) or ())
    if not sizes:
        raise ValueError(f"backbone: {type(model).__name__} was built without labels (label_sizes) but was given one")
    if label.dim() != 2 or label.shape != (x_t.shape[0], len(sizes)):
        raise ValueError(f"backbone: label must be [batch, {len(sizes)}] = [{x_t.shape[0]}, {len(sizes)}], "
                         f"got {tuple(label.shape)}")
    high = torch.tensor(sizes, device=label.device)
    if ((label < 0) | (label > high)).any():
        raise ValueError(f"backbone: label ids out of range (sizes {list(sizes)}; the no-label id is the size)")
    return label


def label_or_null(model: nn.Module, label: Tensor | None, batch: int, device) -> Tensor:
    """``label``, or every field's no-label id for ``batch`` rows when it is None."""
    if label is not None:
        return label.to(device)
    return torch.tensor(model.label_sizes, dtype=torch.long, device=device).unsqueeze(0).expand(batch, -1)


class IncrementalDecoder(Protocol):
    """Optional extension for causal backbones: left-to-right decoding with a cache.

    ``init_cache(batch_size, max_length)`` returns an opaque cache (a KV cache for a
    transformer, the conv + SSM state for Mamba) positioned at 0.
    ``decode_step(tokens [B], cache) -> logits [B, V]`` feeds one token per row at the
    cache's current position, advances the cache, and returns the logits for the *next*
    position. Feeding ``tokens[:, :n]`` one by one must give the same logits as
    ``forward`` on the whole prefix (within float tolerance); a test checks it.
    """

    def init_cache(self, batch_size: int, max_length: int) -> Any: ...

    def decode_step(self, tokens: Tensor, cache: Any) -> Tensor: ...


def supports_incremental_decoding(model: nn.Module) -> bool:
    return bool(getattr(model, "causal", False)) and callable(getattr(model, "init_cache", None)) and callable(
        getattr(model, "decode_step", None)
    )
