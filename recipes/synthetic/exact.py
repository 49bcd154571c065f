r"""Sample quality judged against a Markov source's exact law (no judge model, no real-vs-real).

Every reference number here comes from the chain's transition matrix and stationary law
(:class:`~seqdiff_recipes.synthetic.markov.MarkovSource`); nothing is estimated from the
training data. What is *estimated* is the samples' side, and each such number says so.

* **True NLL against the window entropy.** The samples' mean per-token NLL under the chain
  estimates the cross-entropy :math:`H(Q, p)/L` of the model's sampling law :math:`Q`
  (95% normal CI over samples). Exact samples have expectation exactly the window entropy
  :math:`H(p)/L`, with the exact per-token spread :meth:`MarkovSource.nll_moments` beside
  the samples' own: a collapsed sampler scores *below* the window entropy (low NLL alone
  rewards collapse), and a lower-than-exact spread shows it too.
* **k-mer law divergence** (k = 1..6): the samples' pooled empirical frequencies of
  overlapping k-mers within each row, :math:`\hat p_k`, against the exact law :math:`q_k`
  (:meth:`MarkovSource.kmer_law`; every position has that marginal because the chain is
  stationary). :math:`KL(\hat p_k \| q_k)` and :math:`JS(\hat p_k, q_k)` in bits.
  Exact samples of the same size are not at zero (a 4^6-bin histogram of a few thousand
  k-mers is noisy), so the *floor* beside each is the divergence for exact samples:
  its mean and 95th percentile over ``replicates`` sets of ``n`` rows of length ``L``
  drawn from the true chain with a fixed seed (**simulated**, not analytic: overlapping
  k-mers of a Markov chain are dependent, so the i.i.d. :math:`(d-1)/2N` approximation
  does not hold), and the Monte-Carlo p-value :math:`(1 + \#\{floor \ge obs\})/(R + 1)`.
* **Motif frequency**: overlapping occurrences per kb of each planted motif in the
  samples against the exact expectation :math:`1000\,(L-\ell+1)\,P(\text{motif})/L`
  (:meth:`MarkovSource.string_probability`), with the central 95% range of that rate
  for exact samples of the same size (the same simulated replicates).
* **Entropy of the sampling law** :math:`H(Q)` (per token). Two one-sided 97.5%
  confidence bounds, ``sampling_entropy_lcb_bits`` <= H(Q)/L <= ``sampling_entropy_ucb_bits``
  jointly with probability >= 95%:

  - *upper*: :math:`H(Q) \le H(Q, p)` exactly (the gap is :math:`KL(Q\|p) \ge 0`); the
    cross-entropy is estimated by the mean NLL, so the upper end of its 95% normal CI is
    an upper confidence bound (asymptotic: normal approximation of a mean of ``n`` NLLs);
  - *lower*: :math:`H(Q) \ge H_2(Q) = -\log \sum_x Q(x)^2`. Among ``floor(n/2)``
    disjoint pairs of samples each is identical with probability exactly
    :math:`c = \sum_x Q(x)^2`, independently, so the Clopper-Pearson upper limit
    :math:`\bar c` of the identical-pair count gives :math:`H(Q) \ge -\log \bar c`
    (exact binomial, no approximation). It certifies at most
    :math:`-\log_2(1 - 0.025^{2/n}) \approx \log_2(n/7.4)` bits *per sequence*, and no
    method that sees only ``n`` samples can certify much more than :math:`2\log_2 n`
    (a law spread over far more than :math:`n^2` sequences shows no repeat either way):
    at this scale the bound only detects collapse onto a handful of sequences. No plug-in
    estimate of :math:`H(Q)` is reported (with ``n`` distinct samples it is :math:`\log n`
    whatever :math:`Q` is).

Rows holding symbols the source never emits are left out by the caller, so every number
is then about the sampling law conditioned on emitting only the source's symbols.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from seqdiff.eval.likelihood import Z95
from seqdiff.utils.seeding import generator

LN2 = math.log(2.0)
KMAX = 6
MAX_BINS = 1 << 20  # skip k where V^k bins would not fit comfortably
FLOOR_REPLICATES = 200
FLOOR_SEED = 15  # the floors' draws: generator(source seed, FLOOR_SEED, n, L)


def kmer_counts(sym: Tensor, k: int, V: int) -> Tensor:
    """Counts ``[V^k]`` (float64) of the overlapping k-mers inside each row of ``sym [N, L]``."""
    codes = torch.zeros(sym.shape[0], sym.shape[1] - k + 1, dtype=torch.long)
    for j in range(k):
        codes = codes * V + sym[:, j : sym.shape[1] - k + 1 + j].long()
    return torch.bincount(codes.flatten(), minlength=V**k).double()


def _replicate_counts(codes: Tensor, k: int, V: int, R: int) -> Tensor:
    """``[R, V^k]`` counts of k-mer ``codes [N, L-k+1]`` in ``R`` equal consecutive blocks of rows."""
    N = codes.shape[0]
    block = (torch.arange(N) // (N // R) * V**k)[:, None]
    return torch.bincount((codes + block).flatten(), minlength=R * V**k).double().reshape(R, V**k)


def kl_bits(counts: Tensor, q: Tensor) -> Tensor:
    r""":math:`KL(\hat p \| q)` in bits along the last axis (``inf`` where :math:`\hat p > 0 = q`)."""
    p = counts / counts.sum(-1, keepdim=True)
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1) / LN2


def js_bits(counts: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence (bits, in [0, 1]) along the last axis."""
    p = counts / counts.sum(-1, keepdim=True)
    m = 0.5 * (p + q)

    logm = m.log()  # m > 0 wherever p or q is

    def kl(a: Tensor) -> Tensor:  # xlogy: 0 log 0 = 0
        return (torch.special.xlogy(a, a) - torch.where(a > 0, a * logm, torch.zeros_like(a))).sum(-1)

    return 0.5 * (kl(p) + kl(q.expand_as(p))) / LN2


