r"""BiMamba (Schiff et al. 2024, Caduceus §3.1): a Mamba mixer run both ways and added.

.. math::
    \mathrm{BiMamba}(h) = M_f(h) + \mathrm{flip}_L\big(M_r(\mathrm{flip}_L(h))\big)

With ``bidirectional_weight_tie`` (Caduceus' default) the two directions share
``in_proj`` and ``out_proj``; conv, ``x_proj``, ``dt_proj``, ``A_log`` and ``D`` stay
separate. For that default ("add" + tie) both directions go through *one* scan: the
scan is per channel, so the forward and the flipped reverse stream are stacked along
channels with ``B``/``C`` as two groups, and ``out_proj`` (linear, shared) is applied
once to the sum. Parameter names match Caduceus' ``BiMambaWrapper`` (``mamba_fwd``,
``mamba_rev``).

The :class:`BiMamba` backbone: embedding, Mamba-style residual blocks with RMSNorm,
final add + norm, LM head tied to the embedding (as in Caduceus' masked-LM model).
``valid``: padded positions are identity SSM steps and read as zeros by the
conv (see :mod:`seqdiff.backbones.mamba`), so with padding at either end the real
positions get exactly the logits of the unpadded sequence.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from seqdiff.backbones.base import Backbone, check_inputs
from seqdiff.backbones.dit import TimestepEmbedder
from seqdiff.backbones.mamba import Mamba, MambaBlock, RMSNorm, causal_conv_silu, init_weights, padded_vocab, scan

STRATEGIES = ("add", "ew_multiply")


class BiMambaMixer(nn.Module):
    """Caduceus' ``BiMambaWrapper``: ``[B, L, d] -> [B, L, d]``."""

    def __init__(
        self,
        d_model: int,
        bidirectional: bool = True,
        strategy: str = "add",
        weight_tie: bool = True,
        **mamba_kw,
    ) -> None:
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(f"BiMamba: bidirectional_strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.bidirectional, self.strategy, self.weight_tie = bidirectional, strategy, weight_tie
        self.mamba_fwd = Mamba(d_model, **mamba_kw)
        self.mamba_rev = None
        if bidirectional:
            self.mamba_rev = Mamba(d_model, **mamba_kw)
            if weight_tie:
                for name in ("in_proj", "out_proj"):
                    src, dst = getattr(self.mamba_fwd, name), getattr(self.mamba_rev, name)
                    dst.weight = src.weight
                    dst.bias = src.bias

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.mamba_rev is None:
            return self.mamba_fwd(h, mask)
        if self.weight_tie and self.strategy == "add":
            return self._fused(h, mask)
        rmask = None if mask is None else mask.flip(1)
        rev = self.mamba_rev(h.flip(1), rmask).flip(1)
        fwd = self.mamba_fwd(h, mask)
        return fwd + rev if self.strategy == "add" else fwd * rev

    def _fused(self, h: Tensor, mask: Tensor | None) -> Tensor:
        f, r = self.mamba_fwd, self.mamba_rev
        x, z = f.project_in(h, mask)  # shared in_proj is position-wise: flip its output, not h
        x = torch.cat([x, x.flip(-1)], dim=1)
        z = torch.cat([z, z.flip(-1)], dim=1)
        weight = torch.cat([f.conv_weight(), r.conv_weight()])
        bias = None if f.conv1d.bias is None else torch.cat([f.conv1d.bias, r.conv1d.bias])
        u = causal_conv_silu(x, weight, bias)  # depthwise: channel stacking is exact
        uf, ur = u.chunk(2, dim=1)
        dtf, Bf, Cf = f.ssm_inputs(uf)
        dtr, Br, Cr = r.ssm_inputs(ur)
        m = None
        if mask is not None:
            E = f.d_inner
            m = torch.cat([mask.unsqueeze(1).expand(-1, E, -1), mask.flip(1).unsqueeze(1).expand(-1, E, -1)], dim=1)
        y = scan(
            u,
            torch.cat([dtf, dtr], dim=1),
            torch.cat([f.A(), r.A()]),
            torch.stack([Bf, Br], dim=1),  # groups: channels [0, E) read B_f, [E, 2E) read B_r
            torch.stack([Cf, Cr], dim=1),
            torch.cat([f.D, r.D]).float(),
            z,
            torch.cat([f.dt_proj.bias, r.dt_proj.bias]),
            m,
        )
        yf, yr = y.chunk(2, dim=1)
        out = F.linear(rearrange(yf + yr.flip(-1), "b e l -> b l e"), f.out_proj.weight)
        return out if f.out_proj.bias is None else out + 2 * f.out_proj.bias


class TimeEmbedding(nn.Module):
    """A learned embedding of the noise level added to the input hidden states.

    DiT's sinusoidal MLP, then a zero-initialised projection to ``d_model``: training
    starts from the unconditioned network and learns how much ``t`` matters.
    """

    def __init__(self, d_model: int, cond_dim: int) -> None:
        super().__init__()
        self.t_embed = TimestepEmbedder(cond_dim)
        self.proj = nn.Linear(cond_dim, d_model)

    def reset(self) -> None:
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, t: Tensor) -> Tensor:
        return self.proj(F.silu(self.t_embed(t)))


