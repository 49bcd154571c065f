"""seqdiff/utils/random.py: the one Gumbel-max (categorical draws, keyword placement and ENS's
relaxed order all use it)."""

from __future__ import annotations

import math

import torch

from seqdiff.processes.ens import ens_mask
from seqdiff.samplers import sample_categorical
from seqdiff.utils.random import gumbel, gumbel_argmax, gumbel_noise, uniform


def test_gumbel_max_draws_from_the_softmax():
    logits = torch.tensor([0.0, 1.0, -1.0, -math.inf, 2.5], dtype=torch.float64)
    n = 200_000
    draws = gumbel_argmax(logits.expand(n, -1), generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=5).double() / n
    p = torch.softmax(logits, -1)
    assert freq[3] == 0  # a -inf entry is never drawn
    assert ((freq - p).abs() <= 4 * (p * (1 - p) / n).sqrt() + 1e-12).all(), (freq, p)


def test_the_noise_is_float64_standard_gumbel_and_finite_at_zero():
    g = gumbel_noise((100_000,), generator=torch.Generator().manual_seed(1))
    assert g.dtype == torch.float64
    assert abs(float(g.mean()) - 0.5772156649) < 0.02 and abs(float(g.var()) - math.pi**2 / 6) < 0.05
    assert torch.isfinite(gumbel(torch.zeros(3))).all()


def test_every_user_draws_the_same_noise():
    """sample_categorical, keyword placement (via gumbel_argmax) and ENS consume the same
    uniforms the same way: one implementation."""
    logp = torch.log_softmax(torch.randn(7, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64), -1)
    a = sample_categorical(logp, generator=torch.Generator().manual_seed(3))
    b = gumbel_argmax(logp, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    H = torch.rand(2, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    targets = torch.ones(2, 6, dtype=torch.bool)
    u = uniform((2, 6), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    got = ens_mask(H, targets, torch.tensor([3, 3]), temperature=float("inf"), u=u)
    top3 = gumbel(u).argsort(dim=1, descending=True)[:, :3]
    want = torch.zeros_like(targets).scatter_(1, top3, True)
    assert torch.equal(got, want)
