"""SEDD's bound (seqdiff.processes.sedd) against enumeration and SEDD's formulas, on toys.

Everything the tests compare with is computed in ``sedd_toy`` from SEDD's own formulas
(``score_entropy`` of the absorbing graph, ``scale_by_sigma``, the analytic / Euler
updates), the toy's exact conditionals, Gauss-Legendre quadrature over t and enumeration
of every mask pattern and every chain path; the library is only called to be checked.
"""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.processes import MaskedDiffusion, ScoreEntropyDiffusion
from seqdiff.schedules import GeometricSchedule, LogLinearSchedule
from support.sedd_toy import (
    ScoreToy,
    chain_law,
    exact_bound,
    final_term,
    gauss_legendre,
    model_logits,
    patterns,
    q_rate,
    score_entropy,
    scores,
    sigma_and_rate,
    step_probs,
)
from support.exact_laws import exact_continuous_nelbo
from support.toys import Toy

LOGLIN = LogLinearSchedule(eps=1e-3)  # SEDD's log-linear noise
GEOM = GeometricSchedule(0.5, 6.0)  # a large sigma_min makes the final reveal visible
GEOM_SEDD = GeometricSchedule(1e-4, 20.0)  # SEDD's defaults


def all_patterns(x0: torch.Tensor, mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    pats = torch.tensor(patterns(x0.shape[-1]))
    return x0.expand(len(pats), -1).masked_fill(pats, mask_id), pats.sum(1).double()


def library_bound(proc: ScoreEntropyDiffusion, model, x0: torch.Tensor, nodes=24, pieces=4) -> float:
    """Quadrature of the library's integrand ``loss_at`` and ``final_at`` (Q's pattern
    probabilities computed here)."""
    x_t, k = all_patterns(x0, proc.vocab.mask_id)
    L = x0.shape[-1]
    x0s = x0.expand(len(k), -1)
    total = 0.0
    for t, w in gauss_legendre(proc.t_min, 1.0, nodes, pieces):
        m = q_rate(proc.schedule, t)
        tt = torch.full((len(k),), t, dtype=torch.float64)
        total += w * float((m**k * (1 - m) ** (L - k) * proc.loss_at(model, x0s, x_t, tt).double()).sum())
    m0 = q_rate(proc.schedule, proc.t_min)
    if m0 > 0:
        total += float((m0**k * (1 - m0) ** (L - k) * proc.final_at(model, x0s, x_t)).sum())
    return total


@pytest.mark.parametrize("schedule", [LOGLIN, GEOM], ids=repr)
def test_integrand_is_sedd_score_entropy(schedule):
    """w(t)[CE + e^lam - 1 - lam] (the library) == sigma'(t) * SEDD's score_entropy with
    SEDD's scale_by_sigma parameterisation (written out in sedd_toy), for wrong scores."""
    toy = Toy(3, 3, seed=4)
    model = ScoreToy(toy, noise=0.7, mass=0.6, time_scale=0.8)
    proc = ScoreEntropyDiffusion(toy.vocab, schedule)
    x0 = toy.seqs[11]
    x_t, _ = all_patterns(x0, toy.vocab.mask_id)
    for t in (0.03, 0.4, 0.77, 0.99):
        sig, dsig = sigma_and_rate(schedule, t)
        got = proc.loss_at(model, x0.expand(len(x_t), -1), x_t, torch.full((len(x_t),), t, dtype=torch.float64))
        for row, xt in enumerate(x_t):
            s = scores(model, xt, sig)
            want = dsig * sum(score_entropy(s[i], int(x0[i]), sig) for i in range(3) if xt[i] == toy.vocab.mask_id)
            assert float(got[row]) == pytest.approx(want, rel=1e-5, abs=1e-6), (t, row)


@pytest.mark.parametrize("eps", [1e-3, 0.3])
@pytest.mark.parametrize("V,L", [(3, 3), (2, 4)])
def test_bound_equals_nll_with_the_exact_score(V, L, eps):
    """Log-linear noise, t_min = 0: the exact score's chain draws exactly the data, and the
    bound (all-[MASK] prior, prior term 0) is -log p(x) for every x, even where q(x_1|x_0)
    leaves 30% of the tokens clean (eps = 0.3: Q's marginals, not q's, make it exact)."""
    toy = Toy(V, L, seed=V * 10 + L)
    model = ScoreToy(toy)
    schedule = LogLinearSchedule(eps)
    proc = ScoreEntropyDiffusion(toy.vocab, schedule)
    nll = toy.neg_log_p(toy.seqs)
    for x, target in zip(toy.seqs, nll):
        got = exact_bound(model, schedule, x, nodes=12, pieces=1)  # the integrand is a polynomial in t
        assert got == pytest.approx(float(target), rel=1e-6, abs=1e-6)
        assert library_bound(proc, model, x, nodes=12, pieces=1) == pytest.approx(got, rel=1e-5, abs=1e-5)


def closed_form_gap(toy: Toy, x: torch.Tensor, m0: float, nodes: int = 16) -> float:
    """Exact score, final reveal at Q-rate m0: bound - (-log p(x)) =
    E_{m0}[sum_masked -log p(x_i | x_m0)] - int_0^{m0} (1/m) E_m[sum_masked -log p(x_i | x_m)] dm
    (MDLM's identity gives the integral from 0 to 1 as -log p(x); the integrand is a
    polynomial in m, so the quadrature is exact)."""
    L = toy.L
    ce = []
    for pat in patterns(L):
        x_t = x.clone()
        x_t[torch.tensor(pat)] = toy.vocab.mask_id
        cond = toy.conditional(x_t)
        ce.append((sum(pat), sum(-math.log(cond[i, x[i]]) for i in range(L) if pat[i])))
    expect = lambda m: sum(m**k * (1 - m) ** (L - k) * c for k, c in ce)  # noqa: E731
    integral = sum(w * expect(m) / m for m, w in gauss_legendre(0.0, m0, nodes))
    return expect(m0) - integral


def test_geometric_bound_is_nll_plus_the_final_reveal_gap():
    toy = Toy(3, 3, seed=5)
    model = ScoreToy(toy)
    proc = ScoreEntropyDiffusion(toy.vocab, GEOM)
    m0 = q_rate(GEOM, 0.0)
    nll = toy.neg_log_p(toy.seqs)
    gaps = []
    for x, target in zip(toy.seqs, nll):
        gap = closed_form_gap(toy, x, m0)
        got = exact_bound(model, GEOM, x, nodes=24, pieces=6)
        assert got == pytest.approx(float(target) + gap, rel=1e-6, abs=1e-6)
        gaps.append(gap)
    gaps = torch.tensor(gaps, dtype=torch.float64)
    assert float((toy.p * gaps).sum()) > 1e-3  # a true gap on average (the final step is factorised)
    assert library_bound(proc, model, toy.seqs[3], pieces=6) == pytest.approx(float(nll[3]) + float(gaps[3]), rel=1e-5)
    # SEDD's own geometric noise (sigma_min = 1e-4): the gap is negligible
    for x, target in zip(toy.seqs[:6], nll[:6]):
        got = exact_bound(model, GEOM_SEDD, x, nodes=24, pieces=10)
        assert got == pytest.approx(float(target) + closed_form_gap(toy, x, q_rate(GEOM_SEDD, 0.0)), abs=2e-5)
        assert abs(got - float(target)) < 1e-3


@pytest.mark.parametrize("estimator", ["count", "time"])
@pytest.mark.parametrize("schedule", [LOGLIN, LogLinearSchedule(0.3), GEOM], ids=repr)
def test_monte_carlo_estimate_matches_the_exact_bound(schedule, estimator):
    """Wrong, time- and state-dependent scores (mass and shape): the stratified estimate's
    mean is within 4 standard errors of the enumerated bound."""
    toy = Toy(3, 3, seed=3)
    model = ScoreToy(toy, noise=0.4, mass=0.5, time_scale=1.0)
    proc = ScoreEntropyDiffusion(toy.vocab, schedule, estimator=estimator)
    for idx in (2, 19):
        x = toy.seqs[idx : idx + 1]
        exact = exact_bound(model, schedule, x[0], pieces=6)
        n = 4096
        est = proc.nelbo(model, x.expand(n, -1), generator=torch.Generator().manual_seed(idx)).nelbo
        mean, se = float(est.mean()), float(est.std()) / math.sqrt(n)
        assert abs(mean - exact) < 4 * se + 1e-9, (mean, exact, se)


def test_wrong_scores_give_a_strictly_larger_bound():
    """Averaged over the data, the exact score's bound is the entropy; a wrong shape or
    only a wrong mass (p_theta exact, lambda != 0) is strictly worse."""
    toy = Toy(3, 3, seed=2)
    H = toy.entropy()
    avg = {}
    for name, model in {"exact": ScoreToy(toy), "shape": ScoreToy(toy, noise=0.5), "mass": ScoreToy(toy, mass=0.5)}.items():
        b = torch.tensor([exact_bound(model, LOGLIN, x, nodes=16, pieces=2) for x in toy.seqs], dtype=torch.float64)
        avg[name] = float((toy.p * b).sum())
    assert avg["exact"] == pytest.approx(H, rel=1e-6)
    assert avg["shape"] > H + 1e-2 and avg["mass"] > H + 1e-2, avg


def test_mass_conserving_scores_give_mdlm_nelbo():
    """With lambda = 0 (a mass-conserving score, any shape) and log-linear noise, SEDD's
    bound is MDLM's continuous NELBO of the same logits (alpha = 1 - t: Q's marginals are
    masking rate t, the weight is 1/t); a wrong mass adds w(t)(e^lam - 1 - lam) > 0."""
    toy = Toy(3, 3, seed=6)
    mdlm = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0))
    shape = ScoreToy(toy, noise=0.5)
    for x in toy.seqs[[0, 13, 26]]:
        sedd = exact_bound(shape, LOGLIN, x, nodes=12, pieces=1, time_conditioning=False)
        assert sedd == pytest.approx(exact_continuous_nelbo(mdlm, shape, toy, x[None], nodes=12), rel=1e-6)
        heavy = exact_bound(ScoreToy(toy, noise=0.5, mass=0.4), LOGLIN, x, nodes=16, pieces=2)
        assert heavy > sedd + 1e-3


