"""ReMDM remasking: with eta = 0 every strategy is the ancestral sampler on its grid in
distribution (chi-square against the enumerated law); the forward marginals are kept with
eta > 0; fixed tokens and padding are never remasked; NFE counts the rows that reveal; a
long loop run with an exact denoiser still samples the joint."""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.processes import MaskedDiffusion
from seqdiff.samplers import AncestralSampler, Condition, RCSymmetricSampler, ReMDMSampler
from seqdiff.schedules import CosineSchedule, LogLinearSchedule
from support.dummies import DNA, Arbitrary
from support.exact_laws import chi2_ok, empirical, exact_sampler_distribution
from support.toys import ExactDenoiser, Toy

pytestmark = pytest.mark.usefixtures("one_thread")


def uniform_denoiser(vocab, V):
    def den(x, rate, valid, positions):
        out = torch.full((int(positions.sum()), vocab.size), -math.inf, dtype=torch.float64)
        out[:, :V] = -math.log(V)
        return out
    return den


@pytest.mark.parametrize("strategy", ["cap", "rescale", "conf", "loop"])
def test_eta_zero_is_the_ancestral_sampler_in_distribution(strategy):
    toy = Toy(2, 3, seed=7, concentration=0.5)
    model = ExactDenoiser(toy)
    schedule = LogLinearSchedule(eps=1e-3)
    den = MaskedDiffusion(toy.vocab, schedule).denoiser(model)
    T, n = 4, 5000
    s = ReMDMSampler(toy.vocab, schedule, T, strategy=strategy, eta=0.0)
    anc = AncestralSampler(toy.vocab, schedule, num_steps=T, cache=False)
    exact = exact_sampler_distribution(toy, model, anc, alpha=s.alphas().tolist())
    if strategy != "loop":  # the same grid as the ancestral sampler's
        assert torch.allclose(s.alphas(), anc._alpha)
    else:
        assert s.alphas().tolist() == pytest.approx([1.0, 0.9, 0.9, 0.9 * (1 - 0.2 / 0.45), 0.0])
    out = s.sample(den, n, toy.L, generator=torch.Generator().manual_seed(3))
    assert int(out.trace["remasked"].sum()) == 0
    assert chi2_ok(empirical(out.tokens, toy.V), exact, n)
    # the same check rejects remasking with a large eta on this short grid (so it can fail)
    if strategy == "rescale":
        hot = ReMDMSampler(toy.vocab, schedule, T, strategy=strategy, eta=1.0).sample(
            den, n, toy.L, generator=torch.Generator().manual_seed(4))
        assert int(hot.trace["remasked"].sum()) > 0
        assert not chi2_ok(empirical(hot.tokens, toy.V), exact, n)


@pytest.mark.parametrize("strategy,schedule", [("cap", LogLinearSchedule()), ("rescale", CosineSchedule(eps=0.0)),
                                               ("loop", LogLinearSchedule())], ids=["cap", "rescale-cosine", "loop"])
def test_remasking_keeps_the_forward_marginals(strategy, schedule):
    """After the step to t_{j-1}, the share of revealed free tokens is alpha_{j-1} in
    expectation, whatever sigma (the compensated reveal probability)."""
    L, B, T = 200, 40, 20
    eta = {"cap": 0.3, "rescale": 0.8, "loop": 0.3}[strategy]
    s = ReMDMSampler(DNA, schedule, T, strategy=strategy, eta=eta)
    shares, remasked = [], []
    out = s.sample(uniform_denoiser(DNA, 4), B, L, generator=torch.Generator().manual_seed(0),
                   callback=lambda st: shares.append(float((st.x != DNA.mask_id).double().mean())))
    alpha = s.alphas()
    for step, share in enumerate(shares):
        j = T - step - 1
        a = float(alpha[j])
        assert abs(share - a) < 5 * math.sqrt(a * (1 - a) / (L * B)) + 1e-9, (step, share, a)
    assert int(out.trace["remasked"].sum()) > 50  # remasking did happen


