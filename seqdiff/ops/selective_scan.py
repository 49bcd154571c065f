r"""Mamba-1 selective scan (S6) in pure PyTorch, with mamba-ssm's calling convention.

Per channel ``e`` and state ``n`` (Gu & Dao 2023, Alg. 2; mamba-ssm ``selective_scan_ref``):

.. math::
    h_t = \exp(\Delta_t A)\,h_{t-1} + \Delta_t B_t u_t,\qquad
    y_t = C_t^\top h_t + D u_t,\qquad \mathrm{out}_t = y_t\,\mathrm{silu}(z_t),

with :math:`h_{-1}=0`, :math:`\Delta=\mathrm{softplus}(\delta+\delta_{bias})` when asked.
ZOH for ``A`` but an Euler step for ``B``, exactly as the CUDA kernel.

**How it runs on a CPU.** Time is cut into ``nc`` chunks of ``c`` steps and laid out
chunk-step-major, ``[c, nc, ...]``, so one step of every chunk is a single contiguous
slab and all chunks advance together: ``c + nc`` Python steps instead of ``L``.

1. scan every chunk from a zero state, keeping only its end state;
2. chunk-entry states by a short sequential pass over chunks,
   :math:`h^{in}_{j+1} = \exp(A \sum_{t\in j}\Delta_t)\,h^{in}_j + h^{end}_j`;
3. scan every chunk again from its entry state, emitting :math:`y_t` on the way.

With one chunk (``c = L``, the default when slabs are big, see
:func:`default_chunk_size`) this is a plain streaming scan. Every exponent is
:math:`\Delta A \le 0`, a step's or a chunk's, never a difference or a ratio, so
nothing overflows: the ``P * cumsum(b / P)`` closed form divides by decays that
underflow with S4D-real ``A`` (down to -16) and returns NaN; this one cannot. The
backward pass is written by hand: the adjoint is the same scan run right to left (with
its own chunk carries), states are recomputed from the saved chunk-entry states rather
than stored as ``[b, d, n, l]`` activations, and nothing per-step goes through autograd.

Subnormal floats make x86 CPUs many times slower. Every decay factor is floored at
``exp(-60)`` (:data:`MIN_LOG_DECAY`; it alters a state by < 1e-26 of itself), so no
single step lands in that range, and states get fresh input ``Delta B u`` every step.
Adjoints can still fade into it over long stretches without gradient (the last layer
under a sparse masked-diffusion loss: backward measured 2x slower at 1% density). This
module leaves the FTZ/DAZ flag alone: it is per thread, and OpenMP workers inherit it
only when created, so an application wanting it calls ``torch.set_flush_denormal(True)``
at start-up, before the first parallel op (then it holds on every thread).

Threads: see :data:`CPU_THREADS` and :func:`cpu_threads`.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


#: Log-decays are floored here: exp(-60) ~ 9e-27 of the old state survives instead of less.
MIN_LOG_DECAY = -60.0


def _decay(log_decay: Tensor) -> Tensor:
    """``exp`` of a non-positive exponent, in place, floored at ``exp(MIN_LOG_DECAY)``."""
    return log_decay.clamp_(min=MIN_LOG_DECAY).exp_()


#: Intra-op threads for the CPU scan (None: torch's setting, like every other op).
CPU_THREADS: int | None = None


@contextlib.contextmanager
def cpu_threads(device: torch.device, n: int | None) -> Iterator[None]:
    """Run CPU work on ``n`` intra-op threads (None: unchanged), restoring torch's count after.

    The scan is thousands of ~0.1 ms ops, each a fork/join when multi-threaded. On a quiet
    2-core machine 2 threads are ~2x faster than one (benchmark shape: 0.10 s vs 0.19-0.25
    s), but when another process holds a core every join waits for a scheduler tick and
    the same call took 2-12 s. On shared machines set ``CPU_THREADS = 1`` (or run with one
    torch thread). The count is process-wide: other Python threads' ops see it meanwhile.
    """
    old = torch.get_num_threads()
    change = device.type == "cpu" and n is not None and n != old
    if change:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(old)


def _compute_dtype(x: Tensor) -> torch.dtype:
    # The kernel computes in fp32 whatever the input; float64 stays float64 for tests.
    return torch.float64 if x.dtype == torch.float64 else torch.float32


#: Elements per chunk-step slab (``nc * b * d * n``) that amortise per-step Python overhead.
SLAB_TARGET = 1 << 16


def default_chunk_size(length: int, step_elems: int, threads: int | None = None) -> int:
    """Chunk length ``c`` from ``L`` and the elements of one time step (``b*d*n``).

    ``nc > 1`` chunks cost an extra sweep (the local end states, and backward the local
    adjoints), so one chunk (``c = L``, a plain streaming scan) is best once a time step
    alone is big enough. Otherwise ``c + L/c`` Python steps of small slabs dominate:
    ``c ~ sqrt(L)`` at least, grown until a slab holds ~:data:`SLAB_TARGET` elements.
    Measured fwd+bwd, 1 thread, best ``c`` for (b, d, n, l): (4, 256, 16, 1024) 128-256,
    (1, 128, 16, 1024) 8-64, (2, 256, 16, 64) 8, (8, 128, 16, 256) 32-64, all of which
    this rule picks; c = L was 1.3-5x slower on each.

    With several intra-op threads every op is a fork/join, so slabs are made 4x larger:
    fewer, bigger ops (2 threads, quiet machine: 0.10 s at c = 64 for the first shape).
    """
    if threads is None:
        threads = CPU_THREADS or torch.get_num_threads()
    target = SLAB_TARGET * (4 if threads > 1 else 1)
    chunks = max(1, target // max(1, step_elems))
    c = 2 ** round(math.log2(max(1.0, math.sqrt(length), length / chunks)))
    return max(1, length) if 2 * c >= length else c


class _ChunkedScan(torch.autograd.Function):
    """Core recurrence ``(u, delta, A, B, C) -> (C^T h, h_last)`` on ``[c, nc, b, g, e, n]``.

    Memory traffic, not arithmetic, bounds this on a CPU, so every ``[.., e, n]`` quantity
    lives only as one chunk-step slab ``[nc, b, g, e, n]`` in a few reused buffers and is
    consumed while it is in cache: the forward pass stores no states at all, the
    backward pass stores only the recomputed states (the adjoint sweep needs them in
    reverse order) and streams the adjoint. (Storing states in the forward pass and a
    separate correction pass were 1.3-3x slower.)
    """

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int):
        with cpu_threads(u.device, CPU_THREADS):
            dt, du, Bt, Ct, At = _layout(u, delta, A, B, C, chunk)
            nc = dt.shape[1]
            h_in = None
            if nc > 1:
                # Entry state of chunk j+1 = (product of chunk j's decays) * entry of j + its local end.
                end = _sweep(dt, du, Bt, At, None)
                total = _decay(dt.sum(0).unsqueeze(-1) * At)
                h_in = torch.zeros_like(end)
                for j in range(1, nc):
                    torch.addcmul(end[j - 1], total[j - 1], h_in[j - 1], out=h_in[j])
            y = torch.empty_like(dt)
            last = _sweep(dt, du, Bt, At, h_in, Ct=Ct, y=y)[-1].clone()
        ctx.save_for_backward(u, delta, A, B, C, *(() if h_in is None else (h_in,)))
        ctx.chunk = chunk
        ctx.set_materialize_grads(False)
        return _unlayout(y, u.shape[-1]), rearrange(last, "b g e n -> b (g e) n")

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout: Tensor | None, dlast: Tensor | None):
        u, delta, A, B, C, *saved = ctx.saved_tensors
        with cpu_threads(u.device, CPU_THREADS):
            grads = _scan_backward(u, delta, A, B, C, saved[0] if saved else None, ctx.chunk, dout, dlast)
        return (*grads, None)


def _scan_backward(u, delta, A, B, C, h_in: Tensor | None, chunk: int, dout: Tensor | None, dlast: Tensor | None):
    """Gradients of :class:`_ChunkedScan` with respect to ``u, delta, A, B, C``.

    The adjoint ``g_t = dL/dh_t = C_t dy_t + exp(Delta_{t+1} A) g_{t+1}`` is the same scan
    run right to left; with several chunks, a first leftward sweep from zero finds each
    chunk's local adjoint and a short pass over chunks the carry ``k_j`` entering chunk
    ``j`` from the right, exactly as the forward pass finds entry states.
    """
    dt, du, Bt, Ct, At = _layout(u, delta, A, B, C, chunk)
    c, nc, b, g, e = dt.shape
    X: list[Tensor] = []
    _sweep(dt, du, Bt, At, h_in, keep=X)  # the true states h_t, recomputed
    dyt = torch.zeros_like(dt) if dout is None else _layout_x(dout.to(dt.dtype), chunk, g)

    def decay(i: int, out: Tensor) -> Tensor:  # exp(Delta_i A) of chunk step i, into out
        return _decay(torch.mul(dt[i].unsqueeze(-1), At, out=out))

    # k[j]: exp(Delta A) g at the first step of chunk j+1, i.e. what flows into chunk j's end.
    k = torch.zeros_like(X[0])
    if dlast is not None:
        k[-1] = rearrange(dlast.to(dt.dtype), "b (g e) n -> b g e n", g=g)
    if nc > 1:
        gl, x, a = (torch.empty_like(X[0]) for _ in range(3))
        for i in range(c - 1, -1, -1):  # local adjoints, from zero at every chunk's end
            torch.mul(dyt[i].unsqueeze(-1), Ct[i].unsqueeze(-2), out=x)
            if i < c - 1:
                x.addcmul_(decay(i + 1, a), gl)
            gl, x = x, gl
        first = decay(0, a).mul_(gl)
        total = _decay(dt.sum(0).unsqueeze(-1) * At)
        for j in range(nc - 1, 0, -1):
            torch.addcmul(first[j], total[j], k[j], out=k[j - 1])
        del gl, x, a, first, total

    ddt, ddu = torch.zeros_like(dt), torch.empty_like(dt)
    dB, dC = torch.empty_like(Bt), torch.empty_like(Ct)
    dA_sum = torch.zeros_like(X[0])
    gt, x, a, a_next, w = (torch.empty_like(X[0]) for _ in range(5))
    for i in range(c - 1, -1, -1):  # the true adjoint, consumed as it is produced
        torch.mul(dyt[i].unsqueeze(-1), Ct[i].unsqueeze(-2), out=x)
        if i < c - 1:
            x.addcmul_(a_next, gt)
        elif nc > 1 or dlast is not None:
            x.add_(k)
        gt, x = x, gt
        torch.matmul(dyt[i].unsqueeze(-2), X[i], out=dC[i].unsqueeze(-2))  # dC_t = h_t^T dy_t
        torch.matmul(du[i].unsqueeze(-2), gt, out=dB[i].unsqueeze(-2))  # dB_t = (Delta u)_t^T g_t
        torch.matmul(gt, Bt[i].unsqueeze(-1), out=ddu[i].unsqueeze(-1))  # d(Delta u)_t = g_t B_t
        decay(i, a)
        prev = X[i - 1] if i else h_in  # h_{t-1}; None: zero (start of the only chunk)
        if prev is not None:  # d(Delta A)_t = g_t exp(Delta_t A) h_{t-1}, then to Delta and A
            W = torch.mul(a, gt, out=w).mul_(prev)
            dA_sum.addcmul_(W, dt[i].unsqueeze(-1))
            ddt[i] = W.mul_(At).sum(-1)
        a, a_next = a_next, a
    L = u.shape[-1]
    ut = _layout_x(u.to(dt.dtype), chunk, g)
    d_u = _unlayout(ddu * dt, L).to(u.dtype)
    d_delta = _unlayout(ddt.add_(ddu * ut), L).to(delta.dtype)
    d_A = rearrange(dA_sum.sum((0, 1)), "g e n -> (g e) n").to(A.dtype)
    return d_u, d_delta, d_A, _unlayout_bc(dB, L).to(B.dtype), _unlayout_bc(dC, L).to(C.dtype)


# Layout: time t = j*c + i goes to [i, j] (chunk step, chunk), so one step of every chunk
# is one contiguous slab. Transposing [d, l] first and splitting time second is ~3x
# faster than one 5-d permuting copy.
def _layout_x(x: Tensor, chunk: int, groups: int) -> Tensor:
    """``[b, (g e), l] -> [c, nc, b, g, e]``, zero-padded to a whole number of chunks."""
    x = _pad_time(x, chunk).transpose(1, 2).contiguous()
    return rearrange(x, "b (j i) (g e) -> i j b g e", g=groups, i=chunk).contiguous()


def _pad_time(x: Tensor, chunk: int) -> Tensor:
    pad = -x.shape[-1] % chunk
    return F.pad(x, (0, pad)) if pad else x


def _unlayout(x: Tensor, length: int) -> Tensor:
    """Inverse of :func:`_layout_x`; a ``[b, d, l]`` view of ``[b, l, d]`` memory, which
    is the layout the mixer's ``out_proj`` wants next."""
    x = rearrange(x, "i j b g e -> b (j i) (g e)").contiguous()
    return x[:, :length].transpose(1, 2)


