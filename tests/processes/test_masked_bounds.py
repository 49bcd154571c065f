"""Every number called a bound is one: the estimators' expectations in closed form.

The samplers start from all-[MASK], so the bound that matters is the NELBO of the model
the ancestral sampler draws from (the schedule normalised to alpha(1)=0). On an
enumerable toy, with the exact denoiser and a perturbed one, the tests compute in closed
form (``closed_form.py``: enumeration and quadrature, none of the library's loss code)

- the value each estimator's expectation equals: the library's law of the estimator (its
  ``time_law``, which ``draw`` follows: checked separately) integrated exactly over its
  uniforms and mask patterns;
- that what is labelled a bound is >= the NLL of the sampler's model (the T-step chain by
  dynamic programming; its T -> inf limit one token at a time) and equals its exact NELBO;
- that MDLM's ``time`` estimator is below the bound, so it is labelled "not a bound";

and, through the library's whole evaluation path, that the Monte-Carlo means agree with
those closed forms where the truncation is made large enough to see (eps = 0.3).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import support.closed_form as cf
from seqdiff.eval.likelihood import evaluate_likelihood
from seqdiff.processes import MaskedDiffusion
from seqdiff.processes.time_sampling import stratified_uniform
from seqdiff.schedules import LogLinearSchedule
from support.table_denoiser import TableDenoiser
from support.toys import Toy

EPS = 1e-3  # MDLM's (and our default) alpha(1)


@pytest.fixture(scope="module", params=[0.0, 0.3], ids=["exact", "perturbed"])
def setup(request):
    toy = Toy(3, 3, seed=4)
    model = TableDenoiser(toy, noise=request.param)
    perturb = model.perturb if request.param else None
    return toy, model, perturb, cf.ce_table(toy, perturb)


def law_expectation(proc: MaskedDiffusion, ce: torch.Tensor, L: int) -> torch.Tensor:
    """E over u ~ U(0,1] and the masks of weight * CE, for the law ``proc.time_law`` gives."""
    if proc.num_steps > 0:  # piecewise constant in u: one node per step
        T = proc.num_steps
        u, w = (torch.arange(T, dtype=torch.float64) + 0.5) / T, torch.full((T,), 1.0 / T, dtype=torch.float64)
    else:  # a polynomial of degree L-1 in u on [0, 1]
        nodes, weights = np.polynomial.legendre.leggauss(32)
        u, w = torch.tensor((nodes + 1) / 2), torch.tensor(weights / 2)
    mask_prob, _, weight = proc.time_law(u)
    k = cf.masks(L).sum(1).double()
    patterns = mask_prob[:, None] ** k * (1 - mask_prob[:, None]) ** (L - k)  # [nodes, 2**L]
    return ce @ (patterns * (w * weight)[:, None]).T.sum(1)


@pytest.mark.parametrize("t_min", [0.0, 1e-3])
def test_continuous_time_estimators_in_closed_form(setup, t_min):
    toy, model, perturb, ce = setup
    bound = cf.continuous_bound(ce, toy.L)
    nll = cf.one_at_a_time_nll(toy, perturb)  # the sampler's model as T -> inf
    assert (bound >= nll - 1e-12).all()
    if perturb is None:  # the exact denoiser's model is the data distribution; the bound is tight
        assert torch.allclose(bound, toy.neg_log_p(toy.seqs), rtol=1e-10)
    proc = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=EPS), estimator="time", t_min=t_min)
    # MDLM's time estimator: its expectation is the eps/t_min-truncated integral, below the bound
    expected = law_expectation(proc, ce, toy.L)
    assert torch.allclose(expected, cf.time_expectation(ce, toy.L, EPS, t_min), rtol=1e-10)
    gap = 1 - expected / bound
    assert (gap > 4e-4).all() and (gap < 2e-3).all(), gap
    assert not proc.estimate_is_bound("time") and not proc.loss_is_nelbo and "not a bound" in proc.estimand("time")
    assert proc.objective == "truncated_nelbo"
    # the evaluation default is the count estimator, labelled a bound (its exactness: below)
    assert proc.eval_estimator(None) == "count" and proc.estimate_is_bound("count")
    # with eps = t_min = 0 the time estimator is unbiased for the bound, and says so
    exact = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), estimator="time", t_min=0.0)
    assert torch.allclose(law_expectation(exact, ce, toy.L), bound, rtol=1e-10)
    assert exact.estimate_is_bound("time") and exact.loss_is_nelbo


@pytest.mark.parametrize("T", [16, 128])
def test_t_step_bound_in_closed_form(setup, T):
    toy, model, perturb, ce = setup
    proc = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=EPS), num_steps=T)
    expected = law_expectation(proc, ce, toy.L)
    bound = cf.steps_expectation(ce, toy.L, EPS, T, normalised=True)
    assert torch.allclose(expected, bound, rtol=1e-10)
    assert proc.estimate_is_bound(proc.eval_estimator(None)) and proc.loss_is_nelbo
    nll = cf.sampler_nll(toy, EPS, T, perturb)  # the T-step ancestral sampler's model
    assert (bound >= nll - 1e-12).all(), (bound - nll).min()
    # masking w.p. 1 - alpha_j (MDLM's discrete loss) is ~eps below, and for some
    # sequences below the sampler's NLL: not a bound
    raw = cf.steps_expectation(ce, toy.L, EPS, T, normalised=False)
    assert ((bound - raw) / bound > 4e-4).all()
    assert (raw < nll).any()


def test_draw_follows_the_time_law():
    """``draw`` masks each real token w.p. ``time_law``'s masking probability at the
    stratified u, and returns its rate and weight (so the law tests above are about draw)."""
    toy = Toy(3, 3, seed=4)
    B, L = 8, 20000
    x0 = torch.zeros(B, L, dtype=torch.long)
    for proc in (MaskedDiffusion(toy.vocab, num_steps=4), MaskedDiffusion(toy.vocab, t_min=0.2)):
        x_t, rate, weight = proc.draw(x0, generator=torch.Generator().manual_seed(3))
        u = stratified_uniform(B, generator=torch.Generator().manual_seed(3))
        mask_prob, want_rate, want_weight = proc.time_law(u)
        assert torch.equal(rate, want_rate) and torch.equal(weight, want_weight)
        freq = (x_t == toy.vocab.mask_id).double().mean(1)
        tol = 4 * torch.sqrt(mask_prob * (1 - mask_prob) / L) + 1e-12
        assert ((freq - mask_prob).abs() <= tol).all(), (freq, mask_prob)
        if proc.num_steps:  # at the last step the sampler's state is all-[MASK]; so is the estimator's
            assert mask_prob.max() == 1.0 and freq.max() == 1.0


def per_row_means(proc, model, toy, estimator=None, repeats=384, draws=4):
    """Each toy sequence ``repeats`` times through ``evaluate_likelihood``: the mean and
    standard error of each sequence's estimate."""
    x = toy.seqs.repeat(repeats, 1)
    batches = [(x[i : i + 216], torch.ones(len(x[i : i + 216]), toy.L, dtype=torch.bool)) for i in range(0, len(x), 216)]
    res, y, _ = evaluate_likelihood(model, proc, batches, draws=draws, seed=0, estimator=estimator)
    y = y.view(repeats, len(toy.seqs))
    return res, y.mean(0), y.std(0) / math.sqrt(repeats)