@pytest.mark.parametrize("strategy", ["cap", "rescale", "conf", "loop"])
def test_fixed_tokens_and_padding_are_never_remasked(strategy):
    L, T = 12, 30
    cond = Condition.from_segments(L, {0: [2, 2], -3: [1, 0, 1], 5: [0]})
    valid = torch.ones(L, dtype=torch.bool)
    valid[-1] = False
    fixed = cond.fixed.clone()
    fixed[-1] = False
    cond = Condition(cond.tokens, fixed, valid)
    eta = {"cap": 1.0, "rescale": 1.0, "conf": 5.0, "loop": 1.0}[strategy]
    s = ReMDMSampler(DNA, LogLinearSchedule(), T, strategy=strategy, eta=eta)
    seen = []
    out = s.sample(Arbitrary(DNA, L, seed=0), 8, L, cond, generator=torch.Generator().manual_seed(0),
                   callback=lambda st: seen.append(st.x.clone()))
    for x in seen:
        assert (x[:, fixed] == cond.tokens[fixed]).all()
        assert (x[:, ~valid] == DNA.pad_id).all()
    assert int(out.trace["remasked"].sum()) > 0
    assert not (out.tokens[:, valid] == DNA.mask_id).any()


def test_nfe_counts_the_rows_that_reveal_and_eta_zero_stops_early():
    L, T = 6, 1000
    rows_called = []

    def den(x, rate, valid, positions):
        rows_called.append(x.shape[0])
        return uniform_denoiser(DNA, 4)(x, rate, valid, positions)

    out = ReMDMSampler(DNA, LogLinearSchedule(), T, eta=0.0).sample(den, 3, L, generator=torch.Generator().manual_seed(0))
    assert int(out.nfe.sum()) == sum(rows_called) and out.calls == len(rows_called)
    assert (out.nfe <= L).all() and (out.nfe >= 1).all()
    assert out.steps < T  # nothing masked and no later step can remask: done
    rows_called.clear()
    cap = ReMDMSampler(DNA, LogLinearSchedule(), 50, strategy="cap", eta=0.5).sample(
        den, 3, L, generator=torch.Generator().manual_seed(0))
    assert cap.steps == 50 and int(cap.nfe.sum()) == sum(rows_called)
    assert (cap.nfe > L).any()  # remasked tokens cost another reveal


def test_a_long_loop_run_with_the_exact_denoiser_samples_the_joint():
    toy = Toy(2, 3, seed=7, concentration=0.5)
    den = MaskedDiffusion(toy.vocab).denoiser(ExactDenoiser(toy))
    n = 3000
    s = ReMDMSampler(toy.vocab, LogLinearSchedule(), 300, strategy="loop", eta=0.05)
    out = s.sample(den, n, toy.L, generator=torch.Generator().manual_seed(5))
    assert int(out.trace["remasked"].sum()) > n  # most rows were corrected at least once
    assert chi2_ok(empirical(out.tokens, toy.V), toy.p, n)


def test_composes_with_the_reverse_complement_wrapper_and_validates():
    L = 10
    cond = Condition.from_segments(L, {0: [0, 0, 1], -2: [2, 3]})
    s = RCSymmetricSampler(DNA, inner="seqdiff.samplers.ReMDMSampler", rc="both", num_steps=20, strategy="loop",
                           eta=0.5, schedule=LogLinearSchedule())
    out = s.sample(Arbitrary(DNA, L, seed=2), 4, L, cond, generator=torch.Generator().manual_seed(0))
    assert (out.tokens[:, cond.fixed] == cond.tokens[cond.fixed]).all() and not (out.tokens == DNA.mask_id).any()
    assert (out.nfe % 2 == 0).all()
    assert ReMDMSampler(DNA, strategy="rescale").eta == 0.015 and ReMDMSampler(DNA, strategy="loop").eta == 0.02
    with pytest.raises(ValueError, match="strategy must be one of"):
        ReMDMSampler(DNA, strategy="sometimes")
    with pytest.raises(ValueError, match="eta must be in"):
        ReMDMSampler(DNA, strategy="cap", eta=1.5)
    with pytest.raises(ValueError, match="t_off < t_on"):
        ReMDMSampler(DNA, strategy="loop", t_on=0.1, t_off=0.2)
