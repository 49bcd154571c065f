r"""HyenaDNA (Nguyen et al. 2023): a causal long-convolution language model, in pure PyTorch.

**Hyena operator** of order :math:`N` (HyenaDNA: :math:`N = 2`) on ``h [B, L, d]``:

1. ``(x_0, ..., x_{N-1}, v) = split(S(W_in h + b_in))``, ``d`` channels each, where
   :math:`S` is a short causal depthwise convolution (kernel ``K = 3``, with bias);
2. :math:`z_0 = v`, and for :math:`n = 1 .. N-1` (gates taken in the order
   :math:`x_{N-1}, ..., x_1`, as HyenaDNA iterates them):

   .. math::
       g_n = x_{N-n} \odot z_{n-1}, \qquad
       z_n[t] = \sum_{s=0}^{t} k_n[t-s]\, g_n[s] + D_n \odot g_n[t]

   one long filter :math:`k_n` (length ``L``) and one skip :math:`D_n` per step;
3. ``y = W_out (x_0 ⊙ z_{N-1}) + b_out``.

The long convolution is computed by FFT with both signals zero-padded to ``2L``
(:func:`fft_causal_conv`): the circular convolution of length ``2L`` has no
wrap-around for lags ``< L``, so its first ``L`` outputs are the causal sum above.

**Implicit filter** (HyenaDNA's ``HyenaFilter``): :math:`k_n[t]` for every channel is
a small MLP of positional features, windowed by an exponential decay,

.. math::
    k[t] = \mathrm{MLP}(\phi_t) \odot \big(e^{-\tau_t |\delta|} + \text{shift}\big),
    \qquad
    \phi_t = \big[\tau_t,\ \cos(2\pi f_b t / T),\ -\sin(2\pi f_b t / T)\big]_{b=1..B}

with :math:`\tau_t = t / (T-1)` on the ``T = max_len`` positions the filter is defined
on, :math:`B = (\text{emb\_dim}-1)/2` bands :math:`f_b = \mathrm{linspace}(10^{-4}, B-1, B)`
(HyenaDNA's complex-exponential ``PositionalEmbedding``), ``MLP = Linear -> sin(ω·) ->
[Linear -> sin(ω·)] x num_inner -> Linear`` (no bias) with *one* trainable frequency
vector ω shared by its sine activations (HyenaDNA reuses one ``Sin`` module), and decay
rates :math:`\delta_c` spaced linearly so that channel ``c``'s window falls to ``target``
(1e-2) between 30 % and 150 % of ``T`` (``ExponentialModulation``, shift 0.05).
:math:`\phi`, :math:`\tau` and :math:`\delta` are buffers: HyenaDNA trains :math:`\phi`
with a learning rate of 1e-5 and keeps the others fixed, so an imported checkpoint's
values are loaded as they are and a model trained here keeps them at their formulas.

**Backbone** (HyenaDNA's LM): embedding -> ``n_layers`` x [LayerNorm -> Hyena ->
residual, LayerNorm -> MLP (tanh-GELU) -> residual] -> final LayerNorm -> LM head tied
to the embedding. Every op is causal, so position ``i`` never reads tokens after ``i``.

**Padding** (``valid`` False): the in-projection output is zeroed there before
the short convolution, and every long-convolution input is zeroed there too (the short
convolution's bias would otherwise leak in). The operator has no absolute position
(both convolutions are shift-invariant), so with padding at either end every real
position computes exactly what it computes on the unpadded sequence; interior gaps
read as zeros.

**Incremental decoding** keeps, per layer, the last ``K-1`` in-projection outputs and
every long-convolution input so far, and computes the causal sums directly: O(L d) work
per generated token (the FFT forward costs O(L log L d) per prefix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqdiff.backbones.base import Backbone, check_inputs
from seqdiff.backbones.bimamba import _mask
from seqdiff.backbones.mamba import _CausalConvCPU, _causal_conv, padded_vocab
from seqdiff.backbones.presets import resolve
from seqdiff.errors import ConfigError

#: MDLM's DNA table row and the public checkpoints' shapes (``LongSafari/hyenadna-*-seqlen-hf``
#: config.json: d_model, n_layer, d_inner, max_seq_len; all have hyena_order 2,
#: filter_order 64, emb_dim 5, num_inner_mlps 2, short_filter_order 3). ``mdlm_dna`` is
#: tiny-1k's shape at MDLM's L = 1024; with HyenaDNA's vocabulary (12 ids padded to 16) it
#: has 436,096 parameters (tests/backbones/test_hyena.py), 0.7 % above the 433K MDLM reports.
#: The only place they are written (``configs/backbone/hyenadna.yaml`` names ``mdlm_dna``).
PRESETS: dict[str, dict[str, int]] = {
    "mdlm_dna": {"d_model": 128, "n_layers": 2, "d_inner": 512, "max_len": 1024},
    "tiny_1k": {"d_model": 128, "n_layers": 2, "d_inner": 512, "max_len": 1026},
    "tiny_1k_d256": {"d_model": 256, "n_layers": 2, "d_inner": 1024, "max_len": 1026},
    "tiny_16k_d128": {"d_model": 128, "n_layers": 2, "d_inner": 512, "max_len": 16386},
    "small_32k": {"d_model": 256, "n_layers": 4, "d_inner": 1024, "max_len": 32770},
    "medium_160k": {"d_model": 256, "n_layers": 8, "d_inner": 1024, "max_len": 160002},
    "medium_450k": {"d_model": 256, "n_layers": 8, "d_inner": 1024, "max_len": 450002},
    "large_1m": {"d_model": 256, "n_layers": 8, "d_inner": 1024, "max_len": 1000002},
}

#: The shape without a preset (``d_inner`` None: ``4 * d_model``).
DEFAULT_SHAPE: dict[str, int | None] = {"d_model": 128, "n_layers": 2, "d_inner": None, "max_len": 1024}

#: HyenaDNA's CharacterTokenizer: [CLS] [SEP] [BOS] [MASK] [PAD] [RESERVED] [UNK], then A C G T N.
PUBLISHED_VOCAB = {"vocab_size": 12, "pad_vocab_multiple": 8}


def fft_causal_conv(u: Tensor, k: Tensor, D: Tensor) -> Tensor:
    r"""``y[..., t] = Σ_{s<=t} k[c, t-s] u[..., c, s] + D[c] u[..., c, t]`` for ``u [B, C, L]``,
    ``k [C, L]``, ``D [C]``; by FFT of size ``2L`` in float32 (HyenaDNA's ``fftconv``)."""
    L = u.shape[-1]
    n = 2 * L
    dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    uf = torch.fft.rfft(u.to(dtype), n=n)
    kf = torch.fft.rfft(k.to(dtype), n=n)
    y = torch.fft.irfft(uf * kf, n=n)[..., :L]
    return (y + u.to(dtype) * D.to(dtype).unsqueeze(-1)).to(u.dtype)


def _factory_device() -> torch.device:
    """Where new tensors go (honours ``with torch.device(...)``). Passed to ``torch.linspace``
    explicitly: after a transformers 5.24 ``from_pretrained`` in the same process, ``linspace``
    was seen to ignore the device context while ``arange`` kept it (torch 2.13; cause not traced)."""
    return torch.empty(0).device


def positional_features(max_len: int, emb_dim: int) -> tuple[Tensor, Tensor]:
    """``(phi [max_len, emb_dim], tau [max_len])``: HyenaDNA's filter inputs (see module doc)."""
    if emb_dim < 3 or emb_dim % 2 == 0:
        raise ConfigError(f"HyenaDNA: emb_dim must be odd and >= 3 (time, cosine and sine bands), got {emb_dim}")
    bands = (emb_dim - 1) // 2
    dev = _factory_device()
    tau = torch.linspace(0.0, 1.0, max_len, device=dev)
    w = 2 * math.pi * torch.arange(max_len, dtype=torch.float32, device=dev) / max_len
    f = torch.linspace(1e-4, bands - 1, bands, device=dev)
    angle = w[:, None] * f[None, :]
    return torch.cat([tau[:, None], torch.cos(angle), -torch.sin(angle)], dim=-1), tau


class ImplicitFilter(nn.Module):
    """``kernel(L) -> [channels, L]``: the long filters of one Hyena operator, and their skips ``D``."""

    def __init__(
        self,
        channels: int,
        max_len: int,
        emb_dim: int = 5,
        width: int = 64,
        num_inner: int = 2,
        freq: float = 10.0,
        shift: float = 0.05,
        fast_decay_pct: float = 0.3,
        slow_decay_pct: float = 1.5,
        target: float = 1e-2,
    ) -> None:
        super().__init__()
        phi, tau = positional_features(max_len, emb_dim)
        self.register_buffer("z", phi)
        self.register_buffer("t", tau)
        # Windows fall to `target` at fraction fast..slow of the filter length.
        deltas = torch.linspace(math.log(target) / slow_decay_pct, math.log(target) / fast_decay_pct, channels,
                                device=_factory_device())
        self.register_buffer("deltas", deltas)
        self.shift = float(shift)
        self.linears = nn.ModuleList([nn.Linear(emb_dim, width)] + [nn.Linear(width, width) for _ in range(num_inner)])
        self.out = nn.Linear(width, channels, bias=False)
        self.freq = nn.Parameter(torch.full((width,), float(freq)))
        self.D = nn.Parameter(torch.randn(channels))

    @property
    def max_len(self) -> int:
        return self.z.shape[0]

    def window(self, L: int) -> Tensor:
        """``exp(-tau_t |delta_c|) + shift`` as ``[L, channels]``."""
        return torch.exp(-self.t[:L, None] * self.deltas.abs()) + self.shift

    def mlp(self, L: int) -> Tensor:
        """The unwindowed filter values ``[L, channels]``."""
        h = self.z[:L].to(self.out.weight.dtype)
        for lin in self.linears:
            h = torch.sin(self.freq * lin(h))
        return self.out(h)

    def kernel(self, L: int) -> Tensor:
        if L > self.max_len:
            raise ConfigError(f"HyenaDNA: length {L} exceeds the filters' max_len={self.max_len}; build with a larger backbone.max_len")
        return (self.mlp(L) * self.window(L).to(self.out.weight.dtype)).transpose(0, 1)


def causal_depthwise_conv(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Depthwise causal conv of ``x [B, C, L]`` with ``weight [C, K]`` (left zero padding)."""
    if x.device.type == "cpu":  # one intra-op thread: see seqdiff.backbones.mamba._CausalConvCPU
        return _CausalConvCPU.apply(x, weight, bias)
    return _causal_conv(x, weight.to(x.dtype), bias.to(x.dtype))


class HyenaOperator(nn.Module):
    """The order-``N`` Hyena mixer ``[B, L, d] -> [B, L, d]`` (module doc, steps 1-3)."""

    def __init__(
        self,
        d_model: int,
        max_len: int,
        order: int = 2,
        filter_order: int = 64,
        emb_dim: int = 5,
        num_inner_mlps: int = 2,
        short_filter_order: int = 3,
        activation_freq: float = 10.0,
        modulation_shift: float = 0.05,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if order < 2:
            raise ConfigError(f"HyenaDNA: order must be >= 2, got {order}")
        if short_filter_order < 1:
            raise ConfigError(f"HyenaDNA: short_filter_order must be >= 1, got {short_filter_order}")
        self.d_model, self.order = d_model, order
        width = d_model * (order + 1)
        self.in_proj = nn.Linear(d_model, width)
        self.short_weight = nn.Parameter(torch.empty(width, short_filter_order))
        self.short_bias = nn.Parameter(torch.empty(width))
        # nn.Conv1d's default init (HyenaDNA's short filter is one): U(+-1/sqrt(fan_in)), fan_in = K.
        bound = 1.0 / math.sqrt(short_filter_order)
        nn.init.uniform_(self.short_weight, -bound, bound)
        nn.init.uniform_(self.short_bias, -bound, bound)
        self.filter = ImplicitFilter(
            d_model * (order - 1), max_len, emb_dim, filter_order, num_inner_mlps, activation_freq, modulation_shift
        )
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        L = h.shape[1]
        k = self.filter.kernel(L).view(self.order - 1, self.d_model, L)
        D = self.filter.D.view(self.order - 1, self.d_model)
        keep = None if mask is None else mask.unsqueeze(1).to(h.dtype)  # [B, 1, L]
        u = self.in_proj(h).transpose(1, 2)
        if keep is not None:
            u = u * keep
        u = causal_depthwise_conv(u, self.short_weight, self.short_bias)
        *x, v = u.split(self.d_model, dim=1)
        for n, gate in enumerate(reversed(x[1:])):
            g = v * gate
            if keep is not None:
                g = g * keep
            v = fft_causal_conv(self.dropout(g), k[n], D[n])
        return self.out_proj((v * x[0]).transpose(1, 2))


class HyenaBlock(nn.Module):
    """Pre-norm residual block: ``h + Hyena(LN(h))``, then ``h + MLP(LN(h))``."""

    def __init__(self, d_model: int, d_inner: int, mixer: HyenaOperator, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.mixer = mixer
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.fc1 = nn.Linear(d_model, d_inner)
        self.fc2 = nn.Linear(d_inner, d_model)

    def mlp(self, h: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(h), approximate="tanh"))  # HyenaDNA's MLP uses the tanh form

    def forward(self, h: Tensor, mask: Tensor | None) -> Tensor:
        h = h + self.mixer(self.norm1(h), mask)
        return h + self.mlp(self.norm2(h))


@dataclass
class HyenaCache:
    """Per layer: the last ``K-1`` in-projection outputs ``[B, C, K-1]``, every long-conv
    input so far ``[B, N-1, d, T]``, and the reversed filters ``[N-1, d, T]``."""

    conv: list[Tensor]
    inputs: list[Tensor]
    kernels_rev: list[Tensor]
    max_length: int
    position: int = 0


class HyenaDNA(Backbone):
    """Causal Hyena LM obeying the backbone contract and the incremental-decoding protocol.

    Args:
        vocab_size: number of token ids (the domain's ``VocabSpec.size``).
        d_model, n_layers: width and depth (MDLM's DNA row: preset ``mdlm_dna``).
        d_inner: MLP hidden width (None without a preset: ``4 * d_model``).
        max_len: positions the implicit filters are defined on (the longest input).
        (``d_model``, ``n_layers``, ``d_inner``, ``max_len`` None: from ``preset``, else
        :data:`DEFAULT_SHAPE`.)
        order: Hyena recurrence depth ``N`` (2: two gates, one long filter).
        filter_order: width of the filter MLP; emb_dim: positional features (odd, >= 3);
        num_inner_mlps: hidden layers of the filter MLP; short_filter_order: short conv length.
        activation_freq: initial sine frequency; modulation_shift: the decay window's floor.
        layer_norm_eps: LayerNorm epsilon.
        dropout: on the embeddings (HyenaDNA's ``embed_dropout``).
        pad_vocab_multiple: embedding rows rounded up (HyenaDNA: 8); logits for the first
            ``vocab_size`` ids only.
        tie_embeddings: LM head weight = embedding table (HyenaDNA trains them tied).
        causal, time_conditioning: must be True / False (HyenaDNA is a causal LM).
        preset: a shape of :data:`PRESETS` (the public checkpoints'); the shape arguments
            given (not None) override its numbers.
    """

    causal = True
    time_conditioning = False

    def __init__(
        self,
        vocab_size: int,
        d_model: int | None = None,
        n_layers: int | None = None,
        d_inner: int | None = None,
        max_len: int | None = None,
        order: int = 2,
        filter_order: int = 64,
        emb_dim: int = 5,
        num_inner_mlps: int = 2,
        short_filter_order: int = 3,
        activation_freq: float = 10.0,
        modulation_shift: float = 0.05,
        layer_norm_eps: float = 1e-5,
        dropout: float = 0.0,
        pad_vocab_multiple: int = 1,
        tie_embeddings: bool = True,
        causal: bool = True,
        time_conditioning: bool = False,
        preset: str | None = None,
    ) -> None:
        super().__init__()
        shape = resolve("HyenaDNA", PRESETS, preset, DEFAULT_SHAPE, d_model=d_model, n_layers=n_layers,
                        d_inner=d_inner, max_len=max_len)
        d_model, n_layers, d_inner, max_len = shape["d_model"], shape["n_layers"], shape["d_inner"], shape["max_len"]
        if not causal:
            raise ConfigError("HyenaDNA: only the causal (autoregressive) model is implemented; use process=ar")
        if time_conditioning:
            raise ConfigError("HyenaDNA: a causal (autoregressive) model takes no time conditioning")
        if max_len < 1:
            raise ConfigError(f"HyenaDNA: max_len must be >= 1, got {max_len}")
        self.vocab_size = vocab_size
        self.max_len = int(max_len)
        d_inner = int(d_inner or 4 * d_model)
        V = padded_vocab(vocab_size, pad_vocab_multiple)
        self.embedding = nn.Embedding(V, d_model)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            HyenaBlock(
                d_model,
                d_inner,
                HyenaOperator(d_model, max_len, order, filter_order, emb_dim, num_inner_mlps, short_filter_order,
                              activation_freq, modulation_shift),
                layer_norm_eps,
            )
            for _ in range(n_layers)
        )
        self.norm_f = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.lm_head = nn.Linear(d_model, V, bias=False)
        self._init_weights(n_layers)
        if tie_embeddings:
            self.lm_head.weight = self.embedding.weight

    @classmethod
    def from_preset(cls, preset: str, vocab_size: int, **kw) -> "HyenaDNA":
        return cls(vocab_size, preset=preset, **kw)

    def _init_weights(self, n_layers: int) -> None:
        # HyenaDNA's (GPT-2's): every Linear (the filter MLPs too) and the embedding N(0, 0.02),
        # biases 0; the residual outputs (out_proj, fc2) scaled by 1/sqrt(2 * depth).
        std = 0.02
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                last = name.endswith(("mixer.out_proj", "fc2"))
                nn.init.normal_(m.weight, 0.0, std / math.sqrt(2 * n_layers) if last else std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.embedding.weight, 0.0, std)

    def _check_length(self, L: int) -> None:
        if L > self.max_len:
            raise ConfigError(
                f"HyenaDNA: sequence length {L} exceeds max_len={self.max_len} (the implicit filters are "
                "defined on max_len positions); set backbone.max_len"
            )

    def features(self, x_t: Tensor, t: Tensor | None, valid: Tensor | None) -> Tensor:
        check_inputs(x_t, valid)
        self._check_length(x_t.shape[1])
        mask = _mask(valid)
        h = self.drop(self.embedding(x_t))
        for layer in self.layers:
            h = layer(h, mask)
        return self.norm_f(h)

    def head(self, h: Tensor) -> Tensor:
        return self.lm_head(h)[..., : self.vocab_size]

    # ------------------------------------------------------------ incremental decoding
    @torch.no_grad()
    def init_cache(self, batch_size: int, max_length: int) -> HyenaCache:
        if batch_size < 1 or max_length < 1:
            raise ValueError(f"HyenaDNA: init_cache needs batch_size, max_length >= 1, got {batch_size}, {max_length}")
        self._check_length(max_length)
        w = self.embedding.weight
        conv, inputs, kernels = [], [], []
        for layer in self.layers:
            mixer = layer.mixer
            C, K = mixer.short_weight.shape
            conv.append(torch.zeros(batch_size, C, K - 1, device=w.device, dtype=w.dtype))
            inputs.append(torch.zeros(batch_size, mixer.order - 1, mixer.d_model, max_length, device=w.device, dtype=w.dtype))
            k = mixer.filter.kernel(max_length).view(mixer.order - 1, mixer.d_model, max_length)
            kernels.append(k.flip(-1).contiguous())
        return HyenaCache(conv=conv, inputs=inputs, kernels_rev=kernels, max_length=max_length)

    @torch.no_grad()
    def decode_step(self, tokens: Tensor, cache: HyenaCache) -> Tensor:
        """Feed ``tokens [B]`` at ``cache.position``; logits ``[B, V]`` for the next position."""
        B = cache.conv[0].shape[0]
        if tokens.dim() != 1 or tokens.shape[0] != B:
            raise ValueError(f"HyenaDNA: decode_step takes tokens [{B}], got {tuple(tokens.shape)}")
        p, T = cache.position, cache.max_length
        if p >= T:
            raise ValueError(f"HyenaDNA: cache is full (max_length={T})")
        h = self.embedding(tokens)
        for layer, conv, inputs, krev in zip(self.layers, cache.conv, cache.inputs, cache.kernels_rev):
            mixer = layer.mixer
            u = mixer.in_proj(layer.norm1(h))  # [B, C]
            window = torch.cat([conv, u.unsqueeze(-1)], dim=-1)  # the last K inputs, oldest first
            uc = (window * mixer.short_weight).sum(-1) + mixer.short_bias
            conv.copy_(window[..., 1:])
            *x, v = uc.split(mixer.d_model, dim=1)
            D = mixer.filter.D.view(mixer.order - 1, mixer.d_model)
            for n, gate in enumerate(reversed(x[1:])):
                g = v * gate
                inputs[:, n, :, p] = g
                # sum_{s<=p} k[p-s] g[s]: krev[T-1-p+s] = k[p-s]
                v = (inputs[:, n, :, : p + 1] * krev[n, :, T - 1 - p :]).sum(-1) + D[n] * g
            h = h + mixer.out_proj(v * x[0])
            h = h + layer.mlp(layer.norm2(h))
        cache.position += 1
        return self.head(self.norm_f(h))