def test_monte_carlo_means_match_the_closed_forms_through_evaluation():
    """At eps = 0.3 (t_min = 0.2) the truncation is large: the evaluation default must
    still be the sampler model's bound, and the time estimator what its closed form says."""
    toy = Toy(3, 3, seed=4)
    model = TableDenoiser(toy, noise=0.3)
    ce = cf.ce_table(toy, model.perturb)
    sched = LogLinearSchedule(eps=0.3)
    checks = [
        (MaskedDiffusion(toy.vocab, sched, t_min=0.2), None, cf.continuous_bound(ce, toy.L), True),
        (MaskedDiffusion(toy.vocab, sched, t_min=0.2), "time", cf.time_expectation(ce, toy.L, 0.3, 0.2), False),
        (MaskedDiffusion(toy.vocab, sched, num_steps=4), None, cf.steps_expectation(ce, toy.L, 0.3, 4, normalised=True), True),
    ]
    for proc, est, truth, is_bound in checks:
        res, mean, se = per_row_means(proc, model, toy, est)
        z = (mean - truth) / se
        assert z.abs().max() < 4.5, (proc.describe(), est, z)
        assert res.bound is is_bound and (res.kind == "NELBO") is is_bound
    # the gaps are far outside the noise: these figures differ from the bound
    bound = cf.continuous_bound(ce, toy.L)
    assert ((bound - cf.time_expectation(ce, toy.L, 0.3, 0.2)) / bound).min() > 0.05


def test_count_estimator_on_a_t_step_process_is_refused():
    toy = Toy(3, 3, seed=4)
    proc = MaskedDiffusion(toy.vocab, num_steps=16)
    x = toy.seqs[:4]
    with pytest.raises(ValueError, match="count estimator is for continuous time.*num_steps=16"):
        evaluate_likelihood(TableDenoiser(toy), proc, [(x, torch.ones_like(x, dtype=torch.bool))], estimator="count")


def test_time_conditioned_count_estimator_is_the_samplers_bound():
    """The sampler gives the model the rate 1 - alpha(t) = (1 - eps)(1 - a) at the
    normalised level a; the count estimator gives it the same, so its mean is the NELBO
    of the sampler's model: int_0^1 da/(1-a) sum_M (1-a)^k a^(n-k) CE(M; rate(a))."""
    from support.toys import ExactDenoiser

    toy, eps, scale = Toy(2, 3, seed=11), 0.5, 3.0
    model = ExactDenoiser(toy, noise=0.3, time_scale=scale)
    nodes, weights = np.polynomial.legendre.leggauss(64)
    ms = cf.masks(toy.L)
    k = ms.sum(1).double()
    exact = torch.zeros(len(toy.seqs), dtype=torch.float64)
    for an, wn in zip((nodes + 1) / 2, weights / 2):
        rate = (1 - eps) * (1 - an)
        for m, M in enumerate(ms):
            if not M.any():
                continue
            for s, x in enumerate(toy.seqs):
                lp = toy.conditional(x.masked_fill(M, toy.vocab.mask_id)).clamp_min(1e-300).log() + model.perturb
                q = torch.log_softmax(lp + scale * rate * torch.arange(toy.V, dtype=torch.float64), -1)
                ce = -q[M, x[M]].sum()
                exact[s] += wn / (1 - an) * (1 - an) ** k[m] * an ** (toy.L - k[m]) * ce
    proc = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=eps), time_conditioning=True, estimator="count")
    _, mean, se = per_row_means(proc, model, toy, repeats=384, draws=2)
    z = (mean - exact) / se
    assert z.abs().max() < 4.5, z
