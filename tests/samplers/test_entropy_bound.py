"""Entropy-bounded unmasking (EB-sampler): exact one-token-at-a-time sampling of the joint
at gamma = 0, a measurable gap at a loose gamma, and the prefix rule on known entropies."""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.processes import MaskedDiffusion
from seqdiff.samplers import EntropyBoundSampler
from seqdiff.samplers.entropy_bound import error_proxy
from seqdiff.vocab import VocabSpec
from support.exact_laws import chi2_ok, empirical
from support.toys import ExactDenoiser, Toy

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("proxy", ["entropy", "confidence", "margin"])
def test_gamma_zero_samples_the_exact_joint_and_a_loose_gamma_does_not(proxy):
    toy = Toy(2, 3, seed=4, concentration=0.4)
    den = MaskedDiffusion(toy.vocab).denoiser(ExactDenoiser(toy))
    n = 4000
    out = EntropyBoundSampler(toy.vocab, gamma=0.0, proxy=proxy).sample(
        den, n, toy.L, generator=torch.Generator().manual_seed(0))
    assert out.steps == toy.L and out.nfe.tolist() == [toy.L] * n
    assert chi2_ok(empirical(out.tokens, toy.V), toy.p, n)
    loose = EntropyBoundSampler(toy.vocab, gamma=100.0, proxy=proxy).sample(
        den, n, toy.L, generator=torch.Generator().manual_seed(1))
    assert loose.steps == 1  # everything at once: the product of the marginals
    assert not chi2_ok(empirical(loose.tokens, toy.V), toy.p, n)


def test_reveals_the_longest_low_proxy_prefix_within_gamma():
    V = 2
    vocab = VocabSpec(size=V + 2, mask_id=V, pad_id=V + 1)
    p = torch.tensor([0.5, 0.99, 0.9, 0.7], dtype=torch.float64)  # entropies: 0.693, 0.056, 0.325, 0.611
    logp = torch.full((4, V + 2), -math.inf, dtype=torch.float64)
    logp[:, 0], logp[:, 1] = p.log(), (1 - p).log()
    h = error_proxy(logp, "entropy")
    assert h.tolist() == pytest.approx((-(p * p.log() + (1 - p) * (1 - p).log())).tolist())
    sub = torch.ones(1, 4, dtype=torch.bool)
    pick = lambda g, **kw: EntropyBoundSampler(vocab, gamma=g, **kw).select(logp, sub).tolist()[0]
    assert pick(0.0) == [False, True, False, False]  # at least one: the lowest
    assert pick(0.38) == [False, True, False, False]  # 0.056 + 0.325 = 0.381 > 0.38
    assert pick(0.39) == [False, True, True, False]
    assert pick(0.99) == [False, True, True, False]  # + 0.611 = 0.992 > 0.99
    assert pick(1.0) == [False, True, True, True]
    assert pick(1.69) == [True, True, True, True]  # 1.685
    # the paper's rule: the sum less its largest term (0.056 + 0.325 = 0.381, then 0.992)
    assert pick(0.05, exclude_max=True) == [False, True, False, False]
    assert pick(0.38, exclude_max=True) == [False, True, True, False]
    assert pick(0.39, exclude_max=True) == [False, True, True, True]
    assert pick(0.99, exclude_max=True) == [False, True, True, True]
    assert pick(1.0, exclude_max=True) == [True, True, True, True]
    with pytest.raises(ValueError, match="gamma must be"):
        EntropyBoundSampler(vocab, gamma=-0.1)
    with pytest.raises(ValueError, match="proxy must be one of"):
        EntropyBoundSampler(vocab, proxy="vibes")