def _layout_bc(M: Tensor, chunk: int) -> Tensor:
    M = _pad_time(M, chunk).transpose(-1, -2).contiguous()
    return rearrange(M, "b g (j i) n -> i j b g n", i=chunk).contiguous()


def _unlayout_bc(M: Tensor, length: int) -> Tensor:
    return rearrange(M, "i j b g n -> b g (j i) n")[:, :, :length].transpose(-1, -2).contiguous()


def _layout(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int):
    ct = _compute_dtype(u)
    g = B.shape[1]
    dt = _layout_x(delta.to(ct), chunk, g)  # padded steps get Delta = 0: identity steps
    du = dt * _layout_x(u.to(ct), chunk, g)
    At = rearrange(A.to(ct), "(g e) n -> g e n", g=g)
    return dt, du, _layout_bc(B.to(ct), chunk), _layout_bc(C.to(ct), chunk), At


def _sweep(
    dt: Tensor,
    du: Tensor,
    Bt: Tensor,
    At: Tensor,
    h0: Tensor | None,
    Ct: Tensor | None = None,
    y: Tensor | None = None,
    keep: list[Tensor] | None = None,
) -> Tensor:
    """Scan every chunk from ``h0`` (its entry state, or zero) over the ``c`` chunk steps.

    Returns the end states ``[nc, b, g, e, n]``; writes ``y[i] = C_i^T h_i`` if asked, and
    appends every state to ``keep`` if given (otherwise two buffers ping-pong).
    """
    h, x, a = dt.new_empty(0), dt.new_empty(0), dt.new_empty(0)
    for i in range(dt.shape[0]):
        if keep is not None:
            x = dt.new_empty(0)  # a fresh slab: this one is kept
        torch.mul(du[i].unsqueeze(-1), Bt[i].unsqueeze(-2), out=x)  # Delta_t B_t u_t
        prev = h if i else h0
        if prev is not None:  # + exp(Delta_t A) h_{t-1}
            x.addcmul_(_decay(torch.mul(dt[i].unsqueeze(-1), At, out=a)), prev)
        h, x = x, h
        if keep is not None:
            keep.append(h)
        if y is not None:
            torch.matmul(h, Ct[i].unsqueeze(-1), out=y[i].unsqueeze(-1))
    return h


