r"""DiT-style transformer (Peebles & Xie 2023, as adapted by SEDD/MDLM) on PyTorch SDPA.

Pre-LayerNorm blocks with rotary attention and a GELU MLP. With time conditioning the
norms are adaLN-Zero modulated by an embedding of the noise level (MDLM keeps that
machinery but feeds sigma=0; we build plain affine LayerNorms when it is off, which is
the same function class with fewer parameters). With ``label_sizes`` (a labelled run,
:mod:`seqdiff.labels`) each label field has a learned embedding table of ``K_f + 1`` rows
(the last: "no label"), summed into the conditioning vector :math:`c = e_t + \sum_f
E_f[y_f]` that drives adaLN-Zero (DiT's class conditioning); a DiT that is not
time-conditioned gets adaLN from the labels alone. Without labels nothing of this is built,
so an unlabelled DiT has exactly the parameters, initialisation and outputs it had before
labels existed. ``causal=True`` turns the same network
into the autoregressive baseline. No flash-attn import: SDPA picks the best kernel on
every device.

``conv_kernel=k > 0`` (off by default: MDLM's DiT has none) adds a depthwise convolution
over the sequence to every block, read from the same normed input as the attention and
added to the residual beside it (see :class:`LocalConv`). It gives each block the local
n-gram features that attention learns slowly from a masked-diffusion loss: on the
quickstart's order-3 Markov source it is what lets a small DiT get close to the entropy
rate on a CPU budget (``configs/backbone/dit_conv.yaml``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from seqdiff.backbones.base import Backbone, check_inputs, label_or_null
from seqdiff.backbones.presets import resolve
from seqdiff.backbones.rotary import Rotary, apply_rotary

#: MDLM's model sizes (``configs/model/{tiny,small,medium}.yaml`` there); the only place they
#: are written (``configs/backbone/dit_{tiny,small,medium}.yaml`` name them).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 512, "n_layers": 8, "n_heads": 8},
    "small": {"d_model": 768, "n_layers": 12, "n_heads": 12},
    "medium": {"d_model": 1024, "n_layers": 24, "n_heads": 16},
}
#: The shape without a preset: CPU-sized (the quickstart).
DEFAULT_SHAPE: dict[str, int] = {"d_model": 128, "n_layers": 4, "n_heads": 4}


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of the noise level followed by a 2-layer MLP (GLIDE/DiT)."""

    def __init__(self, cond_dim: int, freq_dim: int = 256, max_period: float = 10_000.0) -> None:
        super().__init__()
        half = freq_dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(freq_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))

    def forward(self, t: Tensor) -> Tensor:
        # t is a masking rate in [0, 1]; scale so the low frequencies resolve it.
        args = (1000.0 * t.float()).unsqueeze(1) * self.freqs.unsqueeze(0)
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1.0 + scale.unsqueeze(1)) + shift.unsqueeze(1)


#: MLP activations: PyTorch's exact erf GELU (ours) or the tanh approximation (MDLM/SEDD).
GELUS = ("erf", "tanh")


