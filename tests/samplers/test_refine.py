"""EAGS revisiting (seqdiff/samplers/refine.py) on a 3-site binary toy whose denoiser returns
the exact conditionals: the exact law of each kernel (its transition matrix, enumerated
here independently of the sampler code) and the empirical law of the real sampler.

- ``refine_mode="mh"`` leaves the joint invariant (exactly, and TV <= 0.01 empirically after
  1, 3 and 10 sweeps, for entropy and confidence scores, exact or grouped scoring), and
  converges to it from the least likely state along the exact law of the chain.
- ``refine_mode="remask"`` (the paper-style heuristic) does not: TV > 0.05, as documented.
- Both rank by uncertainty whatever the reveal order; NFE and calls count every pass.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from seqdiff.samplers import Condition
from seqdiff.samplers.ordered import OrderedSampler
from seqdiff.vocab import VocabSpec
from support.toys import Toy

TOY = Toy(2, 3, seed=12, concentration=0.6)  # joint over 8 states, min p = 0.0075
LAM = 0.3  # sharp enough that selection without the MH correction is off by TV > 0.09
N = 200_000  # empirical TV of 8 cells: sampling error ~0.003, well below 0.01
SWEEPS = (1, 3, 10)


class TableDenoiser:
    """The toy's exact conditionals p(x_i | unmasked tokens) for every masked
    configuration, by enumeration, looked up in one indexing op; counts what it is asked."""

    def __init__(self, toy: Toy) -> None:
        V, L = toy.V, toy.L
        codes = torch.tensor(list(itertools.product(range(V + 1), repeat=L)))
        self.table = torch.full((len(codes), L, toy.vocab.size), -math.inf, dtype=torch.float64)
        for c, x_t in enumerate(codes):
            self.table[c, :, :V] = toy.conditional(x_t).log()
        self.powers = (V + 1) ** torch.arange(L - 1, -1, -1)
        self.copies = self.calls = 0

    def __call__(self, x, rate, valid, positions):
        self.copies += x.shape[0]
        self.calls += 1
        return self.table[(x * self.powers).sum(1)][positions]


# ---------------------------------------------------------------- the exact kernels, by hand
STATES = [tuple(s) for s in TOY.seqs.tolist()]


def conditional(x: tuple, masked: list[int]) -> torch.Tensor:
    x_t = torch.tensor(x)
    x_t[masked] = TOY.vocab.mask_id
    return TOY.conditional(x_t)


def uncertainties(x: tuple, score: str, groups: int | None) -> list[float]:
    """Site j scored with its group masked (groups: j mod g, None: alone)."""
    L = TOY.L
    grp = [j if groups is None else j % groups for j in range(L)]
    out = []
    for j in range(L):
        p = conditional(x, [k for k in range(L) if grp[k] == grp[j]])[j]
        out.append(float(-(p * p.log()).sum()) if score == "entropy" else -math.log(float(p.max())))
    return out


def mh_kernel(score: str, lam: float, groups: int | None = None, correct: bool = True) -> torch.Tensor:
    """One sweep (3 MH steps) of the entropy-adaptive Metropolis-within-Gibbs kernel
    (``correct=False``: the same selection, every proposal accepted)."""
    K = torch.zeros(len(STATES), len(STATES), dtype=torch.float64)
    for a, x in enumerate(STATES):
        w = [math.exp(v / lam) for v in uncertainties(x, score, groups)]
        for i in range(TOY.L):
            q = w[i] / sum(w)
            p = conditional(x, [i])[i]
            for y in range(TOY.V):
                x2 = x[:i] + (y,) + x[i + 1 :]
                w2 = [math.exp(v / lam) for v in uncertainties(x2, score, groups)]
                acc = min(1.0, (w2[i] / sum(w2)) / q) if correct else 1.0
                K[a, STATES.index(x2)] += q * float(p[y]) * acc
                K[a, a] += q * float(p[y]) * (1.0 - acc)
    return torch.linalg.matrix_power(K, TOY.L)


def remask_kernel(score: str) -> torch.Tensor:
    """One sweep of the heuristic with one site (refine_fraction 0.1 of 3): the most
    uncertain site (ties: leftmost) redrawn from its leave-one-out conditional."""
    K = torch.zeros(len(STATES), len(STATES), dtype=torch.float64)
    for a, x in enumerate(STATES):
        u = uncertainties(x, score, None)
        i = max(range(TOY.L), key=lambda j: (u[j], -j))
        p = conditional(x, [i])[i]
        for y in range(TOY.V):
            K[a, STATES.index(x[:i] + (y,) + x[i + 1 :])] += float(p[y])
    return K


def expected_acceptance(score: str, lam: float, groups: int | None) -> float:
    """E_pi of one MH step's acceptance probability (a proposal equal to x counts as accepted)."""
    total = 0.0
    for a, x in enumerate(STATES):
        w = [math.exp(v / lam) for v in uncertainties(x, score, groups)]
        for i in range(TOY.L):
            p = conditional(x, [i])[i]
            for y in range(TOY.V):
                x2 = x[:i] + (y,) + x[i + 1 :]
                w2 = [math.exp(v / lam) for v in uncertainties(x2, score, groups)]
                total += float(TOY.p[a]) * w[i] / sum(w) * float(p[y]) * min(1.0, w2[i] / sum(w2) / (w[i] / sum(w)))
    return total


