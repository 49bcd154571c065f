"""Exact laws by enumeration, computed independently of the library's loss and sampler code:
the continuous and T-step NELBO of an enumerable toy (by quadrature / summation over masks)
and the output law of the ancestral sampler (by enumerating its reveal orders)."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from seqdiff.processes import MaskedDiffusion
from seqdiff.samplers import AncestralSampler
from support.toys import ExactDenoiser, Toy


def all_masks(L: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([False, True], repeat=L)))


def exact_continuous_nelbo(process: MaskedDiffusion, model, toy: Toy, x: torch.Tensor, nodes: int = 48) -> float:
    """Integral over t of E_{x_t ~ q(.|x)} of our `loss_at` integrand, evaluated exactly."""
    tq, wq = np.polynomial.legendre.leggauss(nodes)
    tq = torch.tensor((tq + 1) / 2, dtype=torch.float64)
    wq = torch.tensor(wq / 2, dtype=torch.float64)
    masks = all_masks(toy.L)
    x0 = x.expand(len(masks), -1)
    x_t = x0.masked_fill(masks, toy.vocab.mask_id)
    k = masks.sum(1).double()
    total = 0.0
    for t, w in zip(tq, wq):
        a = process.schedule.alpha(t)
        prob = (1 - a) ** k * a ** (toy.L - k)
        integrand = process.loss_at(model, x0, x_t, t.expand(len(masks))).double()
        total += float(w * (prob * integrand).sum())
    return total


def exact_discrete_nelbo(process: MaskedDiffusion, model, toy: Toy, x: torch.Tensor) -> float:
    """sum_j E_{q(x_tj|x)} [(a_{j-1} - a_j)/(1 - a_j) * sum_masked CE], by enumeration."""
    T = process.num_steps
    masks = all_masks(toy.L)
    x0 = x.expand(len(masks), -1)
    x_t = x0.masked_fill(masks, toy.vocab.mask_id)
    k = masks.sum(1).double()
    ce = process.masked_cross_entropy(model, x0, x_t, torch.ones_like(x0, dtype=torch.bool), None).double()
    total = 0.0
    for j in range(1, T + 1):
        t, s = torch.tensor(j / T, dtype=torch.float64), torch.tensor((j - 1) / T, dtype=torch.float64)
        a_t, a_s = process.schedule.alpha(t), process.schedule.alpha(s)
        prob = (1 - a_t) ** k * a_t ** (toy.L - k)
        total += float(((a_s - a_t) / (1 - a_t) * prob * ce).sum())
    return total


def exact_sampler_distribution(toy: Toy, model: ExactDenoiser, sampler: AncestralSampler,
                               alpha: list[float] | None = None) -> torch.Tensor:
    """P_T(x) of the T-step ancestral sampler, by enumerating every assignment of reveal
    steps and every value draw (independently of the sampler's code); ``alpha``: the grid's
    alphas ``alpha_0 = 1 .. alpha_T`` if not the sampler's schedule at ``j / T``."""
    T, L, V = sampler.num_steps, toy.L, toy.V
    if alpha is None:
        alpha = [float(sampler.schedule.alpha(torch.tensor(j / T, dtype=torch.float64))) for j in range(T + 1)]
    alpha = [float(a) for a in alpha]
    alpha[0] = 1.0
    p_step = [(alpha[j - 1] - alpha[j]) / (1 - alpha[T]) for j in range(1, T + 1)]
    out = torch.zeros(V**L, dtype=torch.float64)

    def recurse(x: list[int], steps: tuple[int, ...], j: int, prob: float) -> None:
        if j == 0:
            idx = 0
            for v in x:
                idx = idx * V + v
            out[idx] += prob
            return
        now = [i for i in range(L) if steps[i] == j]
        if not now:
            recurse(x, steps, j - 1, prob)
            return
        cond = toy.conditional(torch.tensor(x))
        for values in itertools.product(range(V), repeat=len(now)):
            q = prob
            for i, v in zip(now, values):
                q *= float(cond[i, v])
            y = list(x)
            for i, v in zip(now, values):
                y[i] = v
            recurse(y, steps, j - 1, q)

    for steps in itertools.product(range(1, T + 1), repeat=L):
        prob = 1.0
        for s in steps:
            prob *= p_step[s - 1]
        recurse([toy.vocab.mask_id] * L, steps, T, prob)
    return out


def empirical(tokens: torch.Tensor, V: int) -> torch.Tensor:
    idx = torch.zeros(tokens.shape[0], dtype=torch.long)
    for i in range(tokens.shape[1]):
        idx = idx * V + tokens[:, i]
    return torch.bincount(idx, minlength=V ** tokens.shape[1]).double() / tokens.shape[0]


def chi2_ok(freq: torch.Tensor, p: torch.Tensor, n: int) -> bool:
    # Pearson chi-square with a generous 5-sigma threshold (deterministic seeds).
    keep = p > 0
    stat = float((n * (freq[keep] - p[keep]) ** 2 / p[keep]).sum())
    dof = int(keep.sum()) - 1
    return stat < dof + 5 * (2 * dof) ** 0.5