class LocalConv(nn.Module):
    r"""Depthwise convolution along the sequence, one filter of width ``k`` per channel.

    .. math:: y_{i,c} = b_c + \sum_{j=0}^{k-1} w_{c,j}\, x_{i+j-o,\,c}

    with :math:`x` zero outside the sequence and at padding (so junk in padded positions
    never reaches a real token, and a padded row gives what the unpadded row gives).
    Bidirectional: ``o = (k - 1) // 2`` (centred; ``k - 1 - o`` positions on the right).
    Causal: ``o = k - 1``, so position ``i`` reads ``i - k + 1 .. i`` only, and one decoding
    step needs just the last ``k - 1`` inputs (:meth:`step`). The filters start as the
    DiT's other matrices, N(0, 0.02) (:meth:`DiT._init_weights`), the bias at zero.
    """

    def __init__(self, d_model: int, kernel: int, causal: bool) -> None:
        super().__init__()
        self.kernel = kernel
        self.left = kernel - 1 if causal else (kernel - 1) // 2
        self.weight = nn.Parameter(torch.zeros(kernel, d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        """``x [B, L, D]``; ``keep [B, L, 1]`` (1 at real tokens, 0 at padding) or None."""
        if keep is not None:
            x = x * keep
        k, D = self.weight.shape
        xp = F.pad(x, (0, 0, self.left, k - 1 - self.left)).unsqueeze(1)  # [B, 1, L + k - 1, D]
        # As a [B, D, 1, L] (channels-last) depthwise conv2d: forward + backward about 2x faster
        # on CPU than a grouped Conv1d on [B, D, L] or k shifted multiply-adds, in our timings.
        y = F.conv2d(xp.permute(0, 3, 1, 2), self.weight.t().reshape(D, 1, 1, k), self.bias, groups=D)
        return y.permute(0, 2, 3, 1).squeeze(1)

    def step(self, x: Tensor, state: Tensor) -> Tensor:
        """Causal decoding of one position: ``x [B, 1, D]``, ``state [B, k-1, D]`` the
        previous ``k - 1`` inputs (zeros before the start), updated in place."""
        window = torch.cat([state, x], dim=1)  # [B, k, D]: positions i-k+1 .. i
        state.copy_(window[:, 1:])
        return self.bias + torch.einsum("bkd,kd->bd", window, self.weight).unsqueeze(1)


class DiTBlock(nn.Module):
    def __init__(
        self, d_model: int, n_heads: int, mlp_ratio: int, dropout: float, cond_dim: int | None, gelu: str = "erf",
        conv_kernel: int = 0, causal: bool = False,
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        affine = cond_dim is None
        self.norm1 = nn.LayerNorm(d_model, elementwise_affine=affine)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        self.norm2 = nn.LayerNorm(d_model, elementwise_affine=affine)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, mlp_ratio * d_model),
            # exact erf GELU: 2-3x faster than the tanh form on CPU (vectorised erf); MDLM's
            # checkpoints were trained with the tanh form, so their import asks for it
            nn.GELU(approximate="none" if gelu == "erf" else "tanh"),
            nn.Linear(mlp_ratio * d_model, d_model),
        )
        self.conv = LocalConv(d_model, conv_kernel, causal) if conv_kernel > 0 else None
        self.adaLN = None
        if cond_dim is not None:
            self.adaLN = nn.Linear(cond_dim, 6 * d_model)
            nn.init.zeros_(self.adaLN.weight)
            nn.init.zeros_(self.adaLN.bias)

    def attention(
        self, x: Tensor, rope: Tensor, attn_mask: Tensor | None, causal: bool, kv: "KVCache | None" = None, layer: int = 0
    ) -> Tensor:
        qkv = rearrange(self.qkv(x), "b l (three h d) -> three b h l d", three=3, h=self.n_heads)
        qk, v = qkv.split([2, 1])  # split (not indexing): its backward is a cat, not zeros + copy
        q, k = apply_rotary(qk, rope)  # one rotary op for q and k together
        v = v.squeeze(0)
        if kv is not None:  # one new token per row: it may attend to every cached position
            k, v = kv.append(layer, k, v)
            causal = False
        drop = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=drop, is_causal=causal)
        return self.proj(rearrange(out, "b h l d -> b l (h d)"))

    def mix(
        self, x: Tensor, rope: Tensor, attn_mask: Tensor | None, causal: bool, keep: Tensor | None,
        kv: "KVCache | None", layer: int,
    ) -> Tensor:
        """Attention (plus the local convolution, when built with one) of the normed ``x``."""
        h = self.attention(x, rope, attn_mask, causal, kv, layer)
        if self.conv is None:
            return h
        return h + (self.conv(x, keep) if kv is None else self.conv.step(x, kv.conv[layer]))

    def forward(
        self, x: Tensor, rope: Tensor, attn_mask: Tensor | None, causal: bool, c: Tensor | None,
        kv: "KVCache | None" = None, layer: int = 0, keep: Tensor | None = None,
    ) -> Tensor:
        if self.adaLN is None:
            h = self.mix(self.norm1(x), rope, attn_mask, causal, keep, kv, layer)
            x = x + F.dropout(h, self.dropout, self.training)
            return x + F.dropout(self.mlp(self.norm2(x)), self.dropout, self.training)
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN(c).chunk(6, dim=-1)
        h = self.mix(_modulate(self.norm1(x), shift1, scale1), rope, attn_mask, causal, keep, kv, layer)
        x = x + gate1.unsqueeze(1) * F.dropout(h, self.dropout, self.training)
        h = self.mlp(_modulate(self.norm2(x), shift2, scale2))
        return x + gate2.unsqueeze(1) * F.dropout(h, self.dropout, self.training)


