r"""The Mamba (v1) mixer, its pre-norm residual block, and the shared init (Gu & Dao 2023).

Dataflow of :class:`Mamba` on ``h [B, L, d]``, with ``E = expand * d``, ``R = ceil(d/16)``:

1. ``x, z = in_proj(h)`` (each ``E`` channels);
2. ``u = silu(causal depthwise conv1d(x))``, kernel ``d_conv``;
3. ``(dt, B, C) = x_proj(u)``, ``Delta = softplus(dt_proj.weight @ dt + dt_proj.bias)``;
4. ``y = selective_scan(u, Delta, A = -exp(A_log), B, C, D, z)`` (see :mod:`seqdiff.ops`);
5. ``out_proj(y)``.

Parameter names and shapes are those of ``mamba_ssm.modules.mamba_simple.Mamba``, so
one checkpoint runs through mamba-ssm's CUDA kernels (used when the package is
installed and the tensors are on CUDA) or through our PyTorch scan (everywhere else).

Padding (``mask`` False) is handled inside the mixer: the conv input is zeroed there and
``Delta`` is set to 0, which makes the SSM step the identity, so state passes through a
padded position unchanged. For padding at either end of a sequence -- the only kind the
data pipeline produces -- every real position then computes exactly what it would on the
unpadded sequence, in both scan directions; interior gaps read as zeros to the conv.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import os
from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from seqdiff.ops.selective_scan import cpu_threads, selective_scan_fn, selective_state_update


@functools.lru_cache(maxsize=None)
def cuda_kernels() -> tuple[Callable | None, Callable | None]:
    """``(selective_scan_fn, causal_conv1d_fn)`` from mamba-ssm / causal-conv1d, or None each.

    Imported lazily: neither package is needed (or importable) on a CPU install.
    ``SEQDIFF_MAMBA_KERNELS=0`` in the environment forces the pure-PyTorch paths on CUDA too
    (to compare the two on one GPU: ``benchmarks/gpu_check.py``).
    """
    if os.environ.get("SEQDIFF_MAMBA_KERNELS", "1") == "0":
        return None, None

    def load(package: str, module: str, name: str) -> Callable | None:
        if importlib.util.find_spec(package) is None:
            return None
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, OSError):  # e.g. built without its CUDA extension
            return None

    return (
        load("mamba_ssm", "mamba_ssm.ops.selective_scan_interface", "selective_scan_fn"),
        load("causal_conv1d", "causal_conv1d", "causal_conv1d_fn"),
    )


def scan(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, z: Tensor, dt_bias: Tensor, mask: Tensor | None) -> Tensor:
    """``selective_scan(u, Delta = softplus(dt + dt_bias) * mask, ...)``: mamba-ssm's CUDA
    kernel for CUDA tensors when installed, our PyTorch scan otherwise.

    Without padding the kernel fuses bias and softplus; with it they are applied here so
    that Delta can be zeroed at padding (an identity SSM step).
    """
    kernel = cuda_kernels()[0] if u.is_cuda else None
    fn = kernel or selective_scan_fn
    if mask is None:
        return fn(u, dt, A, B, C, D, z=z, delta_bias=dt_bias.float(), delta_softplus=True)
    m = mask.unsqueeze(1) if mask.dim() == 2 else mask  # [B, L] or per-channel [B, E, L]
    delta = F.softplus(dt.float() + dt_bias.float().unsqueeze(-1)) * m
    return fn(u, delta, A, B, C, D, z=z, delta_bias=None, delta_softplus=False)


def causal_conv_silu(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``silu(depthwise causal conv1d(x))`` for ``x [B, E, L]``, ``weight [E, K]``."""
    kernel = cuda_kernels()[1] if x.is_cuda else None
    if kernel is not None:
        return kernel(x, weight, bias, activation="silu")
    if x.device.type == "cpu":
        return F.silu(_CausalConvCPU.apply(x, weight, bias))
    return F.silu(_causal_conv(x, weight, bias))