def test_mass_conserving_reading_is_the_mdlm_bound_of_the_same_logits():
    """process.mass_conserving scores the network with lambda := 0, the model seqdiff's
    other samplers draw from: continuous and T-step, it is MDLM's bound of the same
    logits, and never above SEDD's own."""
    from support.exact_laws import exact_discrete_nelbo

    toy = Toy(3, 3, seed=6)
    model = ScoreToy(toy, noise=0.5, mass=0.6)  # time-independent when not conditioned
    sedd = ScoreEntropyDiffusion(toy.vocab, LOGLIN, time_conditioning=False)
    cons = ScoreEntropyDiffusion(toy.vocab, LOGLIN, time_conditioning=False, mass_conserving=True)
    mdlm = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0))
    for x in toy.seqs[[1, 14]]:
        b_cons = library_bound(cons, model, x, nodes=12, pieces=1)
        assert b_cons == pytest.approx(exact_continuous_nelbo(mdlm, model, toy, x[None], nodes=12), rel=1e-6)
        assert b_cons < library_bound(sedd, model, x) - 1e-3
        step = ScoreEntropyDiffusion(toy.vocab, LOGLIN, time_conditioning=False, mass_conserving=True,
                                     num_steps=4, estimator="time")
        mdlm4 = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), num_steps=4)
        assert library_step_bound(step, model, x) == pytest.approx(exact_discrete_nelbo(mdlm4, model, toy, x[None]), rel=1e-6)


