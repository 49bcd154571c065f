"""A slow float64 reference for the selective scan: a literal double loop (tests, benchmarks).

Kept deliberately naive -- one Python iteration per time step and per state, no chunking,
no hand-written gradient (autograd differentiates the loop) -- so it shares no code and
no cleverness with :mod:`seqdiff.ops.selective_scan`, which it checks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def selective_scan_ref(
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
):
    """mamba-ssm's ``selective_scan_ref`` semantics, same signature, in float64."""
    f64 = torch.float64
    u64, delta = u.to(f64), delta.to(f64)
    if delta_bias is not None:
        delta = delta + delta_bias.to(f64).unsqueeze(-1)
    if delta_softplus:
        delta = F.softplus(delta)
    b, d, L = u.shape
    n = A.shape[1]
    if B.dim() == 3:
        B, C = B.unsqueeze(1), C.unsqueeze(1)
    rep = d // B.shape[1]
    Bd = B.to(f64).repeat_interleave(rep, dim=1)  # [b, d, n, l]
    Cd = C.to(f64).repeat_interleave(rep, dim=1)
    A = A.to(f64)
    h = [u64.new_zeros(b, d) for _ in range(n)]
    ys = []
    for t in range(L):
        y_t = u64.new_zeros(b, d)
        for s in range(n):
            h[s] = torch.exp(delta[:, :, t] * A[:, s]) * h[s] + delta[:, :, t] * Bd[:, :, s, t] * u64[:, :, t]
            y_t = y_t + Cd[:, :, s, t] * h[s]
        ys.append(y_t)
    y = torch.stack(ys, dim=-1) if ys else u64.new_zeros(b, d, 0)
    if D is not None:
        y = y + u64 * D.to(f64).unsqueeze(-1)
    if z is not None:
        y = y * F.silu(z.to(f64))
    last = torch.stack(h, dim=-1)
    return (y, last) if return_last_state else y
