"""Classifier-free guidance (seqdiff/samplers/guidance.py): the arithmetic against a hand
computation, w = 0 is the conditional model bit for bit, large w picks the ratio's argmax,
one batched call of both passes, fixed tokens kept under every sampler."""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.samplers import Condition
from seqdiff.samplers.guidance import GuidedDenoiser, guided_log_probs
from seqdiff.vocab import VocabSpec
from support.labelled import labelled_run

# ids 0..3 real, 4 [MASK], 5 [PAD], 3 never generated
VOCAB = VocabSpec(size=6, mask_id=4, pad_id=5, never_generate=(3,))


def test_guidance_matches_a_hand_computation():
    pc = [0.5, 0.3, 0.2]  # conditional p(x0 | x_t, y) on the allowed ids 0, 1, 2
    pu = [0.2, 0.4, 0.4]  # unconditional p(x0 | x_t)
    w = 2.0
    lc = torch.tensor([[math.log(p) for p in pc] + [-math.inf] * 3])
    lu = torch.tensor([[math.log(p) for p in pu] + [-math.inf] * 3])
    # by hand: p_w ∝ pc^(1+w) pu^(-w) = 0.5^3/0.2^2, 0.3^3/0.4^2, 0.2^3/0.4^2
    raw = [0.125 / 0.04, 0.027 / 0.16, 0.008 / 0.16]
    want = [r / sum(raw) for r in raw]
    got = guided_log_probs(lc, lu, w, VOCAB)
    assert got.dtype == torch.float64
    assert torch.allclose(got[0, :3].exp(), torch.tensor(want, dtype=torch.float64), atol=1e-7, rtol=0)
    assert torch.isinf(got[0, 3:]).all()  # forbidden, [MASK], [PAD]: no mass


def test_an_id_the_vocabulary_forbids_keeps_no_mass_even_if_both_passes_give_it_some():
    lc = torch.log_softmax(torch.tensor([[1.0, 0.0, 0.0, 5.0, -30.0, -30.0]]), -1)
    lu = torch.log_softmax(torch.tensor([[0.0, 0.0, 0.0, 0.0, -30.0, -30.0]]), -1)
    out = guided_log_probs(lc, lu, 3.0, VOCAB)
    assert out[0, 3] == -math.inf and torch.isclose(out[0, :3].exp().sum(), torch.tensor(1.0, dtype=torch.float64))


def test_large_scale_picks_the_argmax_of_the_conditional_over_unconditional_ratio():
    g = torch.Generator().manual_seed(0)
    lc = torch.log_softmax(torch.randn(50, 6, generator=g, dtype=torch.float64).index_fill(1, torch.tensor([3, 4, 5]), -math.inf), -1)
    lu = torch.log_softmax(torch.randn(50, 6, generator=g, dtype=torch.float64).index_fill(1, torch.tensor([3, 4, 5]), -math.inf), -1)
    out = guided_log_probs(lc, lu, 1e6, VOCAB)
    ratio = (lc - lu)[:, :3]
    assert torch.equal(out.argmax(-1), ratio.argmax(-1))
    assert (out.max(-1).values > -1e-6).all()  # a point mass on it
    assert not torch.equal(lc.argmax(-1), ratio.argmax(-1))  # the case is not trivial


def test_point_mass_rows_of_subs_stay_point_masses():
    row = torch.full((1, 6), -math.inf).index_fill(1, torch.tensor([1]), 0.0)
    out = guided_log_probs(row, row, 4.0, VOCAB)
    assert out[0, 1] == 0.0 and torch.isinf(out[0, [0, 2, 3, 4, 5]]).all()


