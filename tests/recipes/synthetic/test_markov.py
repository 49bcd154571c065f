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


# ---------------------------------------------------------------------------- exact laws
# Each law below is checked against a computation written here from the transition rows
# alone: the k-gram chain built symbol by symbol, power iteration, brute force over V^L.

CHAINS = [
    dict(alphabet_size=2, order=1, seed=0),
    dict(alphabet_size=3, order=2, seed=1, concentration=0.7, motifs=[[0, 1, 2, 0]], motif_strength=0.8),
    dict(alphabet_size=3, order=0, seed=2),
    dict(alphabet_size=2, order=2, seed=3, motifs=[[1, 1, 0, 1]], motif_strength=0.9),
]


def _power_stationary(m: MarkovSource, iters: int = 20_000) -> list[float]:  # until converged
    """Stationary law of the k-gram chain by power iteration over explicit symbol tuples."""
    V, k = m.V, m.k
    states = list(itertools.product(range(V), repeat=k))
    index = {s: i for i, s in enumerate(states)}
    T = [[0.0] * len(states) for _ in states]
    for i, s in enumerate(states):
        row = i  # state_index is base-V with the first symbol most significant: same order
        for a in range(V):
            T[i][index[(s + (a,))[1:]] if k else 0] += float(m.transition[row, a])
    pi = [1.0 / len(states)] * len(states)
    for _ in range(iters):
        new = [sum(pi[i] * T[i][j] for i in range(len(states))) for j in range(len(states))]
        done = max(abs(u - v) for u, v in zip(new, pi)) < 1e-17
        pi = new
        if done:
            break
    return pi


def _enumerate(m: MarkovSource, L: int):
    """Every sequence of length L with its probability, computed symbol by symbol."""
    V, k = m.V, m.k
    pi = _power_stationary(m) if k else [1.0]
    for x in itertools.product(range(V), repeat=L):
        s = 0
        for a in x[:k]:
            s = s * V + a
        p = pi[s] if k else 1.0
        for j in range(k, L):
            ctx = 0
            for a in x[j - k : j]:
                ctx = ctx * V + a
            p *= float(m.transition[ctx, x[j]])
        yield x, p


@pytest.mark.parametrize("spec", CHAINS)
def test_stationary_law_by_power_iteration(spec):
    m = MarkovSource(**spec)
    if m.k == 0:
        assert m.stationary.tolist() == [1.0]
        return
    pi = _power_stationary(m)
    assert m.stationary.tolist() == pytest.approx(pi, abs=1e-12)


@pytest.mark.parametrize("spec", CHAINS)
def test_kmer_law_is_every_positions_marginal_by_enumeration(spec):
    m = MarkovSource(**spec)
    L = 6
    seqs = list(_enumerate(m, L))
    assert sum(p for _, p in seqs) == pytest.approx(1.0, abs=1e-12)
    for k in range(1, L + 1):
        law = m.kmer_law(k)
        assert float(law.sum()) == pytest.approx(1.0, abs=1e-12)
        for j in range(L - k + 1):  # stationarity: the same marginal at every position
            marg = [0.0] * m.V**k
            for x, p in seqs:
                c = 0
                for a in x[j : j + k]:
                    c = c * m.V + a
                marg[c] += p
            assert law.tolist() == pytest.approx(marg, abs=1e-12)
        for c in (0, m.V**k - 1, (m.V**k) // 3):
            word = [(c // m.V ** (k - 1 - i)) % m.V for i in range(k)]
            assert m.string_probability(word) == pytest.approx(float(law[c]), rel=1e-12, abs=1e-300)


def test_log_prob_of_a_given_sequence_by_hand():
    m = MarkovSource(alphabet_size=2, order=1, seed=0)
    P = m.transition
    a, b = float(P[0, 1]), float(P[1, 0])
    pi0 = b / (a + b)  # closed form of the two-state chain
    x = [0, 1, 1, 0, 1]
    hand = pi0 * float(P[0, 1]) * float(P[1, 1]) * float(P[1, 0]) * float(P[0, 1])
    assert float(m.log_prob(torch.tensor([x]))[0]) == pytest.approx(math.log(hand), rel=1e-12)
    m2 = MarkovSource(**CHAINS[1])
    for x, p in list(_enumerate(m2, 4))[::7]:
        assert float(m2.log_prob(torch.tensor([x]))[0]) == pytest.approx(math.log(p), rel=1e-10)


@pytest.mark.parametrize("spec", CHAINS)
def test_nll_moments_by_enumeration(spec):
    m = MarkovSource(**spec)
    L = 6
    mean = var = 0.0
    seqs = list(_enumerate(m, L))
    mean = sum(-p * math.log(p) for _, p in seqs if p > 0)
    var = sum(p * math.log(p) ** 2 for _, p in seqs if p > 0) - mean**2
    got_mean, got_var = m.nll_moments(L)
    assert got_mean == pytest.approx(mean, rel=1e-10)
    assert got_mean == pytest.approx(L * m.window_entropy(L), rel=1e-12)
    assert got_var == pytest.approx(var, rel=1e-8)


@pytest.mark.parametrize("motif", [[0, 1, 2, 0], [2, 2], [1, 0, 1, 0, 1]])
def test_motif_expected_count_by_enumeration(motif):
    m = MarkovSource(**CHAINS[1])
    L = 7
    count = 0.0
    for x, p in _enumerate(m, L):
        count += p * sum(list(x[j : j + len(motif)]) == motif for j in range(L - len(motif) + 1))
    assert (L - len(motif) + 1) * m.string_probability(motif) == pytest.approx(count, rel=1e-10)