def tv(a: torch.Tensor, b: torch.Tensor) -> float:
    return 0.5 * float((a - b).abs().sum())


def law(x: torch.Tensor) -> torch.Tensor:
    idx = (x * TOY.V ** torch.arange(TOY.L - 1, -1, -1)).sum(1)
    return torch.bincount(idx, minlength=len(STATES)).double() / x.shape[0]


def run(sampler: OrderedSampler, start: torch.Tensor | None = None, seed: int = 0):
    """The real sampler on N rows: from all-[MASK] (3 reveal steps of one site each sample
    the joint exactly), or from ``start`` with the reveal phase skipped. Returns the law
    after each sweep, the output and the denoiser."""
    den = TableDenoiser(TOY)
    sampler.loo_chunk = N * TOY.L  # one denoiser call per pass (speed; results do not depend on it)
    state = sampler.start(N, TOY.L, generator=torch.Generator().manual_seed(seed))
    if start is not None:
        state.x[:] = start
        state.step = sampler.num_steps
    laws = {}
    while not state.done:
        state = sampler.step(state, den)
        if state.step >= sampler.num_steps:
            laws[state.step - sampler.num_steps] = law(state.x)
    return laws, state, sampler.trace(state), den


# ---------------------------------------------------------------- mh: exact
@pytest.mark.parametrize("order,score,groups", [("entropy_high", "entropy", None), ("confidence", "confidence", None),
                                                ("entropy_high", "entropy", 2)])
def test_mh_refinement_keeps_the_joint(order, score, groups):
    K = mh_kernel(score, LAM, groups)
    for s in SWEEPS:  # the exact law of the chain started at the joint
        assert tv(TOY.p @ torch.linalg.matrix_power(K, s), TOY.p) < 1e-12
    # the selection alone (no MH correction) would not keep it: the test can tell
    wrong = mh_kernel(score, LAM, groups, correct=False)
    assert tv(TOY.p @ torch.linalg.matrix_power(wrong, 10), TOY.p) > 0.09

    s = OrderedSampler(TOY.vocab, num_steps=TOY.L, order=order, refine_sweeps=max(SWEEPS), refine_mode="mh",
                       refine_temperature=LAM, refine_groups=groups)
    assert s.refine_score == score  # the reveal order's uncertainty measure
    laws, _, trace, _ = run(s)
    assert tv(laws[0], TOY.p) <= 0.01  # the reveal phase alone
    for k in SWEEPS:
        assert tv(laws[k], TOY.p) <= 0.01, (k, tv(laws[k], TOY.p))
    acc = trace["refine_accept"]
    assert acc.shape == (max(SWEEPS), N)
    assert float(acc.mean()) == pytest.approx(expected_acceptance(score, LAM, groups), abs=0.005)