def _causal_conv(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    # Left padding by K-1: each output sees only the past.
    return F.conv1d(F.pad(x, (weight.shape[-1] - 1, 0)), weight.unsqueeze(1), bias, groups=x.shape[1])


class _CausalConvCPU(torch.autograd.Function):
    """The same conv, forward and backward on one intra-op thread.

    PyTorch's depthwise conv1d backward for [8, 256, 1024] took up to 24 s at 2 threads
    on a busy 2-core machine (69 ms in its best run); on one thread it took 28-100 ms
    whatever the load, so little is lost. Computed in the input's dtype, outside autocast, so
    backward sees the dtypes forward used.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        w = weight.to(x.dtype)
        b = None if bias is None else bias.to(x.dtype)
        with cpu_threads(x.device, 1), torch.autocast("cpu", enabled=False):
            y = _causal_conv(x, w, b)
        ctx.save_for_backward(x, w)
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy: Tensor):
        x, w = ctx.saved_tensors
        K, E = w.shape[-1], w.shape[0]
        wd, bd = ctx.dtypes
        with cpu_threads(x.device, 1):
            dx, dw, db = torch.ops.aten.convolution_backward(
                dy.contiguous(), F.pad(x, (K - 1, 0)), w.unsqueeze(1), [E] if bd else None,
                [1], [0], [1], False, [0], E, [True, True, bd is not None],
            )
        return dx[..., K - 1 :], dw.squeeze(1).to(wd), None if db is None else db.to(bd)


class RMSNorm(nn.Module):
    """``x / rms(x) * weight`` in fp32 (mamba-ssm's RMSNorm, eps 1e-5)."""

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.float()).to(x.dtype)


class Mamba(nn.Module):
    """The selective-SSM mixer ``[B, L, d] -> [B, L, d]`` (mamba-ssm's ``Mamba``, v1)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if dt_init not in ("random", "constant"):
            raise ValueError(f"Mamba: dt_init must be 'random' or 'constant', got {dt_init!r}")
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = E = expand * d_model
        self.dt_rank = R = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.in_proj = nn.Linear(d_model, 2 * E, bias=bias)
        self.conv1d = nn.Conv1d(E, E, d_conv, groups=E, padding=d_conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(E, R + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        std = R**-0.5 * dt_scale
        with torch.no_grad():
            if dt_init == "constant":
                nn.init.constant_(self.dt_proj.weight, std)
            else:
                nn.init.uniform_(self.dt_proj.weight, -std, std)
            # Delta0 log-uniform in [dt_min, dt_max]; the bias is its inverse softplus.
            dt = torch.exp(torch.rand(E) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=dt_init_floor)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.dt_proj.bias._no_reinit = True  # type: ignore[attr-defined]
        # S4D-real: A[e, n] = -(n + 1).
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(E, 1))
        self.D = nn.Parameter(torch.ones(E))
        self.A_log._no_weight_decay = True  # type: ignore[attr-defined]
        self.D._no_weight_decay = True  # type: ignore[attr-defined]
        self.out_proj = nn.Linear(E, d_model, bias=bias)

    # The forward pass in pieces, so BiMamba can run both directions through one scan.
    def project_in(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """``x, z [B, E, L]``; ``x`` zeroed at padding so the conv cannot read it."""
        x, z = rearrange(self.in_proj(h), "b l (two e) -> two b e l", two=2)
        if mask is not None:
            x = x * mask.unsqueeze(1).to(x.dtype)
        return x, z

    def ssm_inputs(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``dt [B, E, L]`` (before bias and softplus), ``B, C [B, N, L]`` from the conv output."""
        dbc = self.x_proj(rearrange(u, "b e l -> b l e"))
        dt, B, C = torch.split(dbc, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = rearrange(dt @ self.dt_proj.weight.t(), "b l e -> b e l")
        return dt, rearrange(B, "b l n -> b n l"), rearrange(C, "b l n -> b n l")

    def A(self) -> Tensor:
        return -torch.exp(self.A_log.float())

    def conv_weight(self) -> Tensor:
        return rearrange(self.conv1d.weight, "e 1 k -> e k")

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        x, z = self.project_in(h, mask)
        u = causal_conv_silu(x, self.conv_weight(), self.conv1d.bias)
        dt, B, C = self.ssm_inputs(u)
        y = scan(u, dt, self.A(), B, C, self.D.float(), z, self.dt_proj.bias, mask)
        return self.out_proj(rearrange(y, "b e l -> b l e"))

    # ----------------------------------------------------------------- decoding
    def allocate_state(self, batch: int, device=None, dtype=None) -> tuple[Tensor, Tensor]:
        """``(conv_state [B, E, d_conv], ssm_state [B, E, N])``, zero = the empty prefix."""
        w = self.conv1d.weight
        conv = torch.zeros(batch, self.d_inner, self.d_conv, device=device or w.device, dtype=dtype or w.dtype)
        ssm = torch.zeros(batch, self.d_inner, self.d_state, device=device or w.device, dtype=torch.float32)
        return conv, ssm

    def step(self, h: Tensor, conv_state: Tensor, ssm_state: Tensor) -> Tensor:
        """One position ``h [B, d] -> [B, d]``, updating both states in place."""
        x, z = self.in_proj(h).chunk(2, dim=-1)
        conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
        conv_state[:, :, -1] = x
        u = F.silu((conv_state * self.conv_weight()).sum(-1) + (self.conv1d.bias if self.conv1d.bias is not None else 0))
        dt, B, C = torch.split(self.x_proj(u), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = dt @ self.dt_proj.weight.t()
        y = selective_state_update(ssm_state, u, dt, self.A(), B, C, self.D.float(), z, self.dt_proj.bias, True)
        return self.out_proj(y)


class MambaBlock(nn.Module):
    """Mamba's residual block, "Add -> RMSNorm -> Mixer" (the residual stream skips the norm)."""

    def __init__(self, d_model: int, mixer: nn.Module, norm_eps: float = 1e-5, residual_in_fp32: bool = True) -> None:
        super().__init__()
        self.norm = RMSNorm(d_model, norm_eps)
        self.mixer = mixer
        self.residual_in_fp32 = residual_in_fp32

    def add(self, h: Tensor, residual: Tensor | None) -> Tensor:
        residual = h if residual is None else h + residual
        return residual.float() if self.residual_in_fp32 else residual

    def forward(self, h: Tensor, residual: Tensor | None, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        residual = self.add(h, residual)
        return self.mixer(self.norm(residual.to(h.dtype)), mask), residual


def init_weights(model: nn.Module, n_layers: int, std: float = 0.02) -> None:
    """mamba-ssm's ``_init_weights`` (as Caduceus uses it): zero Linear biases except
    ``dt_proj``'s, N(0, 0.02) embeddings, and ``out_proj`` re-drawn with PyTorch's default
    Linear init and scaled by ``1/sqrt(n_layers)`` so the residual stream does not grow with depth."""
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.bias is not None and not getattr(module.bias, "_no_reinit", False):
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if name.endswith("out_proj.weight") and id(p) not in seen:
            seen.add(id(p))
            nn.init.kaiming_uniform_(p, a=math.sqrt(5))
            with torch.no_grad():
                p /= math.sqrt(n_layers)


def padded_vocab(vocab_size: int, multiple: int) -> int:
    if multiple < 1:
        raise ValueError(f"pad_vocab_multiple must be >= 1, got {multiple}")
    return -(-vocab_size // multiple) * multiple

