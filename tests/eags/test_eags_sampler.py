"""EAGS with a state-dependent dummy denoiser, padded rows of different lengths and fixed
tokens: every step reveals exactly each row's k_s highest-entropy masked positions at the
state it sees (tests/test_ordered_sampler.py covers static entropies without padding)."""

from __future__ import annotations

import torch

from dummies import DNA, Arbitrary
from seqdiff.samplers import Condition, OrderedSampler
from seqdiff.samplers.ordered import entropy


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
