"""The NELBO computed by our loss code, checked against exact enumeration on toys.

With the exact denoiser (true conditionals of the masked positions given the visible
ones), the continuous-time NELBO equals -log p(x) for every x, whatever the schedule
(with alpha(0)=1, alpha(1)=0). The time integral is evaluated exactly: every mask
pattern is enumerated with its probability and t is integrated by Gauss-Legendre
quadrature (the log-linear integrand is a polynomial of degree L-1, so the rule is
exact).
"""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.processes import MaskedDiffusion
from seqdiff.schedules import CosineSchedule, LinearSchedule, LogLinearSchedule
from support.exact_laws import exact_continuous_nelbo, exact_discrete_nelbo
from support.toys import ExactDenoiser, Toy


@pytest.mark.parametrize("schedule", [LogLinearSchedule(eps=0.0), CosineSchedule(eps=0.0)], ids=repr)
@pytest.mark.parametrize("V,L", [(3, 3), (2, 4)])
def test_continuous_nelbo_equals_neg_log_likelihood(schedule, V, L):
    toy = Toy(V, L, seed=V * 10 + L)
    model = ExactDenoiser(toy)
    process = MaskedDiffusion(toy.vocab, schedule)
    nll = toy.neg_log_p(toy.seqs)
    for x, target in zip(toy.seqs, nll):
        got = exact_continuous_nelbo(process, model, toy, x.unsqueeze(0))
        assert got == pytest.approx(float(target), rel=2e-5, abs=2e-5)


def test_eps_truncation_is_a_small_underestimate():
    """With eps > 0 the integral over alpha misses [0, eps]: the bound moves by O(eps)."""
    toy = Toy(3, 3, seed=5)
    model = ExactDenoiser(toy)
    x = toy.seqs[7:8]
    exact = float(toy.neg_log_p(x))
    for sched in (LogLinearSchedule(eps=1e-3), LinearSchedule(eps=1e-3)):
        got = exact_continuous_nelbo(MaskedDiffusion(toy.vocab, sched), model, toy, x, nodes=200)
        assert got < exact and exact - got < 0.02 * exact, sched


@pytest.mark.parametrize("estimator", ["time", "count"])
def test_monte_carlo_estimate_within_confidence_interval(estimator):
    toy = Toy(3, 4, seed=3)
    model = ExactDenoiser(toy)
    process = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), estimator=estimator, t_min=0.0)
    for idx in (0, 17, 80):
        x = toy.seqs[idx : idx + 1]
        truth = float(toy.neg_log_p(x))
        n = 2048
        g = torch.Generator().manual_seed(idx)
        est = process.nelbo(model, x.expand(n, -1), generator=g).nelbo
        mean, se = float(est.mean()), float(est.std() / math.sqrt(n))
        assert abs(mean - truth) < 4 * se + 1e-9, (estimator, idx, mean, truth, se)
    # the Rao-Blackwellised estimator has lower variance than the time estimator
    if estimator == "count":
        x = toy.seqs[17:18].expand(2048, -1)
        v_count = float(process.nelbo(model, x, generator=torch.Generator().manual_seed(0)).nelbo.var())
        p_time = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), estimator="time", t_min=0.0)
        v_time = float(p_time.nelbo(model, x, generator=torch.Generator().manual_seed(0)).nelbo.var())
        assert v_count < v_time


def test_count_estimator_is_exact_for_time_conditioned_denoisers():
    """The masking rate drawn from Beta(k, n-k+1) keeps the count estimator unbiased when
    the denoiser's output depends on t."""
    toy = Toy(2, 4, seed=11)
    model = ExactDenoiser(toy, noise=0.3, time_scale=1.5)
    sched = LogLinearSchedule(eps=0.0)
    exact_proc = MaskedDiffusion(toy.vocab, sched, time_conditioning=True)
    x = toy.seqs[5:6]
    exact = exact_continuous_nelbo(exact_proc, model, toy, x, nodes=64)
    proc = MaskedDiffusion(toy.vocab, sched, time_conditioning=True, estimator="count")
    n = 4096
    est = proc.nelbo(model, x.expand(n, -1), generator=torch.Generator().manual_seed(1)).nelbo
    mean, se = float(est.mean()), float(est.std() / math.sqrt(n))
    assert abs(mean - exact) < 4 * se, (mean, exact, se)
    # and the t-dependence is real: ignoring it changes the answer
    assert abs(exact - exact_continuous_nelbo(exact_proc, ExactDenoiser(toy, noise=0.3), toy, x)) > 4 * se


def test_perturbed_denoiser_is_strictly_worse_on_average():
    toy = Toy(3, 3, seed=2)
    process = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0))
    exact, perturbed = ExactDenoiser(toy), ExactDenoiser(toy, noise=0.5)
    nelbo_exact = torch.tensor([exact_continuous_nelbo(process, exact, toy, x[None], 8) for x in toy.seqs])
    nelbo_pert = torch.tensor([exact_continuous_nelbo(process, perturbed, toy, x[None], 8) for x in toy.seqs])
    H = toy.entropy()
    assert float((toy.p * nelbo_exact).sum()) == pytest.approx(H, rel=1e-5)
    assert float((toy.p * nelbo_pert).sum()) > H + 1e-3


