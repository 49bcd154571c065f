"""SEDD's analytic and Euler samplers: exact laws on a toy, conditioning, the denoiser bridge.

The reference laws are enumerated in ``sedd_toy.chain_law`` from SEDD's updates written
out literally (``staggered_score * transp_transition``; identity plus dt times the reverse
rate; negative entries clamped), independently of ``seqdiff.samplers.sedd``.
"""

from __future__ import annotations

import pytest
import torch

from seqdiff.processes import MaskedDiffusion, ScoreEntropyDiffusion
from seqdiff.samplers import AncestralSampler, Condition, SEDDAnalyticSampler, SEDDEulerSampler
from seqdiff.schedules import GeometricSchedule, LogLinearSchedule
from support.sedd_toy import ScoreToy, chain_law, chi2_pvalue, law_vector
from support.exact_laws import empirical, exact_sampler_distribution
from support.toys import Toy

SAMPLERS = {"analytic": SEDDAnalyticSampler, "euler": SEDDEulerSampler}
P_MIN = 1e-3  # deterministic seeds; a p-value below this is a failure, not bad luck


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
@pytest.mark.parametrize("schedule", [LogLinearSchedule(1e-3), GeometricSchedule(0.3, 5.0)], ids=repr)
def test_few_steps_match_the_exact_law_of_the_chain(schedule, predictor):
    """T = 3 with wrong scores (mass too small and too large, time-dependent): the samples'
    histogram matches the enumerated law of SEDD's own T-step chain."""
    toy = Toy(2, 3, seed=7, concentration=0.7)
    model = ScoreToy(toy, noise=0.3, mass=0.6, time_scale=0.5, seed=3)
    proc = ScoreEntropyDiffusion(toy.vocab, schedule)
    sampler = SAMPLERS[predictor](toy.vocab, schedule, num_steps=3)
    exact = law_vector(chain_law(model, schedule, 3, predictor), toy.V, toy.L)
    assert float(exact.sum()) == pytest.approx(1.0)
    n = 8000
    out = sampler.sample(proc.denoiser(model), n, toy.L, generator=torch.Generator().manual_seed(1))
    assert not (out.tokens == toy.vocab.mask_id).any()
    stat, p = chi2_pvalue(empirical(out.tokens, toy.V), exact, n)
    assert p > P_MIN, (stat, p)
    # and the law is not the data's: the test can tell the two apart
    assert chi2_pvalue(empirical(out.tokens, toy.V), toy.p, n)[1] < P_MIN


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
def test_a_fixed_token_conditions_the_chain_exactly(predictor):
    toy = Toy(3, 3, seed=4)
    model = ScoreToy(toy, noise=0.2, mass=0.4, time_scale=0.3)
    schedule = GeometricSchedule(0.3, 5.0)
    proc = ScoreEntropyDiffusion(toy.vocab, schedule)
    cond = Condition.from_segments(3, {1: [2]})
    start = torch.tensor([toy.vocab.mask_id, 2, toy.vocab.mask_id])
    exact = law_vector(chain_law(model, schedule, 2, predictor, start=start), toy.V, toy.L)
    n = 6000
    out = SAMPLERS[predictor](toy.vocab, schedule, num_steps=2).sample(
        proc.denoiser(model), n, 3, cond, generator=torch.Generator().manual_seed(5))
    assert (out.tokens[:, 1] == 2).all()
    assert chi2_pvalue(empirical(out.tokens, toy.V), exact, n)[1] > P_MIN


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
@pytest.mark.parametrize("schedule", [LogLinearSchedule(1e-3), GeometricSchedule(1e-4, 20.0)], ids=repr)
def test_many_steps_with_the_exact_score_reproduce_the_joint(schedule, predictor):
    toy = Toy(3, 3, seed=8, concentration=0.5)
    proc = ScoreEntropyDiffusion(toy.vocab, schedule)
    n = 6000
    out = SAMPLERS[predictor](toy.vocab, schedule, num_steps=1000).sample(
        proc.denoiser(ScoreToy(toy)), n, toy.L, generator=torch.Generator().manual_seed(2))
    stat, p = chi2_pvalue(empirical(out.tokens, toy.V), toy.p, n)
    assert p > P_MIN, (stat, p)


