"""An exact (or deliberately wrong) SEDD score for an enumerable toy, and SEDD's formulas
written out literally, independently of ``seqdiff.processes.sedd``.

``ScoreToy`` returns logits ``log p(x_i = y | visible) + log n`` (``n`` = the toy's V
generable tokens), which SEDD's parameterisation ``logit - log(e^sigma - 1) - log n``
turns into the true concrete score ``p / (e^sigma - 1)``. ``noise`` perturbs the
normalised part, ``mass`` adds a state-, position- and time-dependent constant to a row
(the score's total mass becomes wrong: SEDD's extra degree of freedom).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import Tensor

from seqdiff.backbones.base import Backbone, select_outputs
from seqdiff.schedules import GeometricSchedule, LogLinearSchedule
from support.toys import Toy


class ScoreToy(Backbone):
    def __init__(self, toy: Toy, noise: float = 0.0, mass: float = 0.0, time_scale: float = 0.0, seed: int = 1) -> None:
        super().__init__()
        self.toy = toy
        self.vocab_size = toy.vocab.size
        self.time_conditioning = bool(mass or time_scale)
        V, L = toy.V, toy.L
        states = torch.tensor(list(itertools.product(range(V + 1), repeat=L)), dtype=torch.long)
        table = torch.stack([toy.conditional(s) for s in states])  # [S, L, V]
        g = torch.Generator().manual_seed(seed)
        shape = table.clamp_min(1e-300).log() + noise * torch.randn(L, V, generator=g, dtype=torch.float64)
        self.table = torch.log_softmax(shape, dim=-1) + math.log(V)  # mass-conserving: lambda = 0
        self.mass_table = mass * torch.randn(len(states), L, 1, generator=g, dtype=torch.float64)
        self.mass = mass
        self.time_scale = time_scale
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.calls = 0

    def features(self, x_t, t, valid):  # pragma: no cover - forward is overridden
        raise NotImplementedError

    def head(self, h):  # pragma: no cover
        raise NotImplementedError

    def state_index(self, x_t: Tensor) -> Tensor:
        idx = torch.zeros(x_t.shape[0], dtype=torch.long)
        for i in range(x_t.shape[1]):
            idx = idx * (self.toy.V + 1) + x_t[:, i].cpu()
        return idx

    def forward(self, x_t: Tensor, t: Tensor | None = None, valid=None, output_mask=None) -> Tensor:
        self.calls += 1
        B, L = x_t.shape
        V = self.toy.V
        idx = self.state_index(x_t)
        lp = self.table[idx] + self.mass_table[idx]
        if t is not None and (self.mass or self.time_scale):
            tt = t.double().cpu().view(B, 1, 1)
            lp = lp + self.mass * (2.0 * tt - 0.8) + self.time_scale * tt * torch.arange(V, dtype=torch.float64)
        logits = torch.full((B, L, self.vocab_size), -30.0, dtype=torch.float64)
        logits[:, :, :V] = lp
        return select_outputs(logits, output_mask)


# ------------------------------------------------------------------ SEDD's formulas, literally
def sigma_and_rate(schedule, t: float) -> tuple[float, float]:
    """Total noise and its rate, from SEDD's closed forms (noise_lib.py)."""
    if isinstance(schedule, LogLinearSchedule):
        e = schedule.eps
        return -math.log1p(-(1 - e) * t), (1 - e) / (1 - (1 - e) * t)
    if isinstance(schedule, GeometricSchedule):
        lo, hi = schedule.sigma_min, schedule.sigma_max
        s = lo ** (1 - t) * hi**t
        return s, s * math.log(hi / lo)
    raise TypeError(schedule)


def q_rate(schedule, t: float) -> float:
    """Masking probability of the forward process conditioned on all-[MASK] at t = 1."""
    return -math.expm1(-sigma_and_rate(schedule, t)[0]) / -math.expm1(-sigma_and_rate(schedule, 1.0)[0])


def model_logits(model: ScoreToy, x: Tensor, rate: float, time_conditioning: bool = True) -> Tensor:
    """``[L, V]`` logits of the real tokens for one state ``x [L]`` at masking rate ``rate``."""
    t = torch.tensor([rate], dtype=torch.float32) if time_conditioning else None
    return model(x.unsqueeze(0), t)[0, :, : model.toy.V].double()


def scores(model: ScoreToy, x: Tensor, sigma: float, time_conditioning: bool = True) -> Tensor:
    """SEDD's ``scale_by_sigma`` parameterisation: exp(logit - log(e^sigma - 1) - log n)."""
    rate = -math.expm1(-sigma)
    lg = model_logits(model, x, rate, time_conditioning)
    return torch.exp(lg - math.log(math.expm1(sigma)) - math.log(model.toy.V))


def score_entropy(s: Tensor, x0: int, sigma: float) -> float:
    """SEDD's graph_lib.Absorbing.score_entropy at one masked position."""
    r = 1.0 / math.expm1(sigma)
    return float(s.sum() - r * torch.log(s[x0]) + r * (math.log(r) - 1.0))


def patterns(L: int):
    return list(itertools.product([False, True], repeat=L))


def gauss_legendre(a: float, b: float, nodes: int, pieces: int = 1):
    x, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(a, b, pieces + 1)
    for lo, hi in zip(edges[:-1], edges[1:]):
        for xi, wi in zip(x, w):
            yield lo + (hi - lo) * (xi + 1) / 2, wi * (hi - lo) / 2


