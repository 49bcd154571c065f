"""What the threshold and entropy-bound samplers share: fixed tokens and padding never
change, NFE counts one per step per unfinished row, the loop stops as soon as nothing is
masked, semi-AR blocks finish left to right, and the RC wrapper composes with them."""

from __future__ import annotations

import pytest
import torch

from seqdiff.samplers import Condition, EntropyBoundSampler, RCSymmetricSampler, ThresholdSampler
from seqdiff.samplers.adaptive import current_block
from support.dummies import DNA, Arbitrary

pytestmark = pytest.mark.usefixtures("one_thread")

ONE_AT_A_TIME = [(ThresholdSampler, {"tau": 1.0}), (EntropyBoundSampler, {"gamma": 0.0})]


@pytest.mark.parametrize("cls,kw", ONE_AT_A_TIME, ids=["threshold", "entropy_bound"])
def test_fixed_tokens_padding_nfe_and_early_stop(cls, kw):
    L = 12
    cond = Condition.from_segments(L, {0: [2, 2], -3: [1, 0, 1], 5: [0]})
    valid = torch.ones(2, L, dtype=torch.bool)
    valid[1, 7:] = False  # row 1: its suffix is padding
    fixed = cond.fixed.expand(2, -1).clone()
    fixed[1, 7:] = False
    cond = Condition(cond.tokens.expand(2, -1), fixed, valid)
    den = Arbitrary(DNA, L, seed=3)
    seen = []
    out = cls(DNA, **kw).sample(den, 2, L, cond, generator=torch.Generator().manual_seed(0),
                                callback=lambda s: seen.append(s.x.clone()))
    free = valid & ~fixed
    for x in seen:  # at every step, not only at the end
        assert (x[fixed] == cond.tokens[fixed]).all()
        assert (x[~valid] == DNA.pad_id).all()
    assert not (out.tokens[free] == DNA.mask_id).any()
    assert out.nfe.tolist() == free.sum(1).tolist() == [6, 4]  # one token per step, each row its own count
    assert out.steps == out.calls == 6  # and the loop ended when the last row was done
    revealed = out.trace["revealed"]
    assert revealed.sum(0).tolist() == [6, 4] and revealed[4:, 1].tolist() == [0, 0]


def test_a_loose_rule_finishes_in_one_call_and_nothing_free_costs_nothing():
    L = 10
    den = Arbitrary(DNA, L, seed=1)
    out = ThresholdSampler(DNA, tau=0.0).sample(den, 3, L, generator=torch.Generator().manual_seed(0))
    assert out.steps == 1 and out.nfe.tolist() == [1, 1, 1]
    full = Condition(torch.zeros(L, dtype=torch.long), torch.ones(L, dtype=torch.bool))
    none = EntropyBoundSampler(DNA, gamma=0.0).sample(den, 2, L, full)
    assert none.steps == 0 and none.nfe.tolist() == [0, 0]


def test_blocks_finish_left_to_right():
    masked = torch.tensor([[False, True, True, True, True, True], [False, False, False, False, True, True]])
    assert current_block(masked, 2).tolist() == [[False, True, False, False, False, False],
                                                 [False, False, False, False, True, True]]
    assert torch.equal(current_block(masked, None), masked)
    L, bs = 12, 4
    den = Arbitrary(DNA, L, seed=5)
    seen = []
    out = EntropyBoundSampler(DNA, gamma=0.5, block_size=bs).sample(
        den, 4, L, generator=torch.Generator().manual_seed(0), callback=lambda s: seen.append(s.x.clone()))
    blocks = torch.arange(L) // bs
    for x in seen:  # a block starts only once every block to its left is complete
        for b in range(1, L // bs):
            started = (x[:, blocks == b] != DNA.mask_id).any(1)
            left_done = (x[:, blocks < b] != DNA.mask_id).all(1)
            assert not (started & ~left_done).any()
    assert out.steps >= L // bs and not (out.tokens == DNA.mask_id).any()


@pytest.mark.parametrize("inner", ["seqdiff.samplers.ThresholdSampler", "seqdiff.samplers.EntropyBoundSampler"])
def test_composes_with_the_reverse_complement_wrapper(inner):
    L = 10
    den = Arbitrary(DNA, L, seed=2)
    cond = Condition.from_segments(L, {0: [0, 0, 1], -2: [2, 3]})
    s = RCSymmetricSampler(DNA, inner=inner, rc="both", temperature=0.0)
    out = s.sample(den, 6, L, cond, generator=torch.Generator().manual_seed(0))
    assert (out.tokens[:, cond.fixed] == cond.tokens[cond.fixed]).all()
    assert not (out.tokens == DNA.mask_id).any()
    assert (out.nfe % 2 == 0).all() and (out.nfe >= 2).all()  # two backbone calls per averaged call
