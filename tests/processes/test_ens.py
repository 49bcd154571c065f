"""ENS: masks follow the entropy order, are nested, relax to uniform; LOO entropies."""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.backbones import DiT
from seqdiff.backbones.base import Backbone, select_outputs
from seqdiff.processes import MaskedDiffusion
from seqdiff.processes.ens import ens_mask, token_entropies
from seqdiff.samplers.ordered import entropy
from support.toys import ExactDenoiser, Toy


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


@pytest.mark.parametrize("extra", [0, 3])
def test_groups_at_least_the_number_of_targets_is_exact_leave_one_out(extra):
    """Balanced groups: with ``groups >= n`` targets every pass masks one site, so each
    entropy is the exact LOO entropy H(p(x_i | x_{-i})); with fewer groups some site
    shares its pass with another masked site and its entropy is not the LOO one."""
    toy = Toy(3, 5, seed=3)
    model = ExactDenoiser(toy)
    proc = MaskedDiffusion(toy.vocab)
    x = toy.seqs[[5, 33, 70, 101, 200, 242]]
    valid = torch.ones_like(x, dtype=torch.bool)
    targets = valid.clone()
    targets[:, 1] = False  # a condition token: visible in every pass, never a target
    n = int(targets[0].sum())

    def fn(x_t, v, pos):
        return proc.denoise(model, x_t, None, v, pos)

    exact = torch.zeros(x.shape, dtype=torch.float64)
    for b in range(len(x)):
        for i in targets[b].nonzero().flatten().tolist():
            x_t = x[b].clone()
            x_t[i] = toy.vocab.mask_id
            exact[b, i] = entropy(toy.conditional(x_t)[i].log().unsqueeze(0))
    for seed in range(5):
        H = token_entropies(fn, x, valid, targets, mask_id=toy.vocab.mask_id, groups=n + extra,
                            generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(H.double(), exact, atol=1e-5), (H, exact)
    coarse = token_entropies(fn, x, valid, targets, mask_id=toy.vocab.mask_id, groups=n - 2,
                             generator=torch.Generator().manual_seed(0))
    assert (coarse.double() - exact).abs().max() > 1e-3  # (higher or lower: conditioning on less)


class Bernoulli(Backbone):
    """The perfect model of independent Bernoulli(p_i) tokens (ids 0/1): the same
    conditionals whatever is visible."""

    def __init__(self, p: torch.Tensor, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        logits = torch.full((len(p), vocab_size), -30.0, dtype=torch.float64)
        logits[:, 0], logits[:, 1] = torch.log1p(-p), torch.log(p)
        self.register_buffer("logits", logits)

    def features(self, x_t, t, valid):  # pragma: no cover - forward is overridden
        raise NotImplementedError

    def head(self, h):  # pragma: no cover
        raise NotImplementedError

    def forward(self, x_t, t=None, valid=None, output_mask=None):
        return select_outputs(self.logits.expand(x_t.shape[0], -1, -1), output_mask)


def test_ens_objective_is_not_a_nelbo_on_bernoulli_tokens():
    """Perfect model, independent Bernoulli tokens: the uniform NELBO equals the entropy,
    the ENS objective (n/k weights on the k lowest-entropy sites) is a third below it, at
    its closed form (1/n) sum_i h_i sum_{k >= rank_i} 1/k."""
    from seqdiff.vocab import VocabSpec

    n = 32
    p = torch.linspace(0.01, 0.5, n, dtype=torch.float64)
    h = -(p * p.log() + (1 - p) * torch.log1p(-p))
    H = float(h.mean())
    weights = torch.tensor([sum(1.0 / k for k in range(r, n + 1)) for r in range(1, n + 1)], dtype=torch.float64)
    closed = float((h.sort().values * weights).sum()) / n
    vocab = VocabSpec(4, mask_id=2, pad_id=3)
    model = Bernoulli(p, vocab.size)
    ens = MaskedDiffusion(vocab, corruption="ens", ens_weighting="nelbo")
    assert ens.objective == "ens_objective" and not ens.loss_is_nelbo
    ens_vals, nelbo_vals = [], []
    for step in range(24):
        g = torch.Generator().manual_seed(step)
        x = (torch.rand(256, n, generator=g, dtype=torch.float64) < p).long()
        ens_vals.append(ens.loss(model, x, generator=torch.Generator().manual_seed(100 + step)).nelbo / n)
        nelbo_vals.append(ens.nelbo(model, x, estimator="count", generator=torch.Generator().manual_seed(200 + step)).nelbo / n)
    e, u = torch.cat(ens_vals), torch.cat(nelbo_vals)
    se_e, se_u = float(e.std()) / math.sqrt(len(e)), float(u.std()) / math.sqrt(len(u))
    assert abs(float(e.mean()) - closed) < 4 * se_e, (float(e.mean()), closed, se_e)
    assert abs(float(u.mean()) - H) < 4 * se_u, (float(u.mean()), H, se_u)
    assert closed < 0.7 * H  # 0.3363 vs 0.5052 nats/token: far below the entropy


def test_ens_draws_are_those_of_the_global_batch():
    """A micro-batch (or rank) at ``offset`` of a global batch masks exactly what one
    process holding the global batch masks there: group dealing and tie-breaking noise
    are drawn for the global batch and sliced, as the uniform draws are."""
    from seqdiff.vocab import VocabSpec

    torch.manual_seed(0)
    vocab = VocabSpec(6, 4, 5)
    model = DiT(6, d_model=16, n_layers=1, n_heads=2).eval()
    proc = MaskedDiffusion(vocab, corruption="ens", ens_temperature=0.5, ens_groups=3)
    x = torch.randint(0, 4, (8, 12), generator=torch.Generator().manual_seed(1))
    valid = torch.ones_like(x, dtype=torch.bool)
    full = proc.draw_ens(model, x, valid, valid, generator=torch.Generator().manual_seed(7))
    parts = [proc.draw_ens(model, x[o : o + 4], valid[o : o + 4], valid[o : o + 4],
                           generator=torch.Generator().manual_seed(7), offset=o, total=8) for o in (0, 4)]
    for a, b in zip(full, (torch.cat(t) for t in zip(*parts))):
        assert torch.equal(a, b)


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
