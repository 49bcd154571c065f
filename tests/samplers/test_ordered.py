"""Score-ordered unmasking and EAGS: exact choices on known entropies, bookkeeping,
random-scan Gibbs validity of uniformly chosen one-site refinement, and the energy against a
hand computation (tests/samplers/test_refine.py covers the entropy-adaptive refinement modes)."""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.processes import MaskedDiffusion
from seqdiff.samplers import Condition
from seqdiff.samplers.ordered import OrderedSampler, entropy
from seqdiff.schedules import CosineSchedule, LogLinearSchedule
from seqdiff.vocab import VocabSpec
from support.toys import ExactDenoiser, Toy

V = 4
VOCAB = VocabSpec(size=V + 2, mask_id=V, pad_id=V + 1)


def fixed_distributions(L: int, seed: int = 0) -> torch.Tensor:
    """One categorical per position, with clearly different entropies."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(L, V, generator=g) * torch.linspace(0.1, 4.0, L).unsqueeze(1)
    return torch.log_softmax(logits[torch.randperm(L, generator=g)], -1)


class Recorder:
    """Denoiser returning a fixed distribution per position; records what it was asked."""

    def __init__(self, dists: torch.Tensor):
        self.dists = dists
        self.asked = []

    def __call__(self, x, rate, valid, positions):
        self.asked.append(positions.clone())
        cols = positions.nonzero(as_tuple=True)[1]
        out = torch.full((len(cols), VOCAB.size), float("-inf"))
        out[:, :V] = self.dists[cols]
        return out


@pytest.mark.parametrize("order", ["entropy_high", "entropy_low", "confidence", "left_to_right"])
def test_each_step_reveals_exactly_the_best_scored_masked_positions(order):
    L, T = 12, 4
    dists = fixed_distributions(L)
    h = entropy(dists.double())
    conf = dists.max(-1).values
    key = {"entropy_high": h, "entropy_low": -h, "confidence": conf.double(), "left_to_right": -torch.arange(L).double()}[order]
    expected_order = key.argsort(descending=True).tolist()
    den = Recorder(dists)
    s = OrderedSampler(VOCAB, LogLinearSchedule(), num_steps=T, order=order)
    state = s.start(2, L, generator=torch.Generator().manual_seed(0))
    counts = s.reveal_counts(torch.tensor([L, L]))[:, 0].tolist()
    assert sum(counts) == L and counts == [3, 3, 3, 3]
    revealed = []
    while not state.done:
        before = state.x == VOCAB.mask_id
        state = s.step(state, den)
        now = (before & (state.x != VOCAB.mask_id))[0].nonzero().flatten().tolist()
        revealed.append(sorted(now))
    pos = 0
    for k, got in zip(counts, revealed):
        assert got == sorted(expected_order[pos : pos + k])
        pos += k
    assert not (state.x == VOCAB.mask_id).any()


def test_fixed_tokens_never_change_and_counts_follow_the_schedule():
    L = 20
    den = Recorder(fixed_distributions(L, seed=1))
    cond = Condition.from_segments(L, {0: [1, 2, 3], 10: [0, 0]})
    for sched in (LogLinearSchedule(), CosineSchedule()):
        s = OrderedSampler(VOCAB, sched, num_steps=5, order="entropy_high")
        out = s.sample(den, 3, L, cond, generator=torch.Generator().manual_seed(1))
        assert (out.tokens[:, cond.fixed] == cond.tokens[cond.fixed]).all()
        assert not (out.tokens == VOCAB.mask_id).any() and out.steps == 5
        counts = s.reveal_counts(torch.tensor([15]))[:, 0]
        grid = torch.arange(6, dtype=torch.float64) / 5
        a = sched.alpha(1 - grid)
        expect = torch.ceil((a - a[0]) / (1 - a[0]) * 15 - 1e-9)
        expect[-1] = 15
        assert counts.tolist() == (expect[1:] - expect[:-1]).long().tolist()
    # temperature 0: deterministic
    s = OrderedSampler(VOCAB, num_steps=3, temperature=0.0)
    a = s.sample(den, 2, L, generator=torch.Generator().manual_seed(1)).tokens
    b = s.sample(den, 2, L, generator=torch.Generator().manual_seed(2)).tokens
    assert torch.equal(a, b)


def test_uniform_one_site_refinement_is_gibbs_sampling_of_the_joint():
    """Single-site random-scan LOO sweeps with the exact conditionals converge to p(x): the
    remask heuristic with a uniform score and one site per sweep, its one exact case."""
    toy = Toy(2, 3, seed=12, concentration=0.6)
    model = ExactDenoiser(toy)
    proc = MaskedDiffusion(toy.vocab)
    s = OrderedSampler(toy.vocab, num_steps=1, order="random", refine_sweeps=25, refine_fraction=0.3,
                       refine_mode="remask")  # one site per update
    n = 3000
    out = s.sample(proc.denoiser(model), n, toy.L, generator=torch.Generator().manual_seed(3))
    idx = torch.zeros(n, dtype=torch.long)
    for i in range(toy.L):
        idx = idx * toy.V + out.tokens[:, i]
    freq = torch.bincount(idx, minlength=toy.V**toy.L).double() / n
    tv = 0.5 * float((freq - toy.p).abs().sum())
    assert tv < 0.03, tv
    # without sweeps (one step from all-[MASK]) it is the product of marginals: far off
    s0 = OrderedSampler(toy.vocab, num_steps=1, order="random")
    out0 = s0.sample(proc.denoiser(model), n, toy.L, generator=torch.Generator().manual_seed(3))
    idx0 = torch.zeros(n, dtype=torch.long)
    for i in range(toy.L):
        idx0 = idx0 * toy.V + out0.tokens[:, i]
    tv0 = 0.5 * float((torch.bincount(idx0, minlength=toy.V**toy.L).double() / n - toy.p).abs().sum())
    assert tv0 > 2 * tv


def test_energy_is_the_negative_pseudo_log_likelihood():
    toy = Toy(3, 4, seed=2)
    model = ExactDenoiser(toy)
    proc = MaskedDiffusion(toy.vocab)
    s = OrderedSampler(toy.vocab, num_steps=2, track_energy="pll")
    out = s.sample(proc.denoiser(model), 5, toy.L, generator=torch.Generator().manual_seed(0))
    energy = out.trace["energy"]
    assert energy.shape == (2, 5)
    for b, x in enumerate(out.tokens):
        by_hand = 0.0
        for i in range(toy.L):  # p(x_i | x_{-i}) by enumeration
            x_t = x.clone()
            x_t[i] = toy.vocab.mask_id
            by_hand -= math.log(float(toy.conditional(x_t)[i, x[i]]))
        assert float(energy[-1, b]) == pytest.approx(by_hand, rel=1e-4)


def test_entropy_sum_of_masked_positions_decreases_along_eags():
    toy = Toy(3, 4, seed=5)
    model = ExactDenoiser(toy)
    proc = MaskedDiffusion(toy.vocab)
    s = OrderedSampler(toy.vocab, num_steps=4, order="entropy_high")
    out = s.sample(proc.denoiser(model), 200, toy.L, generator=torch.Generator().manual_seed(0))
    mean = out.trace["entropy_sum"].mean(1)
    assert all(b <= a + 1e-9 for a, b in zip(mean, mean[1:])), mean


def test_renyi_entropy_and_validation():
    logp = torch.log_softmax(torch.randn(5, 7, dtype=torch.float64), -1)
    p = logp.exp()
    assert torch.allclose(entropy(logp, "renyi", 2.0), -torch.log((p**2).sum(-1)))
    assert torch.allclose(entropy(logp, "renyi", 1.0), entropy(logp))
    uniform = torch.full((1, 7), -math.log(7), dtype=torch.float64)
    assert float(entropy(uniform)) == pytest.approx(math.log(7))
    with pytest.raises(ValueError, match="order"):
        OrderedSampler(VOCAB, order="sideways")
    with pytest.raises(ValueError, match="shannon or renyi"):
        OrderedSampler(VOCAB, entropy_kind="tsallis")