@pytest.mark.parametrize("order,score", [("entropy_high", "entropy"), ("confidence", "confidence")])
def test_mh_refinement_converges_to_the_joint_from_the_least_likely_state(order, score):
    worst = torch.tensor(STATES[int(TOY.p.argmin())])
    start = torch.zeros(len(STATES), dtype=torch.float64)
    start[int(TOY.p.argmin())] = 1.0
    K = mh_kernel(score, LAM)
    exact = {k: start @ torch.linalg.matrix_power(K, k) for k in (1, 3, 10, 30)}
    assert tv(exact[1], TOY.p) > 0.3 and tv(exact[10], TOY.p) < 0.01 and tv(exact[30], TOY.p) < 1e-6

    s = OrderedSampler(TOY.vocab, num_steps=TOY.L, order=order, refine_sweeps=10, refine_mode="mh", refine_temperature=LAM)
    laws, _, _, _ = run(s, start=worst, seed=1)
    for k in (1, 3, 10):  # the real chain follows the exact law away from stationarity too
        assert tv(laws[k], exact[k]) <= 0.01, (k, tv(laws[k], exact[k]))
    assert tv(laws[10], TOY.p) <= 0.015


# ---------------------------------------------------------------- remask: the heuristic
@pytest.mark.parametrize("order,score", [("entropy_high", "entropy"), ("confidence", "confidence")])
def test_remask_heuristic_does_not_keep_the_joint(order, score):
    K = remask_kernel(score)
    exact = {k: TOY.p @ torch.linalg.matrix_power(K, k) for k in SWEEPS}
    assert all(tv(exact[k], TOY.p) > 0.1 for k in SWEEPS), {k: tv(exact[k], TOY.p) for k in SWEEPS}
    s = OrderedSampler(TOY.vocab, num_steps=TOY.L, order=order, refine_sweeps=max(SWEEPS), refine_mode="remask")
    laws, _, trace, _ = run(s)
    assert "refine_accept" not in trace
    for k in SWEEPS:  # the code is the kernel above, and drifts off the joint
        assert tv(laws[k], exact[k]) <= 0.01 and tv(laws[k], TOY.p) > 0.05


def test_remask_with_one_uniformly_chosen_site_is_random_scan_gibbs():
    s = OrderedSampler(TOY.vocab, num_steps=TOY.L, order="random", refine_sweeps=10, refine_mode="remask")
    assert s.refine_score == "uniform"
    laws, _, _, _ = run(s)
    assert all(tv(laws[k], TOY.p) <= 0.01 for k in SWEEPS)


# ---------------------------------------------------------------- ranking by uncertainty
V = 5
VOCAB = VocabSpec(size=V + 2, mask_id=V, pad_id=V + 1)


def fixed_dists(L: int) -> torch.Tensor:
    """A state-independent distribution per position over tokens 0..V-2 (token V-1 has
    probability 0, so a site holding V-1 changes if and only if it is redrawn)."""
    g = torch.Generator().manual_seed(4)
    sharpness = torch.linspace(0.2, 3.0, L, dtype=torch.float64).unsqueeze(1)
    logits = torch.randn(L, V, generator=g, dtype=torch.float64) * sharpness
    logits[:, V - 1] = -math.inf
    return torch.log_softmax(logits[torch.randperm(L, generator=g)], -1)


@pytest.mark.parametrize("order", ["entropy_high", "entropy_low", "confidence", "margin"])
def test_remask_resamples_the_most_uncertain_sites_whatever_the_reveal_order(order):
    L = 10
    dists = fixed_dists(L)

    def den(x, rate, valid, positions):
        out = torch.full((int(positions.sum()), VOCAB.size), -math.inf, dtype=torch.float64)
        out[:, :V] = dists[positions.nonzero(as_tuple=True)[1]]
        return out

    s = OrderedSampler(VOCAB, num_steps=2, order=order, refine_sweeps=1, refine_mode="remask", refine_fraction=0.3)
    state = s.start(4, L, generator=torch.Generator().manual_seed(0))
    state.x[:] = V - 1
    state.step = s.num_steps
    state = s.step(state, den)
    p = dists.exp()
    top2 = p.topk(2, -1).values
    uncertainty = {"entropy": -(p * dists.masked_fill(p == 0, 0)).sum(-1), "confidence": -p.max(-1).values,
                   "margin": top2[:, 1] - top2[:, 0]}[s.refine_score]
    want = sorted(uncertainty.argsort(descending=True)[:3].tolist())
    for row in state.x:
        assert sorted((row != V - 1).nonzero().flatten().tolist()) == want