def exact_bound(model: ScoreToy, schedule, x0: Tensor, *, t_min: float = 0.0, nodes: int = 24, pieces: int = 4,
                time_conditioning: bool = True) -> float:
    """The continuous bound, all from SEDD's formulas: the integral over t of
    E_Q[sum over masked of sigma'(t) * score_entropy] plus the final reveal at t_min."""
    L, mask = model.toy.L, model.toy.vocab.mask_id
    total = 0.0
    for t, w in gauss_legendre(t_min, 1.0, nodes, pieces):
        sig, dsig = sigma_and_rate(schedule, t)
        m = q_rate(schedule, t)
        for pat in patterns(L):
            k = sum(pat)
            if k == 0:
                continue
            x_t = x0.clone()
            x_t[torch.tensor(pat)] = mask
            s = scores(model, x_t, sig, time_conditioning)
            dse = sum(score_entropy(s[i], int(x0[i]), sig) for i in range(L) if pat[i])
            total += w * m**k * (1 - m) ** (L - k) * dsig * dse
    return total + final_term(model, schedule, x0, t_min, time_conditioning)


def final_term(model: ScoreToy, schedule, x0: Tensor, t_min: float, time_conditioning: bool = True) -> float:
    """E_{Q_tmin} sum over masked of -log p_theta(x0_i | x_tmin)."""
    L, mask = model.toy.L, model.toy.vocab.mask_id
    m0 = q_rate(schedule, t_min)
    if m0 == 0.0:
        return 0.0
    rate = -math.expm1(-sigma_and_rate(schedule, t_min)[0])
    out = 0.0
    for pat in patterns(L):
        k = sum(pat)
        if k == 0:
            continue
        x_t = x0.clone()
        x_t[torch.tensor(pat)] = mask
        logp = torch.log_softmax(model_logits(model, x_t, rate, time_conditioning), -1)
        out += m0**k * (1 - m0) ** (L - k) * sum(-float(logp[i, x0[i]]) for i in range(L) if pat[i])
    return out


# ------------------------------------------------------------------ the T-step chains, literally
def step_probs(model: ScoreToy, schedule, x: Tensor, i: int, t_hi: float, t_lo: float, predictor: str,
               time_conditioning: bool = True) -> Tensor:
    """``[V + 1]``: SEDD's update at masked position ``i`` (tokens, then "stays [MASK]"):
    analytic = staggered_score * transp_transition, euler = identity + dt * reverse rate;
    negative entries clamped and the vector normalised, as SEDD's Gumbel draw does."""
    sig_hi, dsig_hi = sigma_and_rate(schedule, t_hi)
    s = scores(model, x, sig_hi, time_conditioning)[i]
    if predictor == "analytic":
        dsigma = sig_hi - sigma_and_rate(schedule, t_lo)[0]
        move = math.expm1(dsigma) * s  # e^{dsigma} s_y (1 - e^{-dsigma})
    else:
        move = (t_hi - t_lo) * dsig_hi * s
    probs = torch.cat([move, (1.0 - move.sum()).reshape(1)]).clamp_min(0.0)
    return probs / probs.sum()


def chain_law(model: ScoreToy, schedule, num_steps: int, predictor: str, *, t_min: float = 0.0,
              start: Tensor | None = None, time_conditioning: bool = True) -> dict[tuple, float]:
    """Exact law of SEDD's T-step sampler with the final reveal, by enumerating every state."""
    V, L, mask = model.toy.V, model.toy.L, model.toy.vocab.mask_id
    grid = [t_min + (1 - t_min) * j / num_steps for j in range(num_steps + 1)]
    law = {tuple(start.tolist()) if start is not None else (mask,) * L: 1.0}
    for j in range(num_steps, 0, -1):
        nxt: dict[tuple, float] = {}
        for state, p in law.items():
            x = torch.tensor(state)
            masked = [i for i in range(L) if state[i] == mask]
            per = [step_probs(model, schedule, x, i, grid[j], grid[j - 1], predictor, time_conditioning) for i in masked]
            for choice in itertools.product(range(V + 1), repeat=len(masked)):
                q = p
                y = list(state)
                for i, c, pr in zip(masked, choice, per):
                    q *= float(pr[c])
                    y[i] = mask if c == V else c
                if q > 0:
                    nxt[tuple(y)] = nxt.get(tuple(y), 0.0) + q
        law = nxt
    rate0 = -math.expm1(-sigma_and_rate(schedule, t_min)[0])
    out: dict[tuple, float] = {}
    for state, p in law.items():
        masked = [i for i in range(L) if state[i] == mask]
        if not masked:
            out[state] = out.get(state, 0.0) + p
            continue
        probs = torch.softmax(model_logits(model, torch.tensor(state), rate0, time_conditioning), -1)
        for vals in itertools.product(range(V), repeat=len(masked)):
            y = list(state)
            q = p
            for i, v in zip(masked, vals):
                y[i] = v
                q *= float(probs[i, v])
            out[tuple(y)] = out.get(tuple(y), 0.0) + q
    return out


def law_vector(law: dict[tuple, float], V: int, L: int) -> Tensor:
    out = torch.zeros(V**L, dtype=torch.float64)
    for state, p in law.items():
        idx = 0
        for v in state:
            idx = idx * V + v
        out[idx] += p
    return out


def chi2_pvalue(freq: Tensor, p: Tensor, n: int) -> tuple[float, float]:
    """Pearson chi-square statistic and its p-value (cells with p > 0)."""
    keep = p > 0
    stat = float((n * (freq[keep] - p[keep]) ** 2 / p[keep]).sum())
    dof = int(keep.sum()) - 1
    pval = float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), torch.tensor(stat / 2, dtype=torch.float64)))
    return stat, pval