def _check(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D, z, delta_bias) -> None:
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"selective_scan: u and delta must both be [batch, dim, length], got {tuple(u.shape)}, {tuple(delta.shape)}")
    b, d, L = u.shape
    if A.dim() != 2 or A.shape[0] != d:
        raise ValueError(f"selective_scan: A must be [dim={d}, dstate], got {tuple(A.shape)}")
    if A.is_complex():
        raise NotImplementedError("selective_scan: complex A is not supported by the PyTorch scan")
    n = A.shape[1]
    for name, M in (("B", B), ("C", C)):
        if M.dim() == 2:
            raise NotImplementedError(f"selective_scan: time-invariant {name} [dim, dstate] is not supported; pass [batch, dstate, length]")
        ok = (M.dim() == 3 and M.shape == (b, n, L)) or (M.dim() == 4 and M.shape[0] == b and M.shape[2:] == (n, L))
        if not ok:
            raise ValueError(f"selective_scan: {name} must be [{b}, {n}, {L}] or [{b}, groups, {n}, {L}], got {tuple(M.shape)}")
    if B.dim() == 4 and (d % B.shape[1] or B.shape[1] != C.shape[1]):
        raise ValueError(f"selective_scan: {B.shape[1]} groups of B/C must divide dim={d} and agree")
    for name, v in (("D", D), ("delta_bias", delta_bias)):
        if v is not None and v.shape != (d,):
            raise ValueError(f"selective_scan: {name} must be [{d}], got {tuple(v.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"selective_scan: z must be shaped like u {tuple(u.shape)}, got {tuple(z.shape)}")


def selective_scan_fn(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    chunk_size: int | None = None,
):
    """Drop-in for ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``.

    Shapes: ``u, delta, z [b, d, l]``; ``A [d, n]`` (real); ``B, C [b, n, l]`` or
    ``[b, g, n, l]`` (``g`` groups of ``d/g`` channels); ``D, delta_bias [d]``.
    Returns ``out [b, d, l]`` in ``u``'s dtype, and with ``return_last_state`` also
    ``h_{l-1} [b, d, n]`` in the compute dtype (fp32, or fp64 for fp64 inputs).
    ``chunk_size`` (extra, keyword-only) overrides :func:`default_chunk_size`.
    """
    _check(u, delta, A, B, C, D, z, delta_bias)
    ct = _compute_dtype(u)
    if delta_bias is not None:
        delta = delta.to(ct) + delta_bias.to(ct).unsqueeze(-1)
    if delta_softplus:
        delta = F.softplus(delta.to(ct))  # threshold 20, as the kernel
    if B.dim() == 3:
        B, C = B.unsqueeze(1), C.unsqueeze(1)
    b, d, L = u.shape
    if L == 0:
        out, last = u.new_zeros(u.shape), u.new_zeros((b, d, A.shape[1]), dtype=ct)
        return (out, last) if return_last_state else out
    chunk = default_chunk_size(L, b * d * A.shape[1]) if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ValueError(f"selective_scan: chunk_size must be >= 1, got {chunk}")
    y, last = _ChunkedScan.apply(u, delta, A, B, C, min(chunk, L))
    if D is not None:
        y = y + u.to(ct) * D.to(ct).unsqueeze(-1)
    if z is not None:
        y = y * F.silu(z.to(ct))
    out = y.to(u.dtype)
    return (out, last) if return_last_state else out


def selective_state_update(
    state: Tensor,
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    dt_bias: Tensor | None = None,
    dt_softplus: bool = False,
) -> Tensor:
    """One recurrent step (decoding): updates ``state [b, d, n]`` in place, returns ``y [b, d]``.

    Same math and argument order as ``mamba_ssm.ops.triton.selective_state_update``;
    ``x, dt, z [b, d]``, ``B, C [b, n]`` (or ``[b, g, n]``).
    """
    ct = state.dtype
    dt = dt.to(ct)
    if dt_bias is not None:
        dt = dt + dt_bias.to(ct)
    if dt_softplus:
        dt = F.softplus(dt)
    g = 1 if B.dim() == 2 else B.shape[1]
    Bx = B.to(ct).reshape(B.shape[0], g, 1, -1)
    Cx = C.to(ct).reshape(C.shape[0], g, 1, -1)
    h = rearrange(state, "b (g e) n -> b g e n", g=g)
    dtg = rearrange(dt, "b (g e) -> b g e", g=g).unsqueeze(-1)
    xg = rearrange(x.to(ct), "b (g e) -> b g e", g=g).unsqueeze(-1)
    h.mul_(torch.exp(dtg * rearrange(A.to(ct), "(g e) n -> g e n", g=g))).add_(dtg * xg * Bx)
    y = rearrange((h * Cx).sum(-1), "b g e -> b (g e)")
    if D is not None:
        y = y + x.to(ct) * D.to(ct)
    if z is not None:
        y = y * F.silu(z.to(ct))
    return y.to(x.dtype)
