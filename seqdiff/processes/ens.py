r"""Entropy-based Noise Scheduling (ENS, Diffusion-EAGS): mask low-entropy tokens first.

In the forward process of ENS, tokens are absorbed into [MASK] in order of increasing
predictive entropy, so the model is trained on the partial states that
entropy-adaptive sampling (EAGS: highest entropy revealed first) visits. With ``k``
tokens to mask, ENS masks the ``k`` lowest-entropy targets; the masked sets are nested
in ``k``. A temperature ``lambda`` relaxes the order with Gumbel noise,
:math:`\mathrm{key}_i = -H_i/\lambda + G_i`: ``lambda = 0`` is the deterministic order,
``lambda -> inf`` uniform random masking (MDLM's forward process).

The per-token entropies :math:`H_i = H(p(\cdot \mid x_{-i}))` are leave-one-out
quantities. :func:`token_entropies` approximates them with ``groups`` forward passes:
target positions are split at random into ``groups`` balanced sets and each set is masked
in turn (``groups`` at least the number of targets is exact LOO: one site per pass).
Which model supplies them is a choice made in :class:`~seqdiff.processes.MaskedDiffusion`
(``ens_entropy``): the model being trained (default; refreshed every step, so the order
follows the model as it learns, at the price of ``groups`` extra forward passes without
gradient per step), or a frozen reference: a seqdiff checkpoint or a Hugging Face MLM
directory (the paper's setting with a pretrained MLM).

**A training objective, not a bound.** ``ens_weighting="nelbo"`` weighs the ``k`` masked
targets by ``n/k`` like MDLM's count estimator, but that estimator's mean is the NELBO
only because its masked set is a *uniform* subset; here it is a function of the data (the
lowest entropies). With a perfect model on independent Bernoulli tokens the ``k``
lowest-entropy sites are masked for every ``k``, so site ``i`` of entropy rank ``r_i``
weighs :math:`\sum_{k\ge r_i} 1/k` and the mean is
:math:`\frac1n\sum_i h_i\sum_{k\ge r_i}1/k`, a third below the entropy
:math:`\frac1n\sum_i h_i` in ``tests/processes/test_ens.py``. Evaluation therefore scores ENS
models with uniform masking (the NELBO), and training logs this loss as
``train_ens_objective_bits_per_token``.
See ``docs/eags.md`` for what is confirmed from the paper and what is reconstructed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqdiff.utils.random import gumbel, uniform


@torch.no_grad()
def token_entropies(
    logprob_fn,
    x0: Tensor,
    valid: Tensor,
    targets: Tensor,
    *,
    mask_id: int,
    groups: int = 4,
    generator: torch.Generator | None = None,
    u: Tensor | None = None,
) -> Tensor:
    """Approximate leave-one-out entropies ``[B, L]`` (nats) of the ``targets``.

    ``logprob_fn(x_t, valid, positions) -> log_probs [N, V]`` at the selected positions.
    ``u``: the ``[B, L]`` uniforms that deal the groups (drawn from ``generator`` if not given).
    """
    if groups < 1:
        raise ValueError(f"token_entropies: groups must be >= 1, got {groups}")
    B, L = x0.shape
    # Balanced groups: each row's targets in a random order, dealt round-robin, so group
    # sizes differ by at most one and ``groups >= n`` targets masks one site per pass
    # (exact LOO). (Drawing a group per site independently left several sites sharing a
    # group even with ``groups = n``, contradicting the docstring.)
    if u is None:
        u = uniform((B, L), generator=generator, dtype=torch.float64)
    key = u.to(x0.device, torch.float64).masked_fill(~targets, 2.0)
    rank = torch.empty_like(x0)
    rank.scatter_(1, key.argsort(dim=1), torch.arange(L, device=x0.device).expand(B, L))
    which = rank % groups
    H = torch.zeros(B, L, dtype=torch.float32, device=x0.device)
    for g in range(groups):
        sel = targets & (which == g)
        if not sel.any():
            continue
        logp = logprob_fn(x0.masked_fill(sel, mask_id), valid, sel).float()
        H[sel] = -(logp.exp() * logp.masked_fill(torch.isinf(logp), 0.0)).sum(-1)
    return H


def ens_mask(
    entropies: Tensor,
    targets: Tensor,
    k: Tensor,
    *,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    u: Tensor | None = None,
) -> Tensor:
    """Mask the ``k[b]`` lowest-entropy targets of each row (Gumbel-relaxed by ``temperature``).

    Ties (and the ``temperature = 0`` order among equal entropies) are broken at random,
    by the ``[B, L]`` uniforms ``u`` (drawn from ``generator`` if not given).
    """
    B, L = entropies.shape
    if u is None:
        u = uniform((B, L), generator=generator, dtype=torch.float64)
    g = gumbel(u.to(entropies.device))
    H = entropies.double()
    if temperature == 0.0:
        key = -H + 1e-9 * g  # deterministic up to exact ties
    elif temperature == float("inf"):
        key = g
    else:
        key = -H / temperature + g
    key = key.masked_fill(~targets, -torch.inf)
    order = key.argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(L, device=key.device).expand(B, L))
    return targets & (rank < k.to(key.device).unsqueeze(1))