class LabelEmbedding(nn.Module):
    """One learned table per label field (``K_f`` names + "no label"), summed: a vector per
    sequence added to every position's input state (constant over the sequence, so a label
    is strand-free). Zero-initialised, so a labelled network starts as the unlabelled one."""

    def __init__(self, d_model: int, sizes: Sequence[int]) -> None:
        super().__init__()
        self.sizes = tuple(int(k) for k in sizes)
        self.tables = nn.ModuleList(nn.Embedding(k + 1, d_model) for k in self.sizes)
        for table in self.tables:
            nn.init.zeros_(table.weight)

    def forward(self, label: Tensor | None, batch: int, device) -> Tensor:
        if label is None:  # no label in every field
            label = torch.tensor(self.sizes, device=device).unsqueeze(0).expand(batch, -1)
        return sum(table(label[:, f].to(device)) for f, table in enumerate(self.tables))


def label_embedding(name: str, d_model: int, label_sizes: Sequence[int] | None) -> LabelEmbedding | None:
    sizes = tuple(int(k) for k in (label_sizes or ()))
    if any(k < 1 for k in sizes):
        raise ValueError(f"{name}: every label field needs at least one name, got label_sizes={list(sizes)}")
    return LabelEmbedding(d_model, sizes) if sizes else None


def check_time(name: str, module: TimeEmbedding | None, t: Tensor | None) -> None:
    if module is not None and t is None:
        raise ValueError(f"{name}: built with time_conditioning=True but called without t")


class BiMamba(Backbone):
    """Bidirectional Mamba LM obeying the backbone contract.

    Args:
        vocab_size: number of token ids (the domain's ``VocabSpec.size``).
        d_model, n_layers: width and depth; 118/4 and 256/4 are the published 1k-bp sizes.
        d_state, d_conv, expand, dt_rank: Mamba mixer shape (16, 4, 2, ceil(d/16)).
        bidirectional, bidirectional_strategy, bidirectional_weight_tie: as Caduceus.
        time_conditioning: add an embedding of the masking rate to the input states.
        cond_dim: width of that embedding.
        label_sizes: names per label field (a labelled run): their summed embeddings
            (:class:`LabelEmbedding`) are added to the input states; None: no labels.
        norm_eps: RMSNorm epsilon.
        pad_vocab_multiple: embedding rows rounded up to a multiple (Caduceus: 8);
            logits are returned for the first ``vocab_size`` ids only.
        tie_embeddings: LM head weight = embedding table (Caduceus' default).
        residual_in_fp32: keep the residual stream in fp32 under autocast.
    """

    causal = False

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,
        n_layers: int = 4,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        bidirectional: bool = True,
        bidirectional_strategy: str = "add",
        bidirectional_weight_tie: bool = True,
        time_conditioning: bool = False,
        cond_dim: int = 128,
        norm_eps: float = 1e-5,
        pad_vocab_multiple: int = 1,
        tie_embeddings: bool = True,
        residual_in_fp32: bool = True,
        label_sizes: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.time_conditioning = time_conditioning
        V = padded_vocab(vocab_size, pad_vocab_multiple)
        self.embedding = nn.Embedding(V, d_model)
        self.time_embedding = TimeEmbedding(d_model, cond_dim) if time_conditioning else None
        mk = dict(d_state=d_state, d_conv=d_conv, expand=expand, dt_rank=dt_rank)
        mix = dict(bidirectional=bidirectional, strategy=bidirectional_strategy, weight_tie=bidirectional_weight_tie)
        self.layers = nn.ModuleList(
            MambaBlock(d_model, self._mixer(d_model, mix, mk), norm_eps, residual_in_fp32) for _ in range(n_layers)
        )
        self.norm_f = RMSNorm(d_model, norm_eps)
        self.lm_head = nn.Linear(d_model, V, bias=False)
        init_weights(self, n_layers)
        if self.time_embedding is not None:
            self.time_embedding.reset()
        if tie_embeddings:
            self.lm_head.weight = self.embedding.weight
        # after init_weights, zero: an unlabelled network's initialisation is untouched
        self.label_embedding = label_embedding(type(self).__name__, d_model, label_sizes)
        self.label_sizes = self.label_embedding.sizes if self.label_embedding is not None else ()

    @staticmethod
    def _mixer(d_model: int, mix: dict, mk: dict) -> nn.Module:
        """One layer's sequence mixer (:class:`ARMamba` swaps in a single-direction Mamba)."""
        return BiMambaMixer(d_model, mix["bidirectional"], mix["strategy"], mix["weight_tie"], **mk)

    def features(self, x_t: Tensor, t: Tensor | None, valid: Tensor | None, label: Tensor | None = None) -> Tensor:
        check_inputs(x_t, valid)
        check_time(type(self).__name__, self.time_embedding, t)
        mask = _mask(valid)
        h = self.embedding(x_t)
        if self.time_embedding is not None:
            h = h + self.time_embedding(t.to(h.device)).unsqueeze(1).to(h.dtype)
        if self.label_embedding is not None:
            h = h + self.label_embedding(label, x_t.shape[0], h.device).unsqueeze(1).to(h.dtype)
        residual = None
        for layer in self.layers:
            h, residual = layer(h, residual, mask)
        return self.norm_f((h + residual).to(h.dtype))

    def head(self, h: Tensor) -> Tensor:
        return self.lm_head(h)[..., : self.vocab_size]


def _mask(valid: Tensor | None) -> Tensor | None:
    """None when every position is real: the mixers then take their unmasked fast path."""
    if valid is None:
        return None
    mask = valid.bool()
    return None if bool(mask.all()) else mask