# ------------------------------------------------------------------ the T-step sampler's own bound
def exact_step_bound(model, schedule, x0: torch.Tensor, T: int, predictor: str) -> float:
    """sum_j E_{Q_tj} sum_masked KL(Q's step || SEDD's literal step) + the final reveal."""
    L, V, mask = model.toy.L, model.toy.V, model.toy.vocab.mask_id
    grid = [j / T for j in range(T + 1)]
    alpha = [math.exp(-sigma_and_rate(schedule, t)[0]) for t in grid]
    total = 0.0
    for j in range(1, T + 1):
        rho = (alpha[j - 1] - alpha[j]) / (1 - alpha[j])
        m = q_rate(schedule, grid[j])
        for pat in patterns(L):
            k = sum(pat)
            if k == 0 or m**k * (1 - m) ** (L - k) == 0:  # (at t = 1 only all-[MASK] has mass)
                continue
            x_t = x0.clone()
            x_t[torch.tensor(pat)] = mask
            for i in range(L):
                if not pat[i]:
                    continue
                p = step_probs(model, schedule, x_t, i, grid[j], grid[j - 1], predictor)
                kl = rho * math.log(rho / float(p[x0[i]]))
                if rho < 1:
                    kl += (1 - rho) * (math.log(1 - rho) - math.log(float(p[V])) if p[V] > 0 else math.inf)
                total += m**k * (1 - m) ** (L - k) * kl
    return total + final_term(model, schedule, x0, 0.0)


