"""Semi-autoregressive generation beyond the trained length, and prefix continuation."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqdiff.errors import ConfigError
from seqdiff.samplers import Condition, SemiAutoregressiveSampler
from support.toys import ExactDenoiser, Toy

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU


def test_windows_cover_the_length_and_end_exactly():
    s = SemiAutoregressiveSampler(Toy().vocab, block_length=8, stride=3)
    assert s.windows(8) == [0] and s.windows(5) == [0]
    assert s.windows(20) == [0, 3, 6, 9, 12]
    assert s.windows(21) == [0, 3, 6, 9, 12, 13]
    assert SemiAutoregressiveSampler(Toy().vocab, block_length=8).windows(16) == [0, 4, 8]  # stride L/2
    with pytest.raises(ConfigError, match="block_length: set it to the model's training length"):
        SemiAutoregressiveSampler(Toy().vocab).windows(10)


def test_the_model_only_sees_trained_length_and_prefix_is_kept():
    toy = Toy(V=3, L=4)
    seen = []

    def denoiser(x, rate, valid, positions):
        seen.append(x.shape[1])
        n = int(positions.sum())
        return torch.log_softmax(torch.zeros(n, toy.vocab.size).index_fill_(1, torch.tensor([3, 4]), -1e9), -1)

    s = SemiAutoregressiveSampler(toy.vocab, block_length=4, stride=1, num_steps=6)
    prefix = [2, 1, 0, 2, 2]
    out = s.sample(denoiser, 3, 11, Condition.from_segments(11, {0: prefix}), generator=torch.Generator().manual_seed(0))
    assert set(seen) == {4}
    assert out.tokens.shape == (3, 11) and (out.tokens[:, :5] == torch.tensor(prefix)).all()
    assert not (out.tokens == toy.vocab.mask_id).any()
    assert (out.nfe > 0).all()


def markov_toy(L: int, seed: int = 0) -> tuple[Toy, torch.Tensor, torch.Tensor]:
    """A stationary first-order Markov chain on {0, 1} as a Toy over windows of L tokens."""
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(2, 2, generator=g, dtype=torch.float64) + 0.2
    P = P / P.sum(1, keepdim=True)
    pi = torch.tensor([P[1, 0], P[0, 1]], dtype=torch.float64)
    pi = pi / pi.sum()
    toy = Toy(V=2, L=L)

    def prob(seq):
        p = pi[seq[0]]
        for a, b in zip(seq, seq[1:]):
            p = p * P[a, b]
        return p

    toy.p = torch.stack([prob(s.tolist()) for s in toy.seqs])
    return toy, P, pi


def test_stride_continuation_samples_the_right_chain():
    """For a first-order Markov chain and the exact window denoiser, each new token
    depends only on the fixed tokens before it, so the semi-AR samples of length N > L
    follow the chain's law over N tokens: checked by a chi-square test over all 2^N."""
    L, N, n = 3, 6, 4000
    toy, P, pi = markov_toy(L)
    model = ExactDenoiser(toy)
    sampler = SemiAutoregressiveSampler(toy.vocab, block_length=L, stride=1, num_steps=8)

    def denoiser(x, rate, valid, positions):
        return torch.log_softmax(model(x, None, valid, positions).float(), -1)

    out = sampler.sample(denoiser, n, N, generator=torch.Generator().manual_seed(3)).tokens
    codes = (out * (2 ** torch.arange(N - 1, -1, -1))).sum(1)
    counts = torch.bincount(codes, minlength=2**N).double()
    expected = []
    for seq in itertools.product([0, 1], repeat=N):
        p = pi[seq[0]]
        for a, b in zip(seq, seq[1:]):
            p = p * P[a, b]
        expected.append(float(p) * n)
    expected = torch.tensor(expected)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # 63 degrees of freedom: the 99.9% quantile is about 103
    assert chi2 < 103, chi2
