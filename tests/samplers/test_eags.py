"""EAGS with a state-dependent dummy denoiser, padded rows of different lengths and fixed
tokens: every step reveals exactly each row's k_s highest-entropy masked positions at the
state it sees (tests/samplers/test_ordered.py covers static entropies without padding); both
refinement modes, also under the RC wrapper, change only free positions and trace what they
should (tests/samplers/test_refine.py checks their laws)."""

from __future__ import annotations

import torch

from support.dummies import DNA, Arbitrary
from seqdiff.samplers import Condition, OrderedSampler, RCSymmetricSampler
from seqdiff.samplers.ordered import entropy

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU


def test_each_step_reveals_each_rows_highest_entropy_masked_positions_and_keeps_fixed_and_pad():
    L, B, T = 14, 3, 4
    den = Arbitrary(DNA, L, seed=3)
    valid = torch.ones(B, L, dtype=torch.bool)
    valid[1, 10:] = False
    valid[2, 7:] = False
    tokens = torch.zeros(B, L, dtype=torch.long)
    fixed = torch.zeros(B, L, dtype=torch.bool)
    tokens[:, 2], fixed[:, 2] = 1, True  # a fixed C in every row
    tokens[0, 9:11], fixed[0, 9:11] = torch.tensor([3, 0]), True
    cond = Condition(tokens, fixed, valid)
    s = OrderedSampler(DNA, num_steps=T, order="entropy_high")
    state = s.start(B, L, cond, generator=torch.Generator().manual_seed(0))
    free = valid & ~fixed
    counts = s.reveal_counts(free.sum(1))
    assert counts.sum(0).tolist() == free.sum(1).tolist()
    for step in range(T):
        x_before = state.x.clone()
        masked = (x_before == DNA.mask_id) & free
        h = torch.full((B, L), -1.0, dtype=torch.float64)
        h[masked] = entropy(den.full(x_before, valid)[masked])
        state = s.step(state, den)
        revealed = masked & (state.x != DNA.mask_id)
        for b in range(B):
            k = int(counts[step, b])
            want = sorted(h[b].argsort(descending=True)[:k].tolist()) if k else []
            assert sorted(revealed[b].nonzero().flatten().tolist()) == want, (step, b)
        # nothing else changed: fixed tokens, padding and earlier reveals
        assert torch.equal(state.x[~revealed], x_before[~revealed])
    assert state.done
    assert torch.equal(state.x[fixed], tokens[fixed])
    assert (state.x[~valid] == DNA.pad_id).all()
    assert not (state.x[valid] == DNA.mask_id).any() and not (state.x == 4).any()  # N is never generated


def test_refinement_changes_only_free_positions_of_padded_rows_in_both_modes_and_under_rc():
    L, B = 12, 3
    den = Arbitrary(DNA, L, seed=5)
    valid = torch.ones(B, L, dtype=torch.bool)
    valid[1, 8:] = False
    tokens = torch.zeros(B, L, dtype=torch.long)
    fixed = torch.zeros(B, L, dtype=torch.bool)
    tokens[:, 3], fixed[:, 3] = 2, True
    tokens[2], fixed[2] = 1, True  # a row with nothing to sample
    cond = Condition(tokens, fixed, valid)
    free = valid & ~fixed
    for mode in ("mh", "remask"):
        s = OrderedSampler(DNA, num_steps=3, refine_sweeps=2, refine_mode=mode, refine_groups=3 if mode == "mh" else None)
        out = s.sample(den, B, L, cond, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out.tokens[fixed], tokens[fixed]) and (out.tokens[~valid] == DNA.pad_id).all()
        assert not (out.tokens[free] >= 4).any()  # no N, [MASK] or [PAD] sampled
        assert out.nfe[2] == 0 and out.steps == 5
        acc = out.trace.get("refine_accept")
        if mode == "mh":
            assert acc.shape == (2, B) and torch.isnan(acc[:, 2]).all() and not torch.isnan(acc[:, :2]).any()
        else:
            assert acc is None
    rc = RCSymmetricSampler(DNA, inner="seqdiff.samplers.OrderedSampler", rc="both", num_steps=3, refine_sweeps=2,
                            refine_mode="mh", refine_score="confidence")
    out = rc.sample(den, B, L, cond, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.tokens[fixed], tokens[fixed]) and out.trace["refine_accept"].shape == (2, B)
