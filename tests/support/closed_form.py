r"""Closed forms of the masked-diffusion bounds on an enumerable toy, computed by
enumeration and quadrature, independently of the library's loss and sampler code.

Everything is per sequence ``x`` of the toy and for a *model* given by its conditionals
``q(x_i = v | visible tokens)``: the toy's own (an exact denoiser) or those of
:class:`toys.ExactDenoiser` with its perturbation (softmax of ``log p + perturb`` over the
real tokens, which is what SUBS makes of its logits). ``CE(x, M)`` is the summed
cross-entropy of the masked set ``M``, ``n = L`` and ``k = |M|``.

- :func:`continuous_bound`: the continuous-time NELBO of the model for any schedule with
  :math:`\alpha(0)=1,\alpha(1)=0`: :math:`\sum_M \frac{(k-1)!(n-k)!}{n!} CE(x,M)` (the
  Beta integral :math:`\int_0^1 (1-a)^{k-1}a^{n-k}da`).
- :func:`time_expectation`: what MDLM's estimator averages to on the log-linear schedule
  :math:`\alpha(t)=1-(1-\varepsilon)t` with :math:`t\sim U[t_{min},1]` and weight ``1/t``:
  :math:`\frac{1}{1-t_{min}}\int_{t_{min}}^1 \frac1t\sum_M (1-\alpha)^k\alpha^{n-k}CE\,dt`.
- :func:`steps_expectation`: the T-step sum :math:`\sum_j \frac{\alpha_{j-1}-\alpha_j}{1-\alpha_j}
  \sum_M P_j(M) CE` with masking probability ``1 - alpha_j`` (``normalised=False``) or
  that of the sampler's schedule :math:`\tilde\alpha_j=(\alpha_j-\alpha_T)/(1-\alpha_T)`.
- :func:`sampler_nll`: :math:`-\log` of the probability that the T-step ancestral sampler
  (start all-[MASK], reveal each masked token at step ``j`` w.p.
  :math:`(\alpha_{j-1}-\alpha_j)/(1-\alpha_j)`, draw it from ``q``) outputs ``x``, by
  dynamic programming over the revealed sets; :func:`one_at_a_time_nll`: its ``T -> inf``
  limit, a uniformly random order revealing one token at a time.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: tests/ holds support/

import itertools
import math

import numpy as np
import torch

from support.toys import Toy


def masks(L: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([False, True], repeat=L)))


def model_conditional(toy: Toy, x_t: torch.Tensor, perturb: torch.Tensor | None = None) -> torch.Tensor:
    """``[L, V]`` probabilities of the model given the visible tokens of ``x_t``."""
    lp = toy.conditional(x_t).clamp_min(1e-300).log()
    if perturb is not None:
        lp = lp + perturb
    return torch.softmax(lp, dim=-1)


def ce_table(toy: Toy, perturb: torch.Tensor | None = None) -> torch.Tensor:
    """``[V**L, 2**L]``: ``CE(x, M)`` for every sequence and mask pattern (rows of :func:`masks`)."""
    ms = masks(toy.L)
    out = torch.zeros(len(toy.seqs), len(ms), dtype=torch.float64)
    for a, x in enumerate(toy.seqs):
        for m, M in enumerate(ms):
            if M.any():
                q = model_conditional(toy, x.masked_fill(M, toy.vocab.mask_id), perturb)
                out[a, m] = -q[M, x[M]].log().sum()
    return out


def continuous_bound(ce: torch.Tensor, L: int) -> torch.Tensor:
    k = masks(L).sum(1)
    coef = torch.tensor([0.0 if kk == 0 else math.factorial(kk - 1) * math.factorial(L - kk) / math.factorial(L)
                         for kk in k.tolist()], dtype=torch.float64)
    return ce @ coef


def _pattern_prob(mask_prob: float, L: int) -> torch.Tensor:
    k = masks(L).sum(1).double()
    return mask_prob**k * (1.0 - mask_prob) ** (L - k)


def time_expectation(ce: torch.Tensor, L: int, eps: float, t_min: float, nodes: int = 32) -> torch.Tensor:
    tq, wq = np.polynomial.legendre.leggauss(nodes)  # the integrand is a polynomial of degree L-1
    total = torch.zeros(ce.shape[0], dtype=torch.float64)
    for tn, wn in zip(tq, wq):
        t = t_min + (1.0 - t_min) * (tn + 1) / 2
        w = (1.0 - t_min) * wn / 2
        total += w * (1.0 / t) * (ce @ _pattern_prob((1.0 - eps) * t, L))
    return total / (1.0 - t_min)


def loglinear_grid(eps: float, T: int) -> list[float]:
    return [1.0 - (1.0 - eps) * j / T for j in range(T + 1)]


def steps_expectation(ce: torch.Tensor, L: int, eps: float, T: int, *, normalised: bool) -> torch.Tensor:
    a = loglinear_grid(eps, T)
    total = torch.zeros(ce.shape[0], dtype=torch.float64)
    for j in range(1, T + 1):
        reveal = (a[j - 1] - a[j]) / (1.0 - a[j])
        mask_prob = (1.0 - a[j]) / (1.0 - a[T]) if normalised else 1.0 - a[j]
        total += reveal * (ce @ _pattern_prob(mask_prob, L))
    return total


def sampler_nll(toy: Toy, eps: float, T: int, perturb: torch.Tensor | None = None) -> torch.Tensor:
    """``-log P(sampler outputs x)`` for every sequence of the toy."""
    L, a = toy.L, loglinear_grid(eps, T)
    subsets = masks(L)  # True = revealed
    index = {tuple(s.tolist()): i for i, s in enumerate(subsets)}
    out = torch.zeros(len(toy.seqs), dtype=torch.float64)
    for n, x in enumerate(toy.seqs):
        # q(x_i | x restricted to the revealed set S), for every S
        cond = torch.stack([model_conditional(toy, x.masked_fill(~S, toy.vocab.mask_id), perturb)[torch.arange(L), x]
                            for S in subsets])
        prob = torch.zeros(len(subsets), dtype=torch.float64)
        prob[index[(False,) * L]] = 1.0
        for j in range(T, 0, -1):
            r = (a[j - 1] - a[j]) / (1.0 - a[j])
            new = torch.zeros_like(prob)
            for s, S in enumerate(subsets):
                if prob[s] == 0:
                    continue
                free = (~S).nonzero().flatten().tolist()
                for pick in itertools.product([False, True], repeat=len(free)):
                    S2 = S.clone()
                    p = prob[s]
                    for i, take in zip(free, pick):
                        p = p * (r * cond[s, i] if take else 1.0 - r)
                        S2[i] = S2[i] or take
                    new[index[tuple(S2.tolist())]] += p
            prob = new
        out[n] = -prob[index[(True,) * L]].log()
    return out


def one_at_a_time_nll(toy: Toy, perturb: torch.Tensor | None = None) -> torch.Tensor:
    L = toy.L
    out = torch.zeros(len(toy.seqs), dtype=torch.float64)
    orders = list(itertools.permutations(range(L)))
    for n, x in enumerate(toy.seqs):
        total = 0.0
        for order in orders:
            S = torch.zeros(L, dtype=torch.bool)
            p = 1.0
            for i in order:
                p *= float(model_conditional(toy, x.masked_fill(~S, toy.vocab.mask_id), perturb)[i, x[i]])
                S[i] = True
            total += p / len(orders)
        out[n] = -math.log(total)
    return out


if __name__ == "__main__":  # the figures quoted in seqdiff/processes/masked.py: python tests/support/closed_form.py
    from support.toys import ExactDenoiser

    toy = Toy(3, 3, seed=4)
    for noise in (0.0, 0.3):
        perturb = ExactDenoiser(toy, noise=noise).perturb if noise else None
        ce = ce_table(toy, perturb)
        bound = continuous_bound(ce, toy.L)
        print(f"denoiser noise {noise}: E_p[bound] {float(toy.p @ bound):.6f} nats, entropy {toy.entropy():.6f}, "
              f"E_p[NLL of the one-at-a-time sampler] {float(toy.p @ one_at_a_time_nll(toy, perturb)):.6f}")
        for t_min in (0.0, 1e-3):
            e = time_expectation(ce, toy.L, 1e-3, t_min)
            gap = 1 - e / bound
            print(f"  time, eps=1e-3, t_min={t_min:g}: E_p {float(toy.p @ e):.6f}, below the bound by "
                  f"{1 - float(toy.p @ e) / float(toy.p @ bound):.4%} (per sequence {float(gap.min()):.4%} to {float(gap.max()):.4%})")
        for T in (16, 128):
            nb = steps_expectation(ce, toy.L, 1e-3, T, normalised=True)
            raw = steps_expectation(ce, toy.L, 1e-3, T, normalised=False)
            nll = sampler_nll(toy, 1e-3, T, perturb)
            gap = 1 - raw / nb
            print(f"  T={T}: bound E_p {float(toy.p @ nb):.6f} >= sampler NLL E_p {float(toy.p @ nll):.6f} "
                  f"(min per sequence {float((nb - nll).min()):+.2e}); alpha_j-masking E_p {float(toy.p @ raw):.6f}, "
                  f"{float(gap.min()):.4%} to {float(gap.max()):.4%} below, min vs NLL {float((raw - nll).min()):+.2e}")