def occurrences(sym: Tensor, motif: Sequence[int]) -> Tensor:
    """Overlapping occurrences of ``motif`` in each row of ``sym [N, L]`` -> ``[N]``."""
    ell = len(motif)
    if sym.shape[1] < ell:
        return torch.zeros(sym.shape[0], dtype=torch.long)
    win = sym.unfold(1, ell, 1)  # [N, L - ell + 1, ell]
    return (win == torch.tensor(list(motif), dtype=sym.dtype)).all(-1).sum(1)


def clopper_pearson_upper(successes: int, trials: int, alpha: float = 0.05) -> float:
    """One-sided exact upper ``1 - alpha`` limit of a binomial proportion (bisection on the CDF)."""
    if trials <= 0:
        return 1.0
    if successes >= trials:
        return 1.0
    if successes == 0:
        return 1.0 - alpha ** (1.0 / trials)

    def cdf(p: float) -> float:  # P(X <= successes | p)
        return sum(math.comb(trials, i) * p**i * (1 - p) ** (trials - i) for i in range(successes + 1))

    lo, hi = successes / trials, 1.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) > alpha else (lo, mid)
    return hi


def entropy_bounds_bits(nll_bits: Tensor, sym: Tensor) -> dict:
    """The two confidence bounds on the sampling law's entropy per token (module docstring)."""
    n, L = sym.shape
    out: dict = {}
    if n >= 2:
        se = float(nll_bits.std(unbiased=True)) / math.sqrt(n)
        out["sampling_entropy_ucb_bits"] = float(nll_bits.mean()) + Z95 * se
    rows = [tuple(r) for r in sym.tolist()]
    pairs = n // 2
    same = sum(rows[2 * i] == rows[2 * i + 1] for i in range(pairs))
    if pairs:
        c_up = clopper_pearson_upper(same, pairs, alpha=0.025)
        out["sampling_entropy_lcb_bits"] = -math.log2(c_up) / L + 0.0  # + 0.0: no -0.0
    out["identical_disjoint_pairs"] = same
    out["distinct_samples"] = len(set(rows))
    return out


