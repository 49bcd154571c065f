r"""Revisiting filled positions after the reveal phase of :class:`OrderedSampler`: an exact
kernel (``refine_mode="mh"``) and the paper-style heuristic (``refine_mode="remask"``).

Notation. ``x`` is a row's ``n`` filled free positions (condition and padding never
change); :math:`\pi(x_i \mid x_{-i})` is the denoiser's prediction at site ``i`` with only
that site masked (leave-one-out, LOO). When these are the conditionals of one joint
:math:`\pi` (an exact model; a learned MLM's need not be consistent with any joint, and then
no kernel of this kind has a known invariant law), Gibbs sampling of :math:`\pi` is the
reading of EAGS as inference in the D-cMRF. :math:`u_i(x)` is an *uncertainty* score of
site ``i`` (higher = less certain), computed from the denoiser with site ``i``'s group
masked (``refine_groups``: ``None`` is one site per group, i.e. exact LOO):

- ``entropy``: :math:`H(\pi(\cdot \mid x_{-i}))` (Shannon or Rényi, nats);
- ``confidence``: :math:`-\log \max_v \pi(v \mid x_{-i})` (the min-entropy, nats): the
  least confident site is the most uncertain;
- ``margin``: :math:`-(p_{(1)} - p_{(2)})`, minus the gap of the top two probabilities;
- ``uniform``: 0 for every site (random scan).

``mh``: entropy-adaptive Metropolis-within-Gibbs, exact.
    One MH step picks site ``i`` with probability
    :math:`q_i(x) = e^{u_i(x)/\lambda} / Z(x)`, :math:`Z(x) = \sum_j e^{u_j(x)/\lambda}`
    (``refine_temperature`` :math:`\lambda`; ``inf`` is uniform), proposes
    :math:`x' = x` with :math:`x_i \leftarrow y \sim \pi(\cdot \mid x_{-i})`, and accepts with
    :math:`a = \min(1, q_i(x')/q_i(x))`. Detailed balance: a move :math:`x \to x' \ne x` changes
    site ``i`` only, so only site ``i`` can make it, and

    .. math:: \pi(x)\,K(x, x') = \pi(x_{-i})\,\pi(x_i \mid x_{-i})\,\pi(y \mid x_{-i})\,
              \min\{q_i(x), q_i(x')\},

    which is symmetric in :math:`(x_i, y)`: :math:`\pi K = \pi` for *any* selection rule
    that is a deterministic function of the state with :math:`q_i > 0` (the entropy-first
    preference and the joint both kept). With fixed groups, :math:`u` stays such a function
    (the groups are drawn once, from positions only). Because :math:`x'_{-i} = x_{-i}`, the
    pass that scores site ``i``'s group is the same at :math:`x` and :math:`x'`, so
    :math:`u_i(x') = u_i(x)` and :math:`a = \min\{1, Z(x)/Z(x')\}`: the other groups are
    re-scored at :math:`x'` (``g - 1`` passes, ``n - 1`` for exact LOO) and become the cached
    scores if :math:`x'` is accepted. Cost per MH step: one LOO pass (the proposal), plus
    ``g - 1`` when :math:`y \ne x_i` (:math:`x' = x` is accepted at no cost); the scores of
    the starting state cost ``g`` passes once. A *sweep* is ``n`` MH steps of each row.
    The trace records each row's acceptance rate per sweep (``refine_accept``; a proposal
    equal to the current token counts as accepted).

    Draw temperature :math:`\tau` (``temperature``) proposes from
    :math:`\pi(\cdot \mid x_{-i})^{1/\tau}`, the conditional of the tempered joint
    :math:`\propto \pi^{1/\tau}`, which the kernel then leaves invariant. ``top_p < 1``
    truncates each conditional: no invariant law is claimed. ``temperature=0`` proposes the
    argmax: a greedy optimiser, not a sampler.

``remask``: the paper-style heuristic, **not** a Gibbs sampler of :math:`\pi`.
    Each sweep scores every filled site by LOO (``n`` passes), takes the
    :math:`k = \lceil f\,n \rceil` most uncertain (``refine_fraction`` ``f``; ties: leftmost)
    and resamples them at once, each from its own LOO conditional on the same state: the
    :math:`k` new values come from :math:`\prod_{i \in S} \pi(x_i \mid x_{-i})`, not from the
    block conditional :math:`\pi(x_S \mid x_{-S})`. Even with :math:`k = 1` the site is the
    argmax of a state-dependent score, so the kernel does not leave :math:`\pi` invariant
    (``tests/samplers/test_refine.py`` measures the drift). The one exact case is
    ``refine_score="uniform"`` with :math:`k = 1`: random-scan Gibbs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from seqdiff.utils.rng import uniform
from seqdiff.samplers.base import Denoiser, SamplerState, sample_categorical

if TYPE_CHECKING:  # the sampler holds the options; this module holds the kernels
    from seqdiff.samplers.ordered import OrderedSampler

REFINE_MODES = ("mh", "remask")
REFINE_SCORES = ("entropy", "confidence", "margin", "uniform")


def masked_passes(denoiser: Denoiser, x: Tensor, valid: Tensor, masks: Tensor, mask_id: int,
                  chunk: int) -> tuple[Tensor, int]:
    """Copy ``j`` of ``x [C, L]`` with ``masks[j]`` set to [MASK], predicted at ``masks[j]``.

    Returns the log-probabilities ``[N, V]`` in the order of ``masks.nonzero()`` and the
    number of denoiser invocations (``chunk`` copies each). The rate given to the denoiser
    is each copy's masked fraction."""
    outs, calls = [], 0
    for i in range(0, x.shape[0], chunk):
        m = masks[i : i + chunk]
        xt = x[i : i + chunk].masked_fill(m, mask_id)
        rate = m.sum(1).double() / max(1, x.shape[1])
        outs.append(denoiser(xt, rate, valid[i : i + chunk], m))
        calls += 1
    if not outs:
        return torch.zeros(0, 0, device=x.device), 0
    return torch.cat(outs), calls


