"""ENS: masks follow the entropy order, are nested, relax to uniform; LOO entropies."""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.backbones import DiT
from seqdiff.processes import MaskedDiffusion
from seqdiff.processes.ens import ens_mask, token_entropies
from seqdiff.samplers.ordered import entropy
from toys import ExactDenoiser, Toy


def test_zero_temperature_masks_exactly_the_lowest_entropy_targets_nested():
    g = torch.Generator().manual_seed(0)
    H = torch.rand(3, 12, generator=g)
    targets = torch.ones(3, 12, dtype=torch.bool)
    targets[:, :2] = False  # a condition: never masked
    prev = torch.zeros_like(targets)
    for k in range(0, 11):
        m = ens_mask(H, targets, torch.full((3,), k), generator=torch.Generator().manual_seed(k))
        assert (m.sum(1) == k).all() and not (m & ~targets).any()
        for b in range(3):
            lowest = H[b].masked_fill(~targets[b], math.inf).argsort()[:k]
            assert set(m[b].nonzero().flatten().tolist()) == set(lowest.tolist())
        assert not (prev & ~m).any()  # M_k contains M_{k-1}
        prev = m


def test_infinite_temperature_is_uniform_masking():
    H = torch.linspace(0, 3, 10).expand(20000, -1)
    targets = torch.ones_like(H, dtype=torch.bool)
    m = ens_mask(H, targets, torch.full((20000,), 3), temperature=float("inf"), generator=torch.Generator().manual_seed(1))
    freq = m.double().mean(0)
    n = 20000
    chi2 = float((n * (freq - 0.3) ** 2 / (0.3 * 0.7)).sum())
    assert chi2 < 9 + 5 * math.sqrt(18)
    # a finite temperature interpolates: low-entropy sites are masked more often
    m1 = ens_mask(H, targets, torch.full((20000,), 3), temperature=1.0, generator=torch.Generator().manual_seed(2))
    f1 = m1.double().mean(0)
    assert f1[0] > 0.3 > f1[-1]


def test_loo_entropies_with_one_group_per_site_are_exact():
    toy = Toy(3, 4, seed=3)
    model = ExactDenoiser(toy)
    proc = MaskedDiffusion(toy.vocab)
    x = toy.seqs[[5, 33, 70]]
    valid = torch.ones_like(x, dtype=torch.bool)

    def fn(x_t, v, pos):
        return proc.denoise(model, x_t, None, v, pos)

    # with groups = L every site ends up in a group of its own only by chance; use many
    # groups so that each group holds at most one site per row with high probability
    H = token_entropies(fn, x, valid, valid, mask_id=toy.vocab.mask_id, groups=64, generator=torch.Generator().manual_seed(0))
    for b in range(3):
        for i in range(toy.L):
            x_t = x[b].clone()
            x_t[i] = toy.vocab.mask_id
            exact = entropy(toy.conditional(x_t)[i].log().unsqueeze(0))
            # a site sharing its group with another masked site has a higher entropy
            assert float(H[b, i]) >= float(exact) - 1e-5


def test_ens_training_runs_and_reduces_the_loss():
    torch.manual_seed(0)
    V = 6
    from seqdiff.vocab import VocabSpec

    vocab = VocabSpec(V, 4, 5)
    model = DiT(V, d_model=32, n_layers=2, n_heads=2)
    proc = MaskedDiffusion(vocab, corruption="ens", ens_temperature=0.5, ens_groups=2, ens_weighting="mean")
    x = (torch.randint(0, 4, (16, 1), generator=torch.Generator().manual_seed(0)) + torch.arange(16)) % 4
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for step in range(80):
        out = proc.loss(model, x, generator=torch.Generator().manual_seed(step))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(out.loss.detach()))
    assert sum(losses[-5:]) < 0.75 * sum(losses[:5])
    # evaluation of an ENS-trained model uses the standard (uniform) NELBO
    ev = proc.nelbo(model, x, estimator="count", generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(ev.nelbo).all()
    with pytest.raises(ValueError, match="continuous time"):
        MaskedDiffusion(vocab, corruption="ens", num_steps=10)
