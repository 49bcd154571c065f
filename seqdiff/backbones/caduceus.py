r"""Caduceus (Schiff et al. 2024): reverse-complement (RC) aware BiMamba for DNA.

Write ``rc(x)_t = comp(x_{L-1-t})`` for token ids and ``R(h) = flip(h, dims=[L, C])``.

**Caduceus-PS** (parameter sharing) makes the network RC-*equivariant* by construction.
Hidden states have ``2d`` channels ``[a | b]``: ``a`` the forward strand, ``b`` the
reverse strand stored reversed (``R``), and every weight is shared by both strands:

- embedding: ``h_t = [E[x_t], J E[comp x_t]]`` (``J`` reverses channels), so ``H(rc x) = R(H(x))``;
- block: ``f`` (norm, BiMamba) acts as ``[f(a), R f(R b)]``, which commutes with ``R``;
- head: ``logits_t(v) = <W_v, a_t> + <W_{comp v}, J b_t>`` with ``W`` tied to ``E``, so
  ``logits(rc x)_{t, v} = logits(x)_{L-1-t, comp v}`` exactly.

Caduceus' released checkpoints all use the fused add+norm path, which swaps the two
halves of the residual stream at every block (the final norm does not); the result is
still exactly equivariant but a different function from the unfused code.
``swap_halves=True`` (default) reproduces it, so the function matches the published
models; False gives the unfused variant.

**Caduceus-PH** (post-hoc) is plain BiMamba trained with RC augmentation and, at
inference, "conjoined": ``½[logits(x)_{t,v} + logits(rc x)_{L-1-t, comp v}]``, which is
RC-equivariant by construction. Here the augmentation is done in the backbone (a
sequence is replaced by its RC with probability ``rc_augment`` during training and the
logits mapped back), which for a per-token loss is the same as augmenting the data.

Both need the vocabulary's complement map over ids (``VocabSpec.complement``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from seqdiff.backbones.base import Backbone, check_inputs, check_label
from seqdiff.backbones.bimamba import BiMamba, BiMambaMixer, TimeEmbedding, _mask, check_time, label_embedding
from seqdiff.backbones.mamba import RMSNorm, init_weights, padded_vocab
from seqdiff.backbones.presets import resolve
from seqdiff.vocab import VocabSpec, reverse_complement  # rc(x)_t = comp(x_{L-1-t}), used below

#: Published sizes (Caduceus / MDLM DNA / Genomic Benchmarks). Parameter counts hold with
#: :data:`PUBLISHED_VOCAB` (12 ids padded to 16, head tied): 470,702 / 1,934,592 / 7,725,312.
#: The only place they are written (``configs/backbone/caduceus_p{s,h}_d118.yaml`` name ``d118_l4``).
PRESETS: dict[str, dict[str, int]] = {
    "d118_l4": {"d_model": 118, "n_layers": 4},
    "d256_l4": {"d_model": 256, "n_layers": 4},
    "d256_l16": {"d_model": 256, "n_layers": 16},
}
#: The shape without a preset (BiMamba's defaults).
DEFAULT_SHAPE: dict[str, int] = {"d_model": 128, "n_layers": 4}

#: Caduceus' character tokenizer: [CLS] [SEP] [BOS] [MASK] [PAD] [RESERVED] [UNK] A C G T N.
PUBLISHED_VOCAB = {
    "vocab_size": 12,
    "pad_vocab_multiple": 8,
    "complement_map": (0, 1, 2, 3, 4, 5, 6, 10, 9, 8, 7, 11),
}


def complement_ids(vocab_size: int, padded: int, vocab: VocabSpec | None, complement_map: Sequence[int] | None, who: str) -> Tensor:
    """The complement permutation over all ``padded`` ids (padding rows map to themselves)."""
    comp = complement_map if complement_map is not None else (vocab.complement if vocab is not None else None)
    if comp is None:
        raise ValueError(
            f"{who}: needs a complement map over token ids for reverse-complement symmetry, but the "
            "vocabulary has none; give the domain a complement (e.g. complement: {A: T, C: G, G: C, T: A, N: N}) "
            "or pass complement_map"
        )
    comp = [int(c) for c in comp]
    if len(comp) != vocab_size:
        raise ValueError(f"{who}: complement map has {len(comp)} entries for vocab_size={vocab_size}")
    if any(not 0 <= c < vocab_size for c in comp) or any(comp[c] != i for i, c in enumerate(comp)):
        raise ValueError(f"{who}: the complement map must be an involution over ids 0..{vocab_size - 1}")
    return torch.tensor(comp + list(range(vocab_size, padded)), dtype=torch.long)


def flip_strand(h: Tensor) -> Tensor:
    """``R`` on one strand ``[B, L, d]``: reverse positions and channels."""
    return h.flip(1, 2)


def swap_halves(h: Tensor) -> Tensor:
    a, b = h.chunk(2, dim=-1)
    return torch.cat([b, a], dim=-1)


def rcps_norm(h: Tensor, norm: RMSNorm) -> Tensor:
    """``[N(a), J N(J b)]``: one norm weight serving both strands (norms are position-wise)."""
    a, b = h.chunk(2, dim=-1)
    return torch.cat([norm(a), norm(b.flip(-1)).flip(-1)], dim=-1)


def rcps_mix(mixer: nn.Module, h: Tensor, mask: Tensor | None) -> Tensor:
    """``[f(a), R f(R b)]``, both strands in one batch of ``2B``."""
    a, b = h.chunk(2, dim=-1)
    m = None if mask is None else torch.cat([mask, mask.flip(1)])
    fa, fb = mixer(torch.cat([a, flip_strand(b)]), m).chunk(2, dim=0)
    return torch.cat([fa, flip_strand(fb)], dim=-1)


class RCPSBlock(nn.Module):
    """Add -> RCPS RMSNorm -> RCPS BiMamba, optionally with the fused path's half swap."""

    def __init__(self, d_model: int, mixer: nn.Module, norm_eps: float, swap: bool, residual_in_fp32: bool) -> None:
        super().__init__()
        self.norm = RMSNorm(d_model, norm_eps)
        self.mixer = mixer
        self.swap, self.residual_in_fp32 = swap, residual_in_fp32

    def forward(self, h: Tensor, residual: Tensor | None, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        residual = h if residual is None else h + residual
        if self.residual_in_fp32:
            residual = residual.float()
        if self.swap:  # S commutes with R, so equivariance survives
            residual = swap_halves(residual)
        return rcps_mix(self.mixer, rcps_norm(residual.to(h.dtype), self.norm), mask), residual


class _Presets:
    @classmethod
    def from_preset(cls, preset: str, vocab_size: int, **kw):
        return cls(vocab_size, preset=preset, **kw)


class CaduceusPS(_Presets, Backbone):
    """RC-equivariant Caduceus (parameter sharing). Arguments as :class:`BiMamba`, plus:

    Args:
        vocab: the run's vocabulary; its ``complement`` map is required.
        complement_map: explicit ``comp[id]`` over ``vocab_size`` ids (overrides ``vocab``).
        swap_halves: reproduce the released checkpoints' fused-add-norm half swap.
        preset: a published size of :data:`PRESETS`; ``d_model`` / ``n_layers`` given (not
            None) override its numbers (None without a preset: :data:`DEFAULT_SHAPE`).
    """

    causal = False

    def __init__(
        self,
        vocab_size: int,
        vocab: VocabSpec | None = None,
        complement_map: Sequence[int] | None = None,
        d_model: int | None = None,
        n_layers: int | None = None,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        bidirectional: bool = True,
        bidirectional_strategy: str = "add",
        bidirectional_weight_tie: bool = True,
        swap_halves: bool = True,
        time_conditioning: bool = False,
        cond_dim: int = 128,
        norm_eps: float = 1e-5,
        pad_vocab_multiple: int = 1,
        residual_in_fp32: bool = True,
        preset: str | None = None,
        label_sizes: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        shape = resolve("CaduceusPS", PRESETS, preset, DEFAULT_SHAPE, d_model=d_model, n_layers=n_layers)
        d_model, n_layers = shape["d_model"], shape["n_layers"]
        self.vocab_size = vocab_size
        self.time_conditioning = time_conditioning
        V = padded_vocab(vocab_size, pad_vocab_multiple)
        self.register_buffer("comp", complement_ids(vocab_size, V, vocab, complement_map, "CaduceusPS"), persistent=False)
        self.embedding = nn.Embedding(V, d_model)  # also the LM head (tied, as published)
        self.time_embedding = TimeEmbedding(d_model, cond_dim) if time_conditioning else None
        mk = dict(d_state=d_state, d_conv=d_conv, expand=expand, dt_rank=dt_rank)
        self.layers = nn.ModuleList(
            RCPSBlock(
                d_model,
                BiMambaMixer(d_model, bidirectional, bidirectional_strategy, bidirectional_weight_tie, **mk),
                norm_eps,
                swap_halves,
                residual_in_fp32,
            )
            for _ in range(n_layers)
        )
        self.norm_f = RMSNorm(d_model, norm_eps)
        init_weights(self, n_layers)
        if self.time_embedding is not None:
            self.time_embedding.reset()
        # after init_weights, zero (BiMamba's LabelEmbedding): an unlabelled network is untouched
        self.label_embedding = label_embedding("CaduceusPS", d_model, label_sizes)
        self.label_sizes = self.label_embedding.sizes if self.label_embedding is not None else ()

    def features(self, x_t: Tensor, t: Tensor | None, valid: Tensor | None, label: Tensor | None = None) -> Tensor:
        """``[B, L, 2d]``: forward strand, then the reverse strand stored reversed. The time and
        label vectors enter both strands as ``[c, J c]``: constant over L and J-symmetric, so the
        network stays RC-equivariant (a label is strand-free)."""
        check_inputs(x_t, valid)
        check_time("CaduceusPS", self.time_embedding, t)
        mask = _mask(valid)
        h = torch.cat([self.embedding(x_t), self.embedding(self.comp[x_t]).flip(-1)], dim=-1)
        if self.time_embedding is not None:
            c = self.time_embedding(t.to(h.device)).to(h.dtype)
            h = h + torch.cat([c, c.flip(-1)], dim=-1).unsqueeze(1)  # R-invariant: constant over L, J-symmetric
        if self.label_embedding is not None:
            c = self.label_embedding(label, x_t.shape[0], h.device).to(h.dtype)
            h = h + torch.cat([c, c.flip(-1)], dim=-1).unsqueeze(1)
        residual = None
        for layer in self.layers:
            h, residual = layer(h, residual, mask)
        return rcps_norm((h + residual).to(h.dtype), self.norm_f)

    def head(self, h: Tensor) -> Tensor:
        a, b = h.chunk(2, dim=-1)
        W = self.embedding.weight
        logits = a @ W.t() + b.flip(-1) @ W[self.comp].t()
        return logits[..., : self.vocab_size]

    def invariant_features(self, x_t: Tensor, valid: Tensor | None = None) -> Tensor:
        """``(a + R(b)) / 2`` per strand position: RC-invariant features for downstream heads."""
        a, b = self.features(x_t, None, valid).chunk(2, dim=-1)
        return 0.5 * (a + b.flip(-1))


CONJOIN = ("eval", "always", "never")


class CaduceusPH(_Presets, BiMamba):
    """BiMamba with RC augmentation in training and RC-conjoined logits at inference.

    Args (besides :class:`BiMamba`'s):
        vocab / complement_map: the complement map over ids (required).
        rc_augment: probability, per training sequence, of running on its reverse
            complement (Caduceus-PH used 0.5).
        conjoin: when to average with the RC pass: ``"eval"`` (in eval mode, the
            published recipe), ``"always"`` (also in training), or ``"never"``.
        preset: a published size of :data:`PRESETS`, as for :class:`CaduceusPS`.
    """

    def __init__(
        self,
        vocab_size: int,
        vocab: VocabSpec | None = None,
        complement_map: Sequence[int] | None = None,
        rc_augment: float = 0.5,
        conjoin: str = "eval",
        pad_vocab_multiple: int = 1,
        preset: str | None = None,
        label_sizes: Sequence[int] | None = None,
        **kw,
    ) -> None:
        kw.update(resolve("CaduceusPH", PRESETS, preset, DEFAULT_SHAPE, d_model=kw.get("d_model"), n_layers=kw.get("n_layers")))
        if conjoin not in CONJOIN:
            raise ValueError(f"CaduceusPH: conjoin must be one of {CONJOIN}, got {conjoin!r}")
        if not 0.0 <= rc_augment <= 1.0:
            raise ValueError(f"CaduceusPH: rc_augment is a probability, got {rc_augment}")
        super().__init__(vocab_size, pad_vocab_multiple=pad_vocab_multiple, label_sizes=label_sizes, **kw)
        V = padded_vocab(vocab_size, pad_vocab_multiple)
        self.register_buffer("comp", complement_ids(vocab_size, V, vocab, complement_map, "CaduceusPH"), persistent=False)
        self.rc_augment, self.conjoin = rc_augment, conjoin

    def forward(self, x_t: Tensor, t: Tensor | None = None, valid: Tensor | None = None, output_mask: Tensor | None = None,
                label: Tensor | None = None) -> Tensor:
        check_inputs(x_t, valid)
        lab = {} if label is None else {"label": check_label(self, label, x_t)}  # strand-free: both passes
        comp = self.comp[: self.vocab_size]
        if self.conjoin == "always" or (self.conjoin == "eval" and not self.training):
            B = x_t.shape[0]
            m = None if valid is None else torch.cat([valid, valid.flip(1)])
            lab2 = {} if label is None else {"label": torch.cat([label, label])}
            h = self.features(torch.cat([x_t, reverse_complement(x_t, self.comp)]), _twice(t), m, **lab2)
            hf, hr = h[:B], h[B:].flip(1)
            if output_mask is not None:
                hf, hr = hf[output_mask], hr[output_mask]
            return 0.5 * (self.head(hf) + self.head(hr)[..., comp])
        if not (self.training and self.rc_augment > 0):
            return super().forward(x_t, t, valid, output_mask, **lab)
        flip = torch.rand(x_t.shape[0], device=x_t.device) < self.rc_augment
        x = torch.where(flip[:, None], reverse_complement(x_t, self.comp), x_t)
        m = None if valid is None else torch.where(flip[:, None], valid.flip(1), valid)
        h = self.features(x, t, m, **lab)
        h = torch.where(flip[:, None, None], h.flip(1), h)  # back to the input's positions
        rows = flip[:, None].expand_as(x_t)
        if output_mask is not None:
            h, rows = h[output_mask], rows[output_mask]
        logits = self.head(h)
        return torch.where(rows.unsqueeze(-1), logits[..., comp], logits)


def _twice(t: Tensor | None) -> Tensor | None:
    return None if t is None else torch.cat([t, t])