def test_fixed_tokens_never_change_padding_stays_and_only_masked_rows_cost():
    toy = Toy(3, 3, seed=1)
    proc = ScoreEntropyDiffusion(toy.vocab)
    L = 12

    class Wide(ScoreToy):  # any length: the toy's score of the first 3 positions, tiled
        def forward(self, x_t, t=None, valid=None, output_mask=None):
            x = x_t.masked_fill(x_t == toy.vocab.pad_id, toy.vocab.mask_id)  # the toy knows no [PAD]
            outs = [super(Wide, self).forward(x[:, i : i + 3], t) for i in range(0, x.shape[1], 3)]
            out = torch.cat(outs, dim=1)
            return out if output_mask is None else out[output_mask]

    cond = Condition.from_segments(L, {0: [2, 2], -3: [1, 0, 1], 5: [0]})
    valid = torch.ones(L, dtype=torch.bool)
    valid[-1] = False
    cond = Condition(cond.tokens, cond.fixed & valid, valid)
    for cls in SAMPLERS.values():
        out = cls(toy.vocab, proc.schedule, num_steps=16).sample(
            proc.denoiser(Wide(toy, mass=0.3)), 64, L, cond, generator=torch.Generator().manual_seed(0))
        fixed = cond.fixed & valid
        assert (out.tokens[:, fixed] == cond.tokens[fixed]).all()
        assert (out.tokens[:, ~valid] == toy.vocab.pad_id).all()
        assert not (out.tokens[:, valid] == toy.vocab.mask_id).any()
        assert (out.nfe <= 17).all() and out.calls <= 17
    # a fully fixed row never calls the backbone
    full = Condition(torch.zeros(3, dtype=torch.long), torch.ones(3, dtype=torch.bool))
    out = SEDDAnalyticSampler(toy.vocab, num_steps=8).sample(proc.denoiser(ScoreToy(toy)), 4, 3, full)
    assert out.calls == 0 and (out.nfe == 0).all()


def test_an_mdlm_model_in_the_analytic_sampler_is_the_ancestral_sampler():
    """A plain denoiser is read as the mass-conserving score (MDLM's get_score); the
    analytic chain is then exactly MDLM's ancestral chain on the same grid."""
    toy = Toy(2, 3, seed=7, concentration=0.7)
    schedule = LogLinearSchedule(1e-3)
    model = ScoreToy(toy)
    exact = exact_sampler_distribution(toy, model, AncestralSampler(toy.vocab, schedule, num_steps=3))
    n = 6000
    mdlm = MaskedDiffusion(toy.vocab, schedule)
    out = SEDDAnalyticSampler(toy.vocab, schedule, num_steps=3).sample(
        mdlm.denoiser(model), n, toy.L, generator=torch.Generator().manual_seed(4))
    assert chi2_pvalue(empirical(out.tokens, toy.V), exact, n)[1] > P_MIN
    # and the enumerated SEDD chain with lambda = 0 is the same law
    assert torch.allclose(law_vector(chain_law(model, schedule, 3, "analytic", time_conditioning=False), toy.V, toy.L),
                          exact, atol=1e-12)


def test_a_sedd_model_works_in_the_existing_samplers():
    """The SEDD denoiser's normalised scores are the data's conditionals for the exact
    score, so the ancestral sampler draws exactly what it draws from an exact MDLM model."""
    toy = Toy(2, 3, seed=7, concentration=0.7)
    schedule = LogLinearSchedule(1e-3)
    sampler = AncestralSampler(toy.vocab, schedule, num_steps=3)
    exact = exact_sampler_distribution(toy, ScoreToy(toy), sampler)
    n = 6000
    proc = ScoreEntropyDiffusion(toy.vocab, schedule)
    out = sampler.sample(proc.denoiser(ScoreToy(toy, mass=0.8)), n, toy.L, generator=torch.Generator().manual_seed(6))
    assert chi2_pvalue(empirical(out.tokens, toy.V), exact, n)[1] > P_MIN  # the mass is ignored there


def test_sampler_arguments_are_checked():
    toy = Toy(2, 3)
    with pytest.raises(ValueError, match="num_steps"):
        SEDDAnalyticSampler(toy.vocab, num_steps=0)
    with pytest.raises(ValueError, match="t_min"):
        SEDDEulerSampler(toy.vocab, t_min=1.0)