class ExactScorer:
    """Scores symbol rows ``[N, L]`` (0..V-1) against a :class:`MarkovSource` and its motifs.

    Args:
        source: the chain.
        motifs: ``{name: symbol indices}`` of the planted motifs.
        replicates: exact-sample sets simulated for each floor.
        seed: seeds the floors' simulation (with the sample count and length).
    """

    def __init__(self, source, motifs: dict[str, Sequence[int]] | None = None, *, replicates: int = FLOOR_REPLICATES,
                 seed: int = 0) -> None:
        self.source = source
        self.motifs = {name: [int(a) for a in m] for name, m in (motifs or {}).items()}
        self.replicates = int(replicates)
        self.seed = int(seed)
        self._laws: dict[int, Tensor] = {}
        self._floors: dict[tuple[int, int], dict] = {}

    def law(self, k: int) -> Tensor:
        if k not in self._laws:
            self._laws[k] = self.source.kmer_law(k)
        return self._laws[k]

    def ks(self, L: int) -> list[int]:
        V = self.source.V
        return [k for k in range(1, min(KMAX, L) + 1) if V**k <= MAX_BINS]

    def floors(self, n: int, L: int) -> dict:
        """Divergences and motif rates of ``replicates`` exact sample sets of ``n`` x ``L`` (cached)."""
        key = (n, L)
        if key not in self._floors:
            R, V = self.replicates, self.source.V
            x = self.source.sample(R * n, L, generator(self.seed, FLOOR_SEED, n, L))
            out: dict = {"kl": {}, "js": {}, "motif_per_kb": {}}
            codes = torch.zeros(R * n, L + 1, dtype=torch.long)
            for k in self.ks(L):  # k-mer codes from the (k-1)-mer codes: one pass per k
                codes = codes[:, :-1] * V + x[:, k - 1 :]
                c = _replicate_counts(codes, k, V, R)
                out["kl"][k], out["js"][k] = kl_bits(c, self.law(k)), js_bits(c, self.law(k))
            for name, m in self.motifs.items():
                per_row = occurrences(x, m).double().reshape(R, n)
                out["motif_per_kb"][name] = per_row.sum(1) * 1000.0 / (n * L)
            self._floors[key] = out
        return self._floors[key]

    def score(self, sym: Tensor, nll_bits: Tensor) -> dict:
        """Everything the module docstring lists, for rows ``sym`` with per-token NLLs ``nll_bits``."""
        n, L = sym.shape
        src = self.source
        out: dict = {}
        if n == 0 or L < max(src.k, 1):
            return out
        mean, var = src.nll_moments(L)
        hw = mean / (L * LN2)
        sd = float(nll_bits.std(unbiased=True)) if n >= 2 else math.nan
        ci = Z95 * sd / math.sqrt(n) if n >= 2 else math.inf
        m = float(nll_bits.mean())
        out.update({
            "sample_true_nll_ci95_bits": ci,
            "window_entropy_bits": hw,
            "sample_nll_minus_window_entropy_bits": m - hw,
            "sample_true_nll_sd_bits": sd,
            "exact_nll_sd_bits": math.sqrt(var) / (L * LN2),
        })
        fl = self.floors(n, L)
        tables = {name: {} for name in ("kmer_kl_bits", "kmer_kl_floor_bits", "kmer_kl_floor_q95_bits", "kmer_js_bits",
                                        "kmer_js_floor_bits", "kmer_js_floor_q95_bits", "kmer_js_pvalue")}
        R = self.replicates
        for k in self.ks(L):
            c = kmer_counts(sym, k, src.V)
            kl, js = float(kl_bits(c, self.law(k))), float(js_bits(c, self.law(k)))
            fkl, fjs = fl["kl"][k], fl["js"][k]
            tables["kmer_kl_bits"][f"k{k}"] = kl
            tables["kmer_kl_floor_bits"][f"k{k}"] = float(fkl.mean())
            tables["kmer_kl_floor_q95_bits"][f"k{k}"] = float(fkl.quantile(0.95))
            tables["kmer_js_bits"][f"k{k}"] = js
            tables["kmer_js_floor_bits"][f"k{k}"] = float(fjs.mean())
            tables["kmer_js_floor_q95_bits"][f"k{k}"] = float(fjs.quantile(0.95))
            tables["kmer_js_pvalue"][f"k{k}"] = (1 + int((fjs >= js).sum())) / (R + 1)
        out.update(tables)
        if self.motifs:
            rate, exact, lo, hi = {}, {}, {}, {}
            for name, mo in self.motifs.items():
                rate[name] = float(occurrences(sym, mo).sum()) * 1000.0 / (n * L)
                exact[name] = 1000.0 * max(L - len(mo) + 1, 0) * src.string_probability(mo) / L
                f = fl["motif_per_kb"][name]
                lo[name], hi[name] = float(f.quantile(0.025)), float(f.quantile(0.975))
            out.update({"motif_per_kb": rate, "motif_per_kb_exact": exact,
                        "motif_per_kb_exact_samples_lo95": lo, "motif_per_kb_exact_samples_hi95": hi})
        out.update(entropy_bounds_bits(nll_bits, sym))
        out["floor_replicates"] = R
        return out