def library_step_bound(proc: ScoreEntropyDiffusion, model, x0: torch.Tensor) -> float:
    x_t, k = all_patterns(x0, proc.vocab.mask_id)
    L, T = x0.shape[-1], proc.num_steps
    total = 0.0
    for j in range(1, T + 1):
        m = q_rate(proc.schedule, j / T)
        terms = proc.step_at(model, x0.expand(len(k), -1), x_t, torch.full((len(k),), j))
        prob = m**k * (1 - m) ** (L - k)
        total += float((prob[prob > 0] * terms[prob > 0]).sum())
    m0 = q_rate(proc.schedule, 0.0)
    if m0 > 0:
        total += float((m0**k * (1 - m0) ** (L - k) * proc.final_at(model, x0.expand(len(k), -1), x_t)).sum())
    return total


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
@pytest.mark.parametrize("schedule", [LOGLIN, GeometricSchedule(0.3, 5.0)], ids=repr)
def test_step_bound_bounds_the_samplers_own_nll(schedule, predictor):
    """num_steps = T: the library's bound equals the literal KL sum, and is >= -log P_T(x)
    for every x, P_T the enumerated law of SEDD's T-step sampler (wrong scores)."""
    toy = Toy(2, 3, seed=8)
    model = ScoreToy(toy, noise=0.3, mass=0.3, time_scale=0.5)
    model.table -= 0.7  # mostly too little mass: the chain may keep tokens masked, so the bound is finite
    for T in (1, 2, 4):
        proc = ScoreEntropyDiffusion(toy.vocab, schedule, num_steps=T, estimator="time", predictor=predictor)
        law = chain_law(model, schedule, T, predictor)
        for x in toy.seqs:
            lit = exact_step_bound(model, schedule, x, T, predictor)
            assert library_step_bound(proc, model, x) == pytest.approx(lit, rel=1e-5, abs=1e-6), (T, x)
            assert lit >= -math.log(law[tuple(x.tolist())]) - 1e-9, (T, x)
            assert T < 4 or math.isfinite(lit)


def test_step_bound_monte_carlo_and_its_limit():
    toy = Toy(3, 3, seed=9)
    exact_model = ScoreToy(toy)
    # T = 1 with the exact score: one step from all-[MASK] reveals every token from its marginal
    proc1 = ScoreEntropyDiffusion(toy.vocab, LOGLIN, num_steps=1, estimator="time")
    marg = toy.conditional(torch.full((3,), toy.vocab.mask_id))
    for x in toy.seqs[:5]:
        assert library_step_bound(proc1, exact_model, x) == pytest.approx(-sum(math.log(marg[i, x[i]]) for i in range(3)), rel=1e-6)
    # as T grows, the data-averaged T-step bound decreases towards the entropy
    H = toy.entropy()
    avg = []
    for T in (1, 4, 16, 64):
        proc = ScoreEntropyDiffusion(toy.vocab, LOGLIN, num_steps=T, estimator="time")
        avg.append(sum(float(toy.p[i]) * library_step_bound(proc, exact_model, x) for i, x in enumerate(toy.seqs)))
    assert all(b < a for a, b in zip(avg, avg[1:])) and avg[-1] - H < 0.05 * (avg[0] - H), (avg, H)
    # the stratified Monte-Carlo estimate of the T-step bound is unbiased (wrong scores)
    model = ScoreToy(toy, noise=0.4, mass=0.3, time_scale=0.7)
    proc = ScoreEntropyDiffusion(toy.vocab, GEOM, num_steps=6, estimator="time", predictor="euler")
    x = toy.seqs[7:8]
    exact = library_step_bound(proc, model, x[0])
    assert exact == pytest.approx(exact_step_bound(model, GEOM, x[0], 6, "euler"), rel=1e-5)
    n = 4096
    est = proc.nelbo(model, x.expand(n, -1), generator=torch.Generator().manual_seed(3)).nelbo
    mean, se = float(est.mean()), float(est.std()) / math.sqrt(n)
    assert abs(mean - exact) < 4 * se, (mean, exact, se)


def test_a_chain_that_cannot_stay_masked_gets_an_infinite_step_bound():
    """Scores with far too much mass make a step reveal surely (a_j = 1) where Q may keep a
    token masked: that chain cannot produce Q's paths, and the bound says +inf."""
    toy = Toy(2, 3, seed=1)
    model = ScoreToy(toy, mass=0.0)
    model.table += 3.0  # e^lambda = e^3: every step before the last reveals surely
    proc = ScoreEntropyDiffusion(toy.vocab, LOGLIN, num_steps=4, estimator="time")
    assert math.isinf(library_step_bound(proc, model, toy.seqs[0]))
    assert math.isinf(exact_step_bound(model, LOGLIN, toy.seqs[0], 4, "analytic"))