# ---------------------------------------------------------------- bookkeeping
def _bookkeeping_run(groups, chunk):
    den = TableDenoiser(TOY)
    # rows with 3, 1 and 0 free sites
    cond = Condition(torch.tensor([[0, 1, 1], [1, 0, 1], [0, 0, 0]]),
                     torch.tensor([[False, False, False], [True, False, True], [True, True, True]]))
    s = OrderedSampler(TOY.vocab, num_steps=3, refine_sweeps=4, refine_mode="mh", refine_temperature=LAM,
                       refine_groups=groups)
    s.loo_chunk = chunk
    state = s.start(3, TOY.L, cond, generator=torch.Generator().manual_seed(0))
    while state.step < s.num_steps:
        state = s.step(state, den)
    before = state.nfe.clone(), state.calls, den.copies, den.calls
    while not state.done:
        state = s.step(state, den)
    return state, s.trace(state), den, before, cond


@pytest.mark.parametrize("groups", [None, 2])
def test_nfe_and_calls_count_every_pass(groups):
    state, trace, den, (nfe0, calls0, copies0, invocations0), cond = _bookkeeping_run(groups, chunk=2)
    extra = state.nfe - nfe0
    assert int(extra.sum()) == den.copies - copies0  # every copy the denoiser saw, and no more
    assert state.calls - calls0 == den.calls - invocations0  # every invocation (2 copies each)
    # per row: g passes to score the start, then per MH step one proposal pass plus g - 1
    # re-scoring passes when the proposal differs from the current token
    n = torch.tensor([3, 1, 0])
    g = n if groups is None else n.clamp(max=groups)
    assert bool(((extra >= g + 4 * n) & (extra <= g + 4 * n * g)).all()), extra
    assert int(extra[1]) == 5 and int(extra[2]) == 0 and torch.equal(state.x[2], cond.tokens[2])
    acc = trace["refine_accept"]  # [sweeps, rows]
    assert acc.shape == (4, 3) and torch.isnan(acc[:, 2]).all() and bool(((acc[:, 0] >= 0) & (acc[:, 0] <= 1)).all())
    assert (acc[:, 1] == 1).all()  # one free site: q = 1, every proposal accepted
    # the chunk size changes the number of calls only
    same, _, _, _, _ = _bookkeeping_run(groups, chunk=10**6)
    assert torch.equal(same.x, state.x) and torch.equal(same.nfe, state.nfe) and same.calls < state.calls


@pytest.mark.parametrize("groups", [None, 2])
@pytest.mark.parametrize("fixed", [[False] * 5, [True, False, True, False, False]])
def test_each_moved_proposal_costs_g_passes(groups, fixed):
    """A denoiser that, asked about the current state, predicts the other binary token, and
    a sure 0 otherwise: every proposal moves, every entropy is 0 (uniform selection, all
    accepted). The cost is then exactly g passes to score the start and g per MH step
    (one proposal pass, g - 1 re-scoring passes at the proposed state)."""
    L, sweeps = 5, 3
    s = OrderedSampler(TOY.vocab, num_steps=1, refine_sweeps=sweeps, refine_mode="mh", refine_groups=groups)
    state = s.start(1, L, Condition(torch.zeros(L, dtype=torch.long), torch.tensor(fixed)),
                    generator=torch.Generator().manual_seed(0))
    state.x[:] = 0
    state.step = s.num_steps

    def other(x, rate, valid, positions):
        c, pos = positions.nonzero(as_tuple=True)
        current = ((x == state.x) | positions).all(1)[c]  # this copy is of the current state
        token = torch.where(current, 1 - state.x[0, pos], torch.zeros_like(pos))
        out = torch.full((len(c), TOY.vocab.size), -math.inf, dtype=torch.float64)
        out[torch.arange(len(c)), token] = 0.0
        return out

    while not state.done:
        state = s.step(state, other)
    n = L - sum(fixed)
    g = n if groups is None else min(n, groups)
    assert int(state.nfe[0]) == g + sweeps * n * g
    assert (s.trace(state)["refine_accept"] == 1).all()
    assert not state.x[0, torch.tensor(fixed)].any()


def test_refine_options_are_validated():
    with pytest.raises(ValueError, match="refine_mode"):
        OrderedSampler(VOCAB, refine_mode="gibbs")
    with pytest.raises(ValueError, match="refine_score"):
        OrderedSampler(VOCAB, refine_score="most_confident")
    with pytest.raises(ValueError, match="refine_temperature"):
        OrderedSampler(VOCAB, refine_temperature=0.0)
    with pytest.raises(ValueError, match="refine_groups"):
        OrderedSampler(VOCAB, refine_groups=0)
