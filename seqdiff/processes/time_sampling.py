"""Low-variance draws of the diffusion time (or of the number of masked tokens).

``stratified_uniform`` is MDLM's "antithetic" sampling: one uniform offset shared by the
whole batch, ``u_i = (U + i) / n``. Passing ``offset``/``total`` stratifies over a
larger *global* batch (all ranks and accumulation steps, as DUO does) and returns this
slice of it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqdiff.utils.rng import uniform  # one definition for processes and samplers alike


def stratified_uniform(
    n: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    offset: int = 0,
    total: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """``n`` draws in ``(0, 1]``, one per stratum of ``[0, 1]`` split into ``total`` parts.

    Each draw is marginally uniform; together they cover ``[0, 1]`` evenly, which
    removes most of the between-sample variance of a Monte-Carlo NELBO.
    """
    total = n if total is None else total
    if offset < 0 or offset + n > total:
        raise ValueError(f"stratified_uniform: slice [{offset}, {offset + n}) outside [0, {total})")
    u0 = uniform((), generator=generator, dtype=dtype)
    idx = torch.arange(offset, offset + n, dtype=dtype)
    u = (idx + u0) / total
    # rand() is in [0, 1): map to (0, 1] so that t = 0 (infinite NELBO weight) never occurs.
    u = 1.0 - u
    return u.to(device)


def order_statistic_mask(
    valid: Tensor, k: Tensor, *, generator: torch.Generator | None = None, u: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Mask exactly ``k[b]`` of the valid positions of row ``b``, uniformly at random.

    Returns ``(masked, rate)`` where ``rate[b]`` is the ``k[b]``-th smallest of the row's
    uniforms. Masking the positions whose uniform is ``<= rate`` is the same event as
    "mask each token independently with probability ``rate``" conditioned on exactly
    ``k`` masked, so ``rate ~ Beta(k, n - k + 1)``: the masking rate consistent with the
    count, which a time-conditioned denoiser needs.
    """
    B, L = valid.shape
    u = uniform((B, L), generator=generator, device=valid.device) if u is None else u.to(valid.device)
    u = u.masked_fill(~valid, 2.0)
    sorted_u, _ = torch.sort(u, dim=1)
    rate = sorted_u.gather(1, (k - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    masked = (u <= rate.unsqueeze(1)) & valid & (k > 0).unsqueeze(1)
    return masked, rate
