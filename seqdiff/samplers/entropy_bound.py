r"""Entropy-bounded unmasking (EB-sampler, Ben-Hamu et al. 2025, arXiv 2505.24857).

Each step sorts the candidate masked positions by an error proxy :math:`e_i` of their
conditionals, smallest first (ties: leftmost), and reveals the longest prefix
:math:`i_1, \dots, i_k` with :math:`\sum_{j \le k} e_{i_j} \le \gamma`, at least one
position. With ``exclude_max=True`` the bound is the paper's
:math:`\sum_{j\le k} e_{i_j} - \max_{j \le k} e_{i_j} \le \gamma`: for the entropy proxy the
error of drawing the prefix in parallel (the KL from the block conditional to the product
of marginals, :math:`\sum H_j - H_{\text{joint}}`) is at most this sum, as
:math:`H_{\text{joint}} \ge \max_j H_j`.

Proxies (``proxy``), all in nats and >= 0: ``entropy`` (Shannon, the default),
``confidence`` :math:`-\log\max_v p(v)` (min-entropy), ``margin`` :math:`1 - (p_1 - p_2)`
(top-two gap).

What is exact: the order reads only the conditionals, so with ``gamma = 0`` (and positive
proxies) one token is revealed per step, lowest proxy first, and the sampler draws the
model's joint exactly when its conditionals are those of one joint. With ``gamma > 0`` the
prefix is drawn in parallel: not exact (the toy test shows the gap). Semi-AR blocks:
``block_size`` (:mod:`seqdiff.samplers.adaptive`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from seqdiff.samplers.adaptive import AdaptiveSampler, scatter_rows
from seqdiff.samplers.ordered import entropy
from seqdiff.vocab import VocabSpec

PROXIES = ("entropy", "confidence", "margin")


def error_proxy(logp: Tensor, proxy: str) -> Tensor:
    """The proxy of each row of ``logp [N, V]`` (float64, nats, >= 0; see the module docstring)."""
    lp = logp.double()
    if proxy == "entropy":
        return entropy(lp).clamp(min=0.0)
    if proxy == "confidence":
        return (-lp.max(-1).values).clamp(min=0.0)
    if proxy == "margin":
        top2 = lp.exp().topk(min(2, lp.shape[-1]), dim=-1).values
        gap = top2[:, 0] - (top2[:, 1] if top2.shape[1] > 1 else 0.0)
        return 1.0 - gap
    raise ValueError(f"error_proxy: proxy must be one of {PROXIES}, got {proxy!r}")


class EntropyBoundSampler(AdaptiveSampler):
    """Reveal the lowest-proxy masked positions while their summed proxy stays <= ``gamma``.

    Args:
        vocab: the model's vocabulary.
        gamma: the budget in nats, >= 0 (UNI-D2's default 0.1); 0: one token per step, exact.
        proxy: ``entropy`` | ``confidence`` | ``margin``.
        exclude_max: bound the sum minus its largest term (the paper's rule) instead of the sum.
        block_size, temperature, top_p: :class:`~seqdiff.samplers.adaptive.AdaptiveSampler`'s.
    """

    def __init__(self, vocab: VocabSpec, gamma: float = 0.1, *, proxy: str = "entropy", exclude_max: bool = False,
                 block_size: int | None = None, temperature: float = 1.0, top_p: float = 1.0) -> None:
        super().__init__(vocab, block_size=block_size, temperature=temperature, top_p=top_p)
        if not (float(gamma) >= 0.0 and math.isfinite(float(gamma))):
            raise ValueError(f"EntropyBoundSampler: gamma must be a finite number >= 0, got {gamma!r}")
        if proxy not in PROXIES:
            raise ValueError(f"EntropyBoundSampler: proxy must be one of {PROXIES}, got {proxy!r}")
        self.gamma = float(gamma)
        self.proxy = proxy
        self.exclude_max = bool(exclude_max)

    def select(self, logp: Tensor, sub: Tensor) -> Tensor:
        e = scatter_rows(sub, error_proxy(logp, self.proxy), math.inf)
        e_sorted, order = torch.sort(e, dim=1, stable=True)  # ascending; stable: ties leftmost
        total = e_sorted.cumsum(1)
        if self.exclude_max:
            total = total - e_sorted  # sorted ascending: the prefix's largest term is its last
        keep = total <= self.gamma + 1e-12
        keep[:, 0] = True  # at least one per row (every row of sub has a candidate)
        keep &= torch.isfinite(e_sorted)
        return torch.zeros_like(sub).scatter(1, order, keep) & sub
