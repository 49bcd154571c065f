"""Confidence threshold (Fast-dLLM): exact one-token-at-a-time sampling of the joint at
tau = 1, a measurable gap when tau lets correlated positions go together, and the rule on
known probabilities."""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.processes import MaskedDiffusion
from seqdiff.samplers import ThresholdSampler
from support.exact_laws import chi2_ok, empirical
from support.toys import ExactDenoiser, Toy

pytestmark = pytest.mark.usefixtures("one_thread")


def product_of_marginals(toy: Toy) -> torch.Tensor:
    m = toy.conditional(torch.full((toy.L,), toy.vocab.mask_id))
    out = torch.ones(len(toy.seqs), dtype=torch.float64)
    for i in range(toy.L):
        out = out * m[i, toy.seqs[:, i]]
    return out


def test_tau_one_samples_the_exact_joint_and_a_low_tau_does_not():
    toy = Toy(2, 3, seed=4, concentration=0.4)
    den = MaskedDiffusion(toy.vocab).denoiser(ExactDenoiser(toy))
    n = 5000
    out = ThresholdSampler(toy.vocab, tau=1.0).sample(den, n, toy.L, generator=torch.Generator().manual_seed(0))
    assert out.steps == toy.L and out.nfe.tolist() == [toy.L] * n  # one token per step
    assert chi2_ok(empirical(out.tokens, toy.V), toy.p, n)
    # tau = 0 reveals everything at the first step: the product of the marginals, not the joint
    loose = ThresholdSampler(toy.vocab, tau=0.0).sample(den, n, toy.L, generator=torch.Generator().manual_seed(1))
    assert loose.steps == 1
    freq = empirical(loose.tokens, toy.V)
    assert not chi2_ok(freq, toy.p, n)
    assert chi2_ok(freq, product_of_marginals(toy), n)


def test_reveals_every_position_above_tau_and_at_least_the_most_confident():
    V = 3
    probs = torch.tensor([[0.95, 0.03, 0.02], [0.5, 0.3, 0.2], [0.1, 0.85, 0.05], [0.4, 0.3, 0.3]])
    from seqdiff.vocab import VocabSpec

    vocab = VocabSpec(size=V + 2, mask_id=V, pad_id=V + 1)
    logp = torch.full((4, V + 2), -math.inf, dtype=torch.float64)
    logp[:, :V] = probs.log()
    sub = torch.ones(1, 4, dtype=torch.bool)
    assert ThresholdSampler(vocab, tau=0.8).select(logp, sub).tolist() == [[True, False, True, False]]
    assert ThresholdSampler(vocab, tau=0.99).select(logp, sub).tolist() == [[True, False, False, False]]
    # the most confident of the candidates only (here position 2)
    sub = torch.tensor([[False, True, True, True]])
    assert ThresholdSampler(vocab, tau=1.0).select(logp[1:], sub).tolist() == [[False, False, True, False]]
    with pytest.raises(ValueError, match="tau must be in"):
        ThresholdSampler(vocab, tau=1.5)