class KVCache:
    """Keys and values of every layer for left-to-right decoding (``causal=True`` only),
    and with ``conv_kernel=k`` the last ``k - 1`` inputs of each layer's convolution."""

    def __init__(
        self, n_layers: int, batch: int, heads: int, max_length: int, head_dim: int, device, dtype, conv_kernel: int = 0
    ) -> None:
        shape = (batch, heads, max_length, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        conv_shape = (batch, max(conv_kernel - 1, 0), heads * head_dim)
        self.conv = [torch.zeros(conv_shape, device=device, dtype=dtype) for _ in range(n_layers)] if conv_kernel > 0 else []
        self.pos = 0
        self.max_length = max_length

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        n = k.shape[2]
        if self.pos + n > self.max_length:
            raise ValueError(f"KVCache: position {self.pos + n} exceeds max_length {self.max_length}")
        self.k[layer][:, :, self.pos : self.pos + n] = k
        self.v[layer][:, :, self.pos : self.pos + n] = v
        end = self.pos + n
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


class DiT(Backbone):
    """Bidirectional (or causal) rotary transformer obeying the backbone contract.

    Args:
        vocab_size: output/input vocabulary size (from the domain's ``VocabSpec``).
        d_model, n_layers, n_heads: shape; None: from ``preset``, else :data:`DEFAULT_SHAPE`.
        mlp_ratio: MLP width over ``d_model``.
        dropout: residual and attention dropout (MDLM: 0.1; 0 for short CPU runs).
        time_conditioning: build adaLN-Zero modulation from the noise level.
        cond_dim: width of the noise-level embedding.
        causal: left-to-right attention (the AR baseline).
        rope_base: rotary base frequency.
        gelu: MLP activation, ``erf`` (exact) or ``tanh`` (the approximation MDLM trained with).
        rope_angles: rotary table arithmetic, ``float64`` or ``float32`` (MDLM's; see
            :mod:`seqdiff.backbones.rotary`).
        preset: a named size of :data:`PRESETS` (MDLM's ``tiny``, ``small``, ``medium``); the
            shape arguments given (not None) override its numbers (:mod:`seqdiff.backbones.presets`).
        conv_kernel: width of a depthwise convolution beside each block's attention
            (:class:`LocalConv`; causal when ``causal``); 0 (default, MDLM's DiT) for none.
        label_sizes: names per label field (a labelled run passes them; see the module
            docstring); None or empty: no labels.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int | None = None,
        n_layers: int | None = None,
        n_heads: int | None = None,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        time_conditioning: bool = False,
        cond_dim: int = 128,
        causal: bool = False,
        rope_base: float = 10_000.0,
        gelu: str = "erf",
        rope_angles: str = "float64",
        conv_kernel: int = 0,
        preset: str | None = None,
        label_sizes: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        super().__init__()
        shape = resolve("DiT", PRESETS, preset, DEFAULT_SHAPE, d_model=d_model, n_layers=n_layers, n_heads=n_heads)
        d_model, n_layers, n_heads = shape["d_model"], shape["n_layers"], shape["n_heads"]
        if gelu not in GELUS:
            raise ValueError(f"DiT: gelu must be one of {GELUS}, got {gelu!r}")
        if conv_kernel < 0:
            raise ValueError(f"DiT: conv_kernel must be >= 0 (0: no convolution), got {conv_kernel}")
        if d_model % n_heads:
            raise ValueError(f"DiT: d_model={d_model} is not divisible by n_heads={n_heads}")
        if causal and time_conditioning:
            raise ValueError("DiT: a causal (autoregressive) model takes no time conditioning")
        label_sizes = tuple(int(k) for k in (label_sizes or ()))
        if any(k < 1 for k in label_sizes):
            raise ValueError(f"DiT: every label field needs at least one name, got label_sizes={list(label_sizes)}")
        if causal and label_sizes:
            raise ValueError("DiT: a causal (autoregressive) model takes no labels")
        self.vocab_size = vocab_size
        self.causal = causal
        self.time_conditioning = time_conditioning
        self.label_sizes = label_sizes
        cdim = cond_dim if time_conditioning or label_sizes else None
        self.embed = nn.Embedding(vocab_size, d_model)
        self.rotary = Rotary(d_model // n_heads, base=rope_base, angles=rope_angles)
        self.t_embed = TimestepEmbedder(cond_dim) if time_conditioning else None
        self.conv_kernel = conv_kernel
        self.blocks = nn.ModuleList(
            DiTBlock(d_model, n_heads, mlp_ratio, dropout, cdim, gelu, conv_kernel, causal) for _ in range(n_layers)
        )
        self.norm_out = nn.LayerNorm(d_model, elementwise_affine=cdim is None)
        self.adaLN_out = None
        if cdim is not None:
            self.adaLN_out = nn.Linear(cdim, 2 * d_model)
            nn.init.zeros_(self.adaLN_out.weight)
            nn.init.zeros_(self.adaLN_out.bias)
        self.out = nn.Linear(d_model, vocab_size)
        # one table per field, K_f names + "no label" (built only for a labelled run)
        self.label_embed = nn.ModuleList(nn.Embedding(k + 1, cond_dim) for k in label_sizes) if label_sizes else None
        self._init_weights(n_layers)

    @classmethod
    def from_preset(cls, preset: str, vocab_size: int, **kw) -> "DiT":
        return cls(vocab_size, preset=preset, **kw)

    def _init_weights(self, n_layers: int) -> None:
        # GPT-2 style: N(0, 0.02), residual projections scaled by 1/sqrt(2 * depth) so the
        # residual stream does not grow with depth; zero output head => uniform start.
        std = 0.02
        for name, p in self.named_parameters():
            if "adaLN" in name or "norm" in name or "t_embed" in name:
                continue
            if p.dim() == 2:
                scale = std / math.sqrt(2 * n_layers) if name.endswith(("proj.weight", "mlp.2.weight")) else std
                nn.init.normal_(p, 0.0, scale)
            else:
                nn.init.zeros_(p)
        nn.init.zeros_(self.out.weight)

    def features(self, x_t: Tensor, t: Tensor | None, valid: Tensor | None, label: Tensor | None = None) -> Tensor:
        check_inputs(x_t, valid)
        B, L = x_t.shape
        x = self.embed(x_t)
        rope = self.rotary.table(L, x.device)
        c = None
        if self.t_embed is not None:
            if t is None:
                raise ValueError("DiT: built with time_conditioning=True but called without t")
            c = self.t_embed(t.to(x.device))
        if self.label_embed is not None:  # c = e_t + sum_f E_f[y_f] (None: no label in every field)
            y = label_or_null(self, label, B, x.device)
            e = sum(table(y[:, f]) for f, table in enumerate(self.label_embed))
            c = e if c is None else c + e
        elif label is not None:
            raise ValueError("DiT: built without labels (label_sizes) but given a label")
        if c is not None:
            c = F.silu(c)
        attn_mask, causal = self._sdpa_mask(valid, L)
        keep = None
        if self.conv_kernel and attn_mask is not None:  # padding is zero for the convolutions
            keep = valid.to(x.dtype).unsqueeze(-1)
        for block in self.blocks:
            x = block(x, rope, attn_mask, causal, c, keep=keep)
        x = self.norm_out(x)
        if self.adaLN_out is not None:
            shift, scale = self.adaLN_out(c).chunk(2, dim=-1)
            x = _modulate(x, shift, scale)
        return x

    def head(self, h: Tensor) -> Tensor:
        return self.out(h)

    # ------------------------------------------------------------------ incremental decoding
    def init_cache(self, batch_size: int, max_length: int) -> KVCache:
        if not self.causal:
            raise ValueError("DiT: a KV cache needs causal=True")
        p = self.out.weight
        heads = self.blocks[0].n_heads
        return KVCache(
            len(self.blocks), batch_size, heads, max_length, self.embed.embedding_dim // heads, p.device, p.dtype,
            self.conv_kernel,
        )

    def decode_step(self, tokens: Tensor, cache: KVCache) -> Tensor:
        """Feed ``tokens [B]`` at ``cache.pos``; logits ``[B, V]`` for position ``pos + 1``."""
        x = self.embed(tokens.unsqueeze(1))
        rope = self.rotary.table(cache.pos + 1, x.device)[cache.pos : cache.pos + 1]
        for i, block in enumerate(self.blocks):
            x = block(x, rope, None, False, None, cache, i)
        cache.pos += 1
        return self.head(self.norm_out(x))[:, 0]

    def _sdpa_mask(self, valid: Tensor | None, L: int) -> tuple[Tensor | None, bool]:
        """SDPA arguments. No mask at all when every token is real (fastest kernels)."""
        if valid is None or bool(valid.all()):
            return None, self.causal
        keys = valid.bool()[:, None, None, :]  # [B, 1, 1, L]: who may be attended to
        if self.causal:
            keys = keys & torch.ones(L, L, dtype=torch.bool, device=keys.device).tril()
        # A padded query row with no visible key would give NaN; let it see itself.
        keys = keys | torch.eye(L, dtype=torch.bool, device=keys.device)
        return keys, False