def fixed_groups(sites: Tensor, groups: int | None) -> Tensor:
    """``[B, L]`` group of each site (-1 elsewhere): the ``j``-th site of a row (by position)
    in group ``j mod g``. ``None`` (or ``g >= n``) gives every site its own group (exact LOO).
    A function of the positions only, so the scores stay a function of the state."""
    rank = sites.long().cumsum(1) - 1
    which = rank if groups is None else rank % groups
    return torch.where(sites, which, torch.full_like(which, -1))


def _score_groups(s: "OrderedSampler", state: SamplerState, denoiser: Denoiser, x: Tensor, rows: Tensor,
                  group: Tensor, u: Tensor, skip: Tensor | None = None) -> None:
    """Write into ``u [R, L]`` the scores of rows ``rows`` of state ``x [R, L]`` for every
    group (of ``group [R, L]``) except ``skip [R]``; count the passes in ``state``."""
    R, L = x.shape
    n_groups = group.max(1).values + 1  # [R]
    G = int(n_groups.max()) if R else 0
    k = torch.arange(G, device=x.device).expand(R, G)
    keep = k < n_groups.unsqueeze(1)
    if skip is not None:
        keep &= k != skip.unsqueeze(1)
    copy_row, copy_k = keep.nonzero(as_tuple=True)
    if len(copy_row) == 0:
        return
    masks = group[copy_row] == copy_k.unsqueeze(1)
    logp, calls = masked_passes(denoiser, x[copy_row], state.valid[rows][copy_row], masks, s.vocab.mask_id, s.loo_chunk)
    c, pos = masks.nonzero(as_tuple=True)
    u[copy_row[c], pos] = s.uncertainty(logp, s.refine_score)
    state.nfe.index_add_(0, rows[copy_row], torch.ones_like(copy_row))
    state.calls += calls


def _log_z(u: Tensor, sites: Tensor, lam: float) -> Tensor:
    return torch.logsumexp(_logits(u, sites, lam), dim=1)


