"""Reverse-complement consistent sampling: the averaged denoiser is exactly RC-equivariant
for an arbitrary (non-equivariant) denoiser, padded rows included; the strand mode's law is
a 50/50 mix of the two strands; the config switch builds."""

from __future__ import annotations

import pytest
import torch

from support.dummies import DNA, Arbitrary
from seqdiff.samplers import Condition, OrderedSampler, RCSymmetricDenoiser, RCSymmetricSampler, reverse_complement
from seqdiff.samplers.rc import mirror_index

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU

COMP = torch.tensor(DNA.complement)


def padded_batch(B=4, L=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 4, (B, L), generator=g)
    x[torch.rand(B, L, generator=g) < 0.4] = DNA.mask_id
    valid = torch.ones(B, L, dtype=torch.bool)
    valid[1, 8:] = False
    valid[3, 5:] = False
    return x.masked_fill(~valid, DNA.pad_id), valid


def test_mirror_and_reverse_complement_are_involutions_over_real_positions():
    x, valid = padded_batch()
    idx = mirror_index(valid)
    assert torch.equal(idx.gather(1, idx), torch.arange(x.shape[1]).expand_as(x))
    assert idx[3].tolist() == [4, 3, 2, 1, 0, 5, 6, 7, 8, 9, 10]  # 5 real positions, padding fixed
    assert torch.equal(reverse_complement(reverse_complement(x, COMP, valid), COMP, valid), x)
    assert reverse_complement(torch.tensor([[0, 0, 1, 5]]), COMP).tolist() == [[5, 2, 3, 3]]


@pytest.mark.parametrize("combine", ["logits", "probs"])
def test_averaged_denoiser_is_exactly_rc_equivariant(combine):
    x, valid = padded_batch()
    base = Arbitrary(DNA, x.shape[1], seed=1)
    pos = (x == DNA.mask_id) & valid
    pos[0, 0] = True  # also a visible position
    rate = torch.full((x.shape[0],), 0.5, dtype=torch.float64)
    # the dummy itself is far from equivariant
    x_rc = reverse_complement(x, COMP, valid)
    idx = mirror_index(valid)
    pos_rc = pos.gather(1, idx)

    def in_original_order(lp_rc):
        """rc-frame answers at rc sites, mapped back: row order of ``pos`` and comp(v)."""
        full = torch.full((*x.shape, DNA.size), float("nan"), dtype=lp_rc.dtype)
        full[pos_rc] = lp_rc
        return full.gather(1, idx.unsqueeze(-1).expand(-1, -1, DNA.size))[pos][:, COMP]

    raw, raw_rc = base(x, rate, valid, pos), base(x_rc, rate, valid, pos_rc)
    assert (raw - in_original_order(raw_rc))[:, :4].abs().max() > 0.5
    sym = RCSymmetricDenoiser(base, DNA, combine)
    a, b = sym(x, rate, valid, pos), sym(x_rc, rate, valid, pos_rc)
    assert torch.allclose(a, in_original_order(b), atol=1e-12, rtol=0)
    assert torch.allclose(a.exp().sum(-1), torch.ones(len(a), dtype=a.dtype))
    assert (a[:, 4] == float("-inf")).all()  # never-generated ids stay impossible
    # combine=logits is the renormalised mean of log-probabilities
    if combine == "logits":
        want = torch.log_softmax(0.5 * (raw + in_original_order(raw_rc)), -1)
        assert torch.allclose(a, want, atol=1e-12)


def test_strand_mode_draws_each_strand_half_the_time_and_keeps_the_condition():
    L, n = 10, 400
    den = Arbitrary(DNA, L, seed=2)
    cond = Condition.from_segments(L, {0: [0, 0, 1], -2: [2, 3]})
    greedy = dict(num_steps=3, order="entropy_high", temperature=0.0)
    fwd = OrderedSampler(DNA, **greedy).sample(den, 1, L, cond).tokens[0]
    rc_cond = Condition(reverse_complement(cond.tokens[None], COMP)[0], cond.fixed.flip(0))
    rev = reverse_complement(OrderedSampler(DNA, **greedy).sample(den, 1, L, rc_cond).tokens, COMP)[0]
    assert not torch.equal(fwd, rev)  # the two strands give different greedy answers
    s = RCSymmetricSampler(DNA, inner="seqdiff.samplers.OrderedSampler", rc="strand", **greedy)
    out = s.sample(den, n, L, cond, generator=torch.Generator().manual_seed(0))
    is_fwd = (out.tokens == fwd).all(1)
    is_rev = (out.tokens == rev).all(1)
    assert bool((is_fwd | is_rev).all())
    assert abs(is_fwd.double().mean().item() - 0.5) < 0.1
    assert (out.tokens[:, cond.fixed] == cond.tokens[cond.fixed]).all()
    # averaging doubles the backbone evaluations
    both = RCSymmetricSampler(DNA, rc="both", **greedy).sample(den, 2, L, cond, generator=torch.Generator().manual_seed(0))
    assert both.nfe.tolist() == [6, 6] and (both.tokens[:, cond.fixed] == cond.tokens[cond.fixed]).all()


def test_errors():
    from seqdiff.vocab import VocabSpec

    with pytest.raises(ValueError, match="no complement map"):
        RCSymmetricSampler(VocabSpec(size=5, mask_id=3, pad_id=4))
    with pytest.raises(ValueError, match="rc must be one of"):
        RCSymmetricSampler(DNA, rc="sometimes")
    with pytest.raises(ValueError, match="not a sampler class"):
        RCSymmetricSampler(DNA, inner="seqdiff.samplers.RCSymmetricSampler")
