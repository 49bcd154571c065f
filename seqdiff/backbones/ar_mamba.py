"""Unidirectional Mamba language model: the autoregressive baseline of MDLM's DNA table.

Embedding, Mamba blocks (Add -> RMSNorm -> Mamba), final add + norm, LM head tied to
the embedding -- mamba-ssm's ``MambaLMHeadModel``. At d=128, 4 layers and Caduceus'
vocabulary (12 ids padded to 16) it has 468,608 parameters, the published "Mamba NTP
d_model-128 n_layer-4". Every op is causal (left-padded conv, forward scan), so
position ``i`` never sees tokens after ``i``.

Incremental decoding keeps, per layer, the last ``d_conv`` conv inputs and the SSM
state ``[B, E, N]``: O(1) work and memory per generated token, whatever the length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqdiff.backbones.bimamba import BiMamba
from seqdiff.backbones.mamba import Mamba


@dataclass
class MambaCache:
    """Recurrent state of every layer after ``position`` tokens."""

    conv: list[Tensor]
    ssm: list[Tensor]
    max_length: int
    position: int = 0


class ARMamba(BiMamba):
    """Causal Mamba LM obeying the backbone contract and the incremental-decoding protocol.

    Args:
        vocab_size: number of token ids.
        d_model, n_layers: width and depth (MDLM's DNA baseline: 128, 4).
        d_state, d_conv, expand, dt_rank: Mamba mixer shape.
        time_conditioning: must be False (an AR model is not time-conditioned).
        norm_eps, pad_vocab_multiple, tie_embeddings, residual_in_fp32: as :class:`BiMamba`.
    """

    causal = True
    time_conditioning = False

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,
        n_layers: int = 4,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        time_conditioning: bool = False,
        norm_eps: float = 1e-5,
        pad_vocab_multiple: int = 1,
        tie_embeddings: bool = True,
        residual_in_fp32: bool = True,
    ) -> None:
        if time_conditioning:
            raise ValueError("ARMamba: a causal (autoregressive) model takes no time conditioning")
        super().__init__(
            vocab_size, d_model, n_layers, d_state, d_conv, expand, dt_rank, bidirectional=False,
            norm_eps=norm_eps, pad_vocab_multiple=pad_vocab_multiple, tie_embeddings=tie_embeddings,
            residual_in_fp32=residual_in_fp32,
        )

    @staticmethod
    def _mixer(d_model: int, mix: dict, mk: dict) -> nn.Module:
        return Mamba(d_model, **mk)  # the mixer itself, so parameter names are mamba-ssm's

    # ------------------------------------------------------------ incremental decoding
    def init_cache(self, batch_size: int, max_length: int) -> MambaCache:
        if batch_size < 1 or max_length < 1:
            raise ValueError(f"ARMamba: init_cache needs batch_size, max_length >= 1, got {batch_size}, {max_length}")
        w = self.embedding.weight
        states = [layer.mixer.allocate_state(batch_size, w.device, w.dtype) for layer in self.layers]
        return MambaCache(conv=[c for c, _ in states], ssm=[s for _, s in states], max_length=max_length)

    @torch.no_grad()
    def decode_step(self, tokens: Tensor, cache: MambaCache) -> Tensor:
        """Feed ``tokens [B]`` at ``cache.position``; logits ``[B, V]`` for the next position."""
        if tokens.dim() != 1 or tokens.shape[0] != cache.ssm[0].shape[0]:
            raise ValueError(f"ARMamba: decode_step takes tokens [{cache.ssm[0].shape[0]}], got {tuple(tokens.shape)}")
        if cache.position >= cache.max_length:
            raise ValueError(f"ARMamba: cache is full (max_length={cache.max_length})")
        h = self.embedding(tokens)
        residual = None
        for layer, conv, ssm in zip(self.layers, cache.conv, cache.ssm):
            residual = layer.add(h, residual)
            h = layer.mixer.step(layer.norm(residual.to(h.dtype)), conv, ssm)
        cache.position += 1
        return self.head(self.norm_f((h + residual).to(h.dtype)))
