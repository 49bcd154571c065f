"""The synthetic source: entropy rate against closed forms, enumeration and sampling."""

import itertools
import math

import pytest
import torch

from seqdiff_recipes.synthetic import MarkovSource


def test_iid_source_entropy_is_the_row_entropy():
    m = MarkovSource(alphabet_size=4, order=0, seed=3)
    p = m.transition[0]
    assert m.entropy_rate() == pytest.approx(float(-(p * p.log()).sum()))


def test_two_state_chain_closed_form():
    m = MarkovSource(alphabet_size=2, order=1, seed=0)
    a, b = float(m.transition[0, 1]), float(m.transition[1, 0])  # P(0->1), P(1->0)
    pi0 = b / (a + b)
    h = lambda q: -(q * math.log(q) + (1 - q) * math.log(1 - q))  # noqa: E731
    assert m.entropy_rate() == pytest.approx(pi0 * h(a) + (1 - pi0) * h(b), rel=1e-12)
    assert float(m.stationary[0]) == pytest.approx(pi0, rel=1e-12)


def test_window_entropy_by_enumeration():
    m = MarkovSource(alphabet_size=3, order=2, seed=1, concentration=0.7, motifs=[[0, 1, 2, 0]], motif_strength=0.8)
    L = 5
    seqs = torch.tensor(list(itertools.product(range(3), repeat=L)))
    lp = m.log_prob(seqs)
    assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-12)
    H = float(-(lp.exp() * lp).sum())
    assert m.window_entropy(L) * L == pytest.approx(H, rel=1e-10)


def test_empirical_nll_converges_to_entropy_rate():
    m = MarkovSource(alphabet_size=4, order=3, seed=2, concentration=0.5, motifs=[[3, 0, 3, 0, 0, 3]])
    x = m.sample(200, 2000, torch.Generator().manual_seed(0))
    per_token = float(-m.log_prob(x).sum()) / x.numel()
    assert per_token == pytest.approx(m.window_entropy(2000), rel=0.01)


def test_planted_motif_is_frequent():
    motif = [2, 2, 0, 3, 1, 1]
    m = MarkovSource(alphabet_size=4, order=3, seed=4, concentration=0.5, motifs=[motif], motif_strength=0.95)
    x = m.sample(1, 200_000, torch.Generator().manual_seed(0))[0].tolist()
    s = "".join(map(str, x))
    found = s.count("".join(map(str, motif)))
    assert found > 5 * 200_000 / 4**6  # far above chance
    with pytest.raises(ValueError, match="longer than order"):
        MarkovSource(alphabet_size=4, order=3, motifs=[[1, 2, 3]])