# ------------------------------------------------------------------ conditions, padding, inputs
def test_fixed_tokens_bound_the_conditional_likelihood_and_padding_is_ignored():
    toy = Toy(3, 4, seed=9)
    model = ScoreToy(toy)
    proc = ScoreEntropyDiffusion(toy.vocab, LOGLIN)
    fixed = torch.tensor([[True, True, False, False]])
    for idx in (5, 40):
        x = toy.seqs[idx : idx + 1]
        cond = (toy.seqs[:, :2] == x[:, :2]).all(1)
        truth = float(toy.neg_log_p(x)) + float(torch.log(toy.p[cond].sum()))
        n = 2048
        out = proc.nelbo(model, x.expand(n, -1), fixed=fixed.expand(n, -1), generator=torch.Generator().manual_seed(idx))
        assert out.num_tokens.eq(2).all()
        mean, se = float(out.nelbo.mean()), float(out.nelbo.std()) / math.sqrt(n)
        assert abs(mean - truth) < 4 * se + 1e-6, (mean, truth, se)

    class Crop(ScoreToy):  # the toy's score on the first 3 positions, junk after
        def forward(self, x_t, t=None, valid=None, output_mask=None):
            out = torch.randn(*x_t.shape, self.vocab_size, dtype=torch.float64)
            out[:, :3] = super().forward(x_t[:, :3], t, None, None)
            return out if output_mask is None else out[output_mask]

    toy3 = Toy(3, 3, seed=1)
    crop = Crop(toy3)
    proc3 = ScoreEntropyDiffusion(toy3.vocab, GEOM)  # the final reveal too
    n = 1024
    x = torch.cat([toy3.seqs[3:4].expand(n, -1), torch.full((n, 2), toy3.vocab.pad_id)], dim=1)
    valid = torch.zeros_like(x, dtype=torch.bool)
    valid[:, :3] = True
    a = proc3.nelbo(crop, x, valid, generator=torch.Generator().manual_seed(0))
    x2 = x.clone()
    x2[:, 3:] = 1
    b = proc3.nelbo(crop, x2, valid, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.nelbo, b.nelbo) and a.num_tokens.eq(3).all()
    exact = exact_bound(ScoreToy(toy3), GEOM, toy3.seqs[3], pieces=6)
    assert abs(float(a.nelbo.mean()) - exact) < 4 * float(a.nelbo.std()) / math.sqrt(n)


def test_denoiser_relations():
    """score_parts recombine to SEDD's log scores; the normalised scores are the data's
    conditionals for the exact score; revealed positions carry over."""
    toy = Toy(3, 3, seed=2)
    model = ScoreToy(toy, noise=0.3, mass=0.4, time_scale=0.5)
    proc = ScoreEntropyDiffusion(toy.vocab, LOGLIN)
    x = torch.tensor([[toy.vocab.mask_id, 1, toy.vocab.mask_id]])
    pos = x == toy.vocab.mask_id
    rate = torch.tensor([0.37], dtype=torch.float64)
    den = proc.denoiser(model)
    logp, lam = den.score_parts(x, rate, None, pos)
    log_s = proc.log_scores(model, x, rate, None, pos)
    log_r = math.log((1 - 0.37) / 0.37)
    assert torch.allclose(log_s, logp.double() + lam.double().unsqueeze(-1) + log_r, atol=1e-5)
    sigma = -math.log1p(-0.37)
    assert torch.allclose(log_s[:, :3].exp(), scores(model, x[0], sigma)[[0, 2]], rtol=1e-5)
    full = den(x, rate, None, torch.ones_like(pos))
    assert full[1].argmax() == 1 and full[1].exp().max() == 1.0
    exact = proc.denoiser(ScoreToy(toy))(x, rate, None, pos)
    assert torch.allclose(exact[:, :3].exp().double(), toy.conditional(x[0])[[0, 2]], atol=1e-6)
    assert torch.isinf(exact[:, 3:]).all()  # [MASK] and [PAD] never drawn


def test_bad_inputs_are_clear_errors():
    toy = Toy(2, 3)
    with pytest.raises(ValueError, match="needs estimator=time"):
        ScoreEntropyDiffusion(toy.vocab, num_steps=8)
    with pytest.raises(ValueError, match="estimator must be one of"):
        ScoreEntropyDiffusion(toy.vocab, estimator="bogus")
    with pytest.raises(ValueError, match="predictor must be one of"):
        ScoreEntropyDiffusion(toy.vocab, predictor="tweedie")
    proc = ScoreEntropyDiffusion(toy.vocab)
    model = ScoreToy(toy)
    x = toy.seqs[:2].clone()
    x[1, 2] = toy.vocab.mask_id
    with pytest.raises(ValueError, match="batch row 1, position 2"):
        proc.loss(model, x)
    model.causal = True
    with pytest.raises(ValueError, match="causal"):
        proc.loss(model, toy.seqs[:2])
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        GeometricSchedule(1.0, 0.5)