def _logits(u: Tensor, sites: Tensor, lam: float) -> Tensor:
    z = torch.zeros_like(u) if math.isinf(lam) else u / lam
    return z.masked_fill(~sites, -math.inf)


def mh_sweep(s: "OrderedSampler", state: SamplerState, denoiser: Denoiser) -> None:
    """One sweep (``n`` MH steps per row) of the exact kernel (module docstring)."""
    ex, x = state.extra, state.x
    B, L = x.shape
    sites = ex["free"] & (x != s.vocab.mask_id)
    n = sites.sum(1)
    lam = s.refine_temperature
    if "refine_u" not in ex:  # scores of the state the sweeps start from, kept up to date below
        ex["refine_group"] = fixed_groups(sites, s.refine_groups)
        ex["refine_u"] = torch.zeros(B, L, dtype=torch.float64, device=x.device)
        rows = (n > 0).nonzero(as_tuple=True)[0]
        u0 = ex["refine_u"][rows]
        _score_groups(s, state, denoiser, x[rows], rows, ex["refine_group"][rows], u0)
        ex["refine_u"][rows] = u0
    group, u = ex["refine_group"], ex["refine_u"]
    accepted = torch.zeros(B, dtype=torch.float64)
    for t in range(int(n.max()) if B else 0):
        rows = (n > t).nonzero(as_tuple=True)[0]
        R = len(rows)
        site = sample_categorical(_logits(u[rows], sites[rows], lam), generator=state.generator)
        one = torch.zeros(R, L, dtype=torch.bool, device=x.device)
        one[torch.arange(R, device=x.device), site] = True
        logp, calls = masked_passes(denoiser, x[rows], state.valid[rows], one, s.vocab.mask_id, s.loo_chunk)
        state.nfe[rows] += 1
        state.calls += calls
        y = sample_categorical(logp, generator=state.generator, temperature=s.temperature, top_p=s.top_p)
        moved = y != x[rows, site]
        accepted[rows[~moved].cpu()] += 1  # x' = x: accepted, nothing to score
        mv, i, y = rows[moved], site[moved], y[moved]
        if len(mv) == 0:
            continue
        x_new = x[mv].clone()
        x_new[torch.arange(len(mv), device=x.device), i] = y
        u_new = u[mv].clone()  # the group of site i keeps its scores (module docstring)
        g_i = group[mv, i]
        _score_groups(s, state, denoiser, x_new, mv, group[mv], u_new, skip=g_i)
        log_a = (_log_z(u[mv], sites[mv], lam) - _log_z(u_new, sites[mv], lam)).clamp(max=0.0)
        coin = torch.stack([log_a, torch.log1p(-log_a.exp())], dim=1)  # [accept, reject]
        ok = sample_categorical(coin, generator=state.generator) == 0
        x[mv[ok]] = x_new[ok]
        u[mv[ok]] = u_new[ok]
        accepted[mv[ok].cpu()] += 1
    rate = accepted / n.cpu().double()  # one proposal per MH step; NaN: a row with no free site
    ex["refine_accept"].append(rate)


def remask_sweep(s: "OrderedSampler", state: SamplerState, denoiser: Denoiser) -> None:
    """One sweep of the heuristic: the ``k`` most uncertain filled sites resampled at once
    from their LOO conditionals on the same state (module docstring: not Gibbs)."""
    sites = state.extra["free"] & (state.x != s.vocab.mask_id)
    logp, _ = s.loo(state, denoiser, sites, count=True)
    if s.refine_score == "uniform":
        score = uniform((logp.shape[0],), generator=state.generator, device=logp.device, dtype=torch.float64)
    else:
        score = s.uncertainty(logp, s.refine_score)
    k = torch.ceil(s.refine_fraction * sites.sum(1).double()).long()
    chosen = s._choose(sites, score, k)
    pick = chosen[sites]
    state.x[chosen] = sample_categorical(logp[pick], generator=state.generator, temperature=s.temperature, top_p=s.top_p)
