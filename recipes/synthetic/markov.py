r"""A seeded order-:math:`k` Markov source with an exactly known entropy rate.

The state is the last :math:`k` symbols (:math:`V^k` states). Each row of the
transition matrix is drawn from a symmetric Dirichlet (smaller ``concentration`` =>
more predictable). *Planted motifs* are written into the chain itself: for every
position :math:`j\ge k` of a motif, the context formed by the :math:`k` motif symbols
before it sends probability ``motif_strength`` to the motif's next symbol. The source
stays an order-:math:`k` chain, so its entropy rate is still exact:

.. math:: h = -\sum_s \pi(s) \sum_a P(a\mid s)\log P(a\mid s),

with :math:`\pi` the stationary distribution of the :math:`k`-gram chain. A window of
length :math:`L` drawn from the stationary chain has entropy
:math:`H(X_{1:k}) + (L-k)h`: the first :math:`k` symbols have no context, so the
honest per-token target for a model trained on length-:math:`L` windows is
:meth:`MarkovSource.window_entropy`, slightly above :math:`h`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor


class MarkovSource:
    """Order-``order`` Markov chain over ``alphabet_size`` symbols.

    Args:
        alphabet_size: number of symbols ``V`` (4 for DNA).
        order: context length ``k >= 0`` (0 is i.i.d.).
        seed: seeds the transition matrix.
        concentration: symmetric Dirichlet parameter of each transition row.
        motifs: symbol-index sequences to plant (each longer than ``order``).
        motif_strength: probability mass sent to the motif continuation.
    """

    def __init__(
        self,
        alphabet_size: int = 4,
        order: int = 3,
        seed: int = 0,
        concentration: float = 0.5,
        motifs: Sequence[Sequence[int]] = (),
        motif_strength: float = 0.9,
    ) -> None:
        if alphabet_size < 2 or order < 0:
            raise ValueError(f"MarkovSource: need alphabet_size >= 2 and order >= 0, got {alphabet_size}, {order}")
        if concentration <= 0 or not 0.0 <= motif_strength <= 1.0:
            raise ValueError("MarkovSource: concentration must be > 0 and motif_strength in [0, 1]")
        self.V, self.k = alphabet_size, order
        self.num_states = alphabet_size**order
        gen = torch.Generator().manual_seed(seed)
        gamma = torch._standard_gamma(torch.full((self.num_states, self.V), float(concentration), dtype=torch.float64), generator=gen)
        P = gamma / gamma.sum(-1, keepdim=True)
        for motif in motifs:
            motif = [int(a) for a in motif]
            if len(motif) <= order or any(not 0 <= a < alphabet_size for a in motif):
                raise ValueError(f"MarkovSource: motif {motif} must be longer than order {order} and use symbols < {alphabet_size}")
            for j in range(order, len(motif)):
                s = self.state_index(motif[j - order : j])
                P[s] = (1.0 - motif_strength) * P[s]
                P[s, motif[j]] += motif_strength
        self.transition = P
        self.stationary = self._stationary()

    # ------------------------------------------------------------------ exact quantities
    def state_index(self, context: Sequence[int]) -> int:
        s = 0
        for a in context:
            s = s * self.V + int(a)
        return s

    def state_transition_matrix(self) -> Tensor:
        """``[V^k, V^k]`` matrix of the k-gram chain (dense; fine for V^k <= a few thousand)."""
        S = self.num_states
        M = torch.zeros(S, S, dtype=torch.float64)
        states = torch.arange(S)
        for a in range(self.V):
            nxt = (states * self.V + a) % S if self.k > 0 else torch.zeros_like(states)
            M[states, nxt] += self.transition[:, a]
        return M

    def _stationary(self) -> Tensor:
        if self.k == 0:
            return torch.ones(1, dtype=torch.float64)
        M = self.state_transition_matrix()
        # pi M = pi with sum(pi) = 1: replace one (redundant) balance equation by the
        # normalisation. Dirichlet rows are strictly positive, so the chain is
        # irreducible and the solution unique.
        A = M.T - torch.eye(self.num_states, dtype=torch.float64)
        A[-1, :] = 1.0
        b = torch.zeros(self.num_states, dtype=torch.float64)
        b[-1] = 1.0
        pi = torch.linalg.solve(A, b).clamp_min(0.0)
        return pi / pi.sum()

    def entropy_rate(self) -> float:
        """Exact entropy rate in nats per symbol."""
        P = self.transition
        row_h = -(P * torch.log(P.clamp_min(1e-300))).sum(-1)
        return float((self.stationary * row_h).sum())

    def window_entropy(self, length: int) -> float:
        """Exact entropy per symbol (nats) of a stationary window of ``length`` symbols."""
        if length < self.k:
            raise ValueError(f"MarkovSource: window length {length} shorter than order {self.k}")
        pi = self.stationary
        h0 = float(-(pi * torch.log(pi.clamp_min(1e-300))).sum()) if self.k > 0 else 0.0
        return (h0 + (length - self.k) * self.entropy_rate()) / length

    def kmer_law(self, m: int) -> Tensor:
        r"""Exact law ``[V^m]`` of the ``m`` symbols at any position of the stationary chain.

        The chain starts from :math:`\pi` and :math:`\pi` is invariant, so every window
        position has the same marginal; index ``sum_j x_j V^(m-1-j)`` (first symbol most
        significant, as :meth:`state_index`). For :math:`m \le k` it is a marginal of
        :math:`\pi`; beyond, each symbol multiplies in its transition (planted motifs
        included, since they are part of ``transition``):

        .. math:: q_{m+1}(y\,a) = q_m(y)\,P(a \mid \text{last } k \text{ symbols of } y).
        """
        if m < 1:
            raise ValueError(f"MarkovSource.kmer_law: m must be >= 1, got {m}")
        V, k, S = self.V, self.k, self.num_states
        if k == 0:
            q = torch.ones(1, dtype=torch.float64)
            for _ in range(m):
                q = (q[:, None] * self.transition[0][None, :]).flatten()
            return q
        if m <= k:  # sum out the last k - m symbols of the state
            return self.stationary.reshape(V**m, V ** (k - m)).sum(1)
        q = self.stationary
        for _ in range(m - k):
            ctx = torch.arange(q.numel()) % S
            q = (q[:, None] * self.transition[ctx]).flatten()
        return q

    def string_probability(self, seq: Sequence[int]) -> float:
        """Exact probability that the stationary chain reads ``seq`` at a given position
        (the entry of :meth:`kmer_law` without building all ``V^m`` of them)."""
        seq = [int(a) for a in seq]
        if not seq or any(not 0 <= a < self.V for a in seq):
            raise ValueError(f"MarkovSource.string_probability: need symbols in 0..{self.V - 1}, got {seq}")
        k = self.k
        if len(seq) <= k:
            return float(self.kmer_law(len(seq))[self.state_index(seq)])
        p = float(self.stationary[self.state_index(seq[:k])]) if k else 1.0
        for j in range(k, len(seq)):
            p *= float(self.transition[self.state_index(seq[j - k : j]), seq[j]])
        return p

    def nll_moments(self, length: int) -> tuple[float, float]:
        r"""Exact mean and variance of :math:`-\log p(X_{1:L})` (nats) for a stationary window.

        The mean is :math:`L` times :meth:`window_entropy`. The variance (the varentropy)
        comes from a forward recursion over the k-gram states :math:`s` carrying, with
        the cost :math:`c(s, a) = -\log P(a \mid s)` of each step,

        .. math:: a_j(s) = P(S_j = s),\quad m_j(s) = E[N_j 1\{S_j = s\}],\quad
                  v_j(s) = E[N_j^2 1\{S_j = s\}],

        where :math:`N_j` is the cost so far; a step to :math:`t` adds :math:`c`, so
        :math:`v \mathrel{+}= 2 c\, m + c^2 a` along each transition.
        """
        if length < max(self.k, 1):
            raise ValueError(f"MarkovSource: window length {length} shorter than order {self.k}")
        S, V = self.num_states, self.V
        logpi = torch.log(self.stationary.clamp_min(1e-300))
        a = self.stationary.clone()
        m = a * -logpi if self.k else torch.zeros_like(a)
        v = a * logpi**2 if self.k else torch.zeros_like(a)
        P = self.transition
        cost = -torch.log(P.clamp_min(1e-300))
        nxt = (torch.arange(S)[:, None] * V + torch.arange(V)[None, :]) % S if self.k else torch.zeros(S, V, dtype=torch.long)
        for _ in range(length - self.k):
            flow = a[:, None] * P  # [S, V]: mass moving from s by symbol a
            mflow = m[:, None] * P + flow * cost
            vflow = v[:, None] * P + 2 * cost * (m[:, None] * P) + cost**2 * flow
            a = torch.zeros(S, dtype=torch.float64).index_add_(0, nxt.flatten(), flow.flatten())
            m = torch.zeros(S, dtype=torch.float64).index_add_(0, nxt.flatten(), mflow.flatten())
            v = torch.zeros(S, dtype=torch.float64).index_add_(0, nxt.flatten(), vflow.flatten())
        mean, second = float(m.sum()), float(v.sum())
        return mean, max(second - mean**2, 0.0)

    # ------------------------------------------------------------------ sampling / scoring
    def sample(self, num_chains: int, length: int, generator: torch.Generator | None = None) -> Tensor:
        """``[num_chains, length]`` symbols, each chain started from the stationary law."""
        if length < max(self.k, 1):
            raise ValueError(f"MarkovSource: length {length} must be >= order {self.k}")
        out = torch.empty(num_chains, length, dtype=torch.long)
        if self.k > 0:
            s = torch.multinomial(self.stationary, num_chains, replacement=True, generator=generator)
            for j in range(self.k):  # unpack the start k-gram into symbols, most significant first
                out[:, j] = (s // self.V ** (self.k - 1 - j)) % self.V
        else:
            s = torch.zeros(num_chains, dtype=torch.long)
        cum = self.transition.cumsum(-1)
        cum[:, -1] = 1.0
        for i in range(self.k, length):
            u = torch.rand(num_chains, generator=generator, dtype=torch.float64)
            a = torch.searchsorted(cum[s], u.unsqueeze(1)).squeeze(1).clamp(max=self.V - 1)
            out[:, i] = a
            s = (s * self.V + a) % self.num_states if self.k > 0 else s
        return out

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact :math:`\\log p(x)` (nats) of each row of ``x [B, L]`` under the stationary chain."""
        x = x.long()
        B, L = x.shape
        if L < self.k:
            raise ValueError(f"MarkovSource: sequences of length {L} shorter than order {self.k}")
        s = torch.zeros(B, dtype=torch.long)
        for j in range(self.k):
            s = s * self.V + x[:, j]
        lp = torch.log(self.stationary[s]) if self.k > 0 else torch.zeros(B, dtype=torch.float64)
        logP = torch.log(self.transition)
        for i in range(self.k, L):
            lp = lp + logP[s, x[:, i]]
            s = (s * self.V + x[:, i]) % self.num_states if self.k > 0 else s
        return lp

    def describe(self) -> dict:
        h = self.entropy_rate()
        return {"order": self.k, "alphabet_size": self.V, "entropy_rate_nats": h, "entropy_rate_bits": h / math.log(2)}