class Recorder:
    """A labelled toy denoiser whose output depends on the label; records its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, x_t, rate, valid, positions, label):
        self.calls.append((x_t.shape[0], label.clone()))
        n = int(positions.sum())
        rows = positions.nonzero()[:, 0]
        logits = torch.zeros(n, 6)
        logits[:, 0] = label[rows, 0].float()  # the label moves mass to id 0
        logits[:, 1] = 0.5
        return VOCAB.log_softmax_allowed(logits)


def test_both_passes_are_one_batched_call_and_scale_zero_is_the_conditional_pass_alone():
    rec = Recorder()
    x = torch.full((3, 4), 4)
    rate, valid, pos = torch.ones(3), torch.ones(3, 4, dtype=torch.bool), torch.ones(3, 4, dtype=torch.bool)
    guided = GuidedDenoiser(rec, torch.tensor([1]), torch.tensor([2]), 1.5, VOCAB)
    out = guided(x, rate, valid, pos)
    assert len(rec.calls) == 1 and rec.calls[0][0] == 6
    assert rec.calls[0][1][:, 0].tolist() == [1, 1, 1, 2, 2, 2]  # labels, then the no-label id
    cond = rec(x, rate, valid, pos, torch.ones(3, 1, dtype=torch.long))
    unc = rec(x, rate, valid, pos, torch.full((3, 1), 2))
    assert torch.allclose(out, guided_log_probs(cond, unc, 1.5, VOCAB))
    zero = GuidedDenoiser(rec, torch.tensor([1]), torch.tensor([2]), 0.0, VOCAB)
    assert torch.equal(zero(x, rate, valid, pos), cond)  # bit for bit, one pass of 3 rows
    assert rec.calls[-1][0] == 3


def test_a_negative_or_infinite_scale_is_refused():
    for bad in (-0.5, math.inf, math.nan):
        with pytest.raises(ValueError, match="guidance: scale must be"):
            GuidedDenoiser(Recorder(), torch.tensor([0]), torch.tensor([1]), bad, VOCAB)


# ---------------------------------------------------------------------------- on a labelled run
@pytest.fixture(scope="module")
def run():
    return labelled_run(steps=40)


SAMPLERS = {
    "ancestral": {"_target_": "seqdiff.samplers.AncestralSampler", "num_steps": 8},
    "ancestral_uncached": {"_target_": "seqdiff.samplers.AncestralSampler", "num_steps": 8, "cache": False},
    "eags": {"_target_": "seqdiff.samplers.EAGSSampler", "num_steps": 4},
    "semi_ar": {"_target_": "seqdiff.samplers.SemiAutoregressiveSampler", "num_steps": 8, "block_length": 8},
    "rc": {"_target_": "seqdiff.samplers.RCSymmetricSampler", "inner": "seqdiff.samplers.AncestralSampler",
           "num_steps": 8},
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_scale_zero_samples_exactly_what_the_conditional_model_samples(run, name):
    sampler = run.build_sampler(SAMPLERS[name])
    a = run.generate(6, 16, sampler=sampler, seed=3, label="beta")
    b = run.generate(6, 16, sampler=sampler, seed=3, label="beta", guidance=0.0)
    assert torch.equal(a.tokens, b.tokens)
    c = run.generate(6, 16, sampler=sampler, seed=3, label="beta", guidance=4.0)
    assert not torch.equal(a.tokens, c.tokens)  # guidance does something on this model


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_fixed_tokens_never_change_under_guidance(run, name):
    left, right = run.domain.encode("ACGTA"), run.domain.encode("GGT")
    cond = Condition.from_segments(16, {0: left, -3: right})
    out = run.generate(5, 16, cond, sampler=run.build_sampler(SAMPLERS[name]), seed=1, label="alpha", guidance=3.0)
    assert (out.tokens[:, :5] == torch.tensor(left)).all() and (out.tokens[:, -3:] == torch.tensor(right)).all()
    assert (out.tokens != run.vocab.mask_id).all()


def test_an_unknown_label_is_one_line_listing_the_known_ones(run):
    from seqdiff.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^condition.label: unknown species label 'gamma' \(known: alpha, beta\)$"):
        run.generate(2, 16, label="gamma")
    with pytest.raises(ConfigError, match="guidance needs a label"):
        run.generate(2, 16, guidance=2.0)