def test_discrete_time_bound_converges_to_continuous():
    """L_T bounds the T-step model's own NLL, so per sequence it may sit below -log p(x)
    (T=1 is the product of marginals); averaged over the data it is >= the entropy,
    shrinks as the grid is refined, and tends to the continuous NELBO."""
    toy = Toy(3, 3, seed=4)
    model = ExactDenoiser(toy)
    marg = toy.conditional(torch.full((toy.L,), toy.vocab.mask_id))
    nll = toy.neg_log_p(toy.seqs)
    H = toy.entropy()
    expected, per_x = [], []
    for T in (1, 2, 4, 16, 64, 256, 1024):
        proc = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), num_steps=T)
        bounds = torch.tensor([exact_discrete_nelbo(proc, model, toy, x[None]) for x in toy.seqs], dtype=torch.float64)
        if T == 1:  # one step from all-[MASK] reveals every token independently
            closed = -torch.stack([marg[i, toy.seqs[:, i]].log() for i in range(toy.L)]).sum(0)
            assert torch.allclose(bounds, closed.double(), rtol=1e-5)
        expected.append(float((toy.p * bounds).sum()))
        per_x.append(float((bounds - nll).abs().max()))
    assert all(e >= H - 1e-6 for e in expected), (expected, H)
    assert all(b <= a + 1e-9 for a, b in zip(expected, expected[1:])), expected
    assert expected[-1] - H < 1e-2 * (expected[0] - H)
    assert per_x[-1] < 1e-2 * per_x[0]


def test_discrete_time_monte_carlo_matches_its_exact_value():
    toy = Toy(3, 3, seed=6)
    model = ExactDenoiser(toy)
    x = toy.seqs[4:5]
    proc = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), num_steps=8)
    exact = exact_discrete_nelbo(proc, model, toy, x)
    n = 4096
    est = proc.nelbo(model, x.expand(n, -1), generator=torch.Generator().manual_seed(2)).nelbo
    mean, se = float(est.mean()), float(est.std() / math.sqrt(n))
    assert abs(mean - exact) < 4 * se


def test_padding_is_excluded_from_the_loss():
    """Padded positions are never masked, never scored, and what they hold is irrelevant;
    the NELBO of a padded row is an unbiased estimate of -log p of its real tokens."""
    toy = Toy(3, 3, seed=1)

    class Crop(ExactDenoiser):  # the toy's denoiser on the first 3 positions, junk after
        def forward(self, x_t, t=None, valid=None, output_mask=None):
            out = torch.randn(*x_t.shape, self.vocab_size, dtype=torch.float64)
            out[:, :3] = super().forward(x_t[:, :3], t, None, None)
            return out if output_mask is None else out[output_mask]

    proc = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), estimator="count")
    n = 1024
    x = torch.cat([toy.seqs[3:4].expand(n, -1), torch.full((n, 2), toy.vocab.pad_id)], dim=1)
    valid = torch.zeros_like(x, dtype=torch.bool)
    valid[:, :3] = True
    a = proc.nelbo(Crop(toy), x, valid, generator=torch.Generator().manual_seed(0))
    x2 = x.clone()
    x2[:, 3:] = 1  # different junk in the padding
    b = proc.nelbo(Crop(toy), x2, valid, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.nelbo, b.nelbo)
    assert a.num_tokens.eq(3).all()
    truth = float(toy.neg_log_p(toy.seqs[3:4]))
    assert abs(float(a.nelbo.mean()) - truth) < 4 * float(a.nelbo.std()) / math.sqrt(n)
    x_t, _, _ = proc.draw(x, valid, generator=torch.Generator().manual_seed(1))
    assert (x_t[:, 3:] == toy.vocab.pad_id).all()


def test_conditional_nelbo_with_fixed_tokens_bounds_the_conditional_likelihood():
    """Fixed (condition) tokens are visible and unscored: with the exact denoiser the
    NELBO estimates -log p(x_2, x_3 | x_0, x_1); the AR process gives it exactly."""
    toy = Toy(3, 4, seed=9)
    model = ExactDenoiser(toy)
    proc = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), estimator="count")
    fixed = torch.tensor([[True, True, False, False]])
    for idx in (5, 40, 77):
        x = toy.seqs[idx : idx + 1]
        cond = (toy.seqs[:, :2] == x[:, :2]).all(1)
        truth = float(toy.neg_log_p(x)) + float(torch.log(toy.p[cond].sum()))
        n = 2048
        out = proc.nelbo(model, x.expand(n, -1), fixed=fixed.expand(n, -1), generator=torch.Generator().manual_seed(idx))
        assert out.num_tokens.eq(2).all()
        mean, se = float(out.nelbo.mean()), float(out.nelbo.std()) / math.sqrt(n)
        assert abs(mean - truth) < 4 * se + 1e-6, (mean, truth, se)
