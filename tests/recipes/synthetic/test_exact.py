"""Exact sample metrics of the synthetic source: floors, calibration, bounds that cover."""

import math

import pytest
import torch

from seqdiff_recipes.dna import DNADomain
from seqdiff_recipes.synthetic import MarkovData, MarkovSource
from seqdiff_recipes.synthetic.exact import ExactScorer, clopper_pearson_upper, entropy_bounds_bits, kmer_counts

LN2 = math.log(2.0)


def _nll_bits(src: MarkovSource, x: torch.Tensor) -> torch.Tensor:
    return -src.log_prob(x) / (x.shape[1] * LN2)


def test_kmer_counts_are_overlapping_within_rows():
    x = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1]])
    c = kmer_counts(x, 2, 2)  # rows: 01 11 10 | 11 11 11 ; never across the row boundary (0 -> 1)
    assert c.tolist() == [0.0, 1.0, 1.0, 4.0]


def test_iid_floor_matches_the_chi_square_expectation():
    # i.i.d. symbols: 2 N KL(p_hat || q) -> chi-square with V - 1 degrees of freedom, so the
    # simulated floor of k = 1 must sit at (V - 1) / (2 N) nats.
    src = MarkovSource(alphabet_size=4, order=0, seed=3)
    n, L = 16, 64
    floor = ExactScorer(src, replicates=1000, seed=1).floors(n, L)["kl"][1]
    expected = 3 / (2 * n * L) / LN2
    assert float(floor.mean()) == pytest.approx(expected, rel=0.1)


def test_exact_samples_sit_on_their_floor_and_others_do_not():
    src = MarkovSource(alphabet_size=4, order=3, seed=2, motifs=[[3, 0, 3, 0, 0, 3]])
    scorer = ExactScorer(src, {"m": [3, 0, 3, 0, 0, 3]}, replicates=200, seed=7)
    n, L = 32, 64
    gen = torch.Generator().manual_seed(123)  # independent of the floors' draws
    js3, small_p = [], 0
    for _ in range(30):
        x = src.sample(n, L, gen)
        r = scorer.score(x, _nll_bits(src, x))
        js3.append(r["kmer_js_bits"]["k3"])
        small_p += r["kmer_js_pvalue"]["k3"] < 0.05
    floor = scorer.floors(n, L)["js"][3]
    # the floor is the expectation for exact samples: the mean of 30 draws lands on it
    assert sum(js3) / len(js3) == pytest.approx(float(floor.mean()), rel=0.1)
    assert small_p <= 5  # about 5% of exact sets fall in the 5% tail; 5 of 30 would be very unusual
    other = MarkovSource(alphabet_size=4, order=3, seed=99)  # another chain: model error
    y = other.sample(n, L, gen)
    r = scorer.score(y, _nll_bits(src, y))
    for k in (2, 3, 4):
        assert r["kmer_js_bits"][f"k{k}"] > r["kmer_js_floor_q95_bits"][f"k{k}"]
        assert r["kmer_kl_bits"][f"k{k}"] > r["kmer_kl_floor_q95_bits"][f"k{k}"]
        assert r["kmer_js_pvalue"][f"k{k}"] == pytest.approx(1 / 201)
    collapsed = src.sample(1, L, gen).repeat(n, 1)  # a perfectly likely sequence, 32 times
    r = scorer.score(collapsed, _nll_bits(src, collapsed))
    assert r["kmer_js_bits"]["k4"] > r["kmer_js_floor_q95_bits"]["k4"]
    assert r["distinct_samples"] == 1 and r["identical_disjoint_pairs"] == n // 2
    assert r["sampling_entropy_lcb_bits"] == 0.0


def test_nll_reads_against_the_window_entropy():
    src = MarkovSource(alphabet_size=4, order=3, seed=2)
    scorer = ExactScorer(src, replicates=20)
    n, L = 64, 64
    gen = torch.Generator().manual_seed(5)
    covered = 0
    for _ in range(40):
        x = src.sample(n, L, gen)
        r = scorer.score(x, _nll_bits(src, x))
        covered += abs(r["sample_nll_minus_window_entropy_bits"]) <= r["sample_true_nll_ci95_bits"]
    assert covered >= 34  # a 95% CI of the mean: about 38 of 40
    assert r["window_entropy_bits"] == pytest.approx(src.window_entropy(L) / LN2, rel=1e-12)
    # a sharpened sampler (every transition row squared and renormalised): lower NLL than
    # exact samples, the CI clear of the window entropy, and the entropy's upper bound too
    sharp = MarkovSource(alphabet_size=4, order=3, seed=2)
    sharp.transition = src.transition**2 / (src.transition**2).sum(-1, keepdim=True)
    x = sharp.sample(n, L, gen)
    r = scorer.score(x, _nll_bits(src, x))
    assert r["sample_nll_minus_window_entropy_bits"] < -r["sample_true_nll_ci95_bits"]
    assert r["sampling_entropy_ucb_bits"] < r["window_entropy_bits"]


def test_motif_rate_of_exact_samples_is_in_its_range():
    motif = [2, 2, 0, 3, 1, 1]
    src = MarkovSource(alphabet_size=4, order=3, seed=4, motifs=[motif], motif_strength=0.95)
    scorer = ExactScorer(src, {"m": motif}, replicates=400, seed=3)
    n, L = 64, 128
    gen = torch.Generator().manual_seed(8)
    inside, rates = 0, []
    for _ in range(20):
        x = src.sample(n, L, gen)
        r = scorer.score(x, _nll_bits(src, x))
        rates.append(r["motif_per_kb"]["m"])
        inside += r["motif_per_kb_exact_samples_lo95"]["m"] <= rates[-1] <= r["motif_per_kb_exact_samples_hi95"]["m"]
    exact = r["motif_per_kb_exact"]["m"]
    assert exact == pytest.approx(1000 * (L - 5) * src.string_probability(motif) / L)
    assert exact > 5 * 1000 / 4**6  # planted: far above the uniform rate
    assert sum(rates) / len(rates) == pytest.approx(exact, rel=0.1)
    assert inside >= 16


def test_clopper_pearson_upper_limit_solves_the_binomial_tail():
    for x, m in [(0, 32), (3, 32), (10, 20), (1, 5)]:
        up = clopper_pearson_upper(x, m, alpha=0.025)
        cdf = lambda p: sum(math.comb(m, i) * p**i * (1 - p) ** (m - i) for i in range(x + 1))  # noqa: E731
        assert cdf(up) == pytest.approx(0.025, abs=1e-9)
    assert clopper_pearson_upper(0, 32, alpha=0.025) == pytest.approx(1 - 0.025 ** (1 / 32))
    assert clopper_pearson_upper(5, 5) == 1.0


def test_entropy_bounds_cover_a_known_sampling_law():
    # Q: uniform over M sequences drawn from the chain, so H(Q) = log M exactly and the
    # cross-entropy under p is the mean NLL of the M support points.
    src = MarkovSource(alphabet_size=4, order=2, seed=6)
    L, n = 16, 64
    gen = torch.Generator().manual_seed(11)
    for M in (4, 40):
        support = src.sample(M, L, gen)
        assert len({tuple(r) for r in support.tolist()}) == M
        H = math.log2(M) / L
        CE = float(_nll_bits(src, support).mean())
        assert H <= CE
        lower_ok = upper_ok = 0
        lcbs = []
        for _ in range(200):
            x = support[torch.randint(M, (n,), generator=gen)]
            b = entropy_bounds_bits(_nll_bits(src, x), x)
            lcbs.append(b["sampling_entropy_lcb_bits"])
            lower_ok += b["sampling_entropy_lcb_bits"] <= H
            upper_ok += b["sampling_entropy_ucb_bits"] >= CE
        assert lower_ok >= 195  # exact 97.5% one-sided (of H_2 <= H): at most a few misses
        assert upper_ok >= 180  # asymptotic 97.5%
        if M == 4:  # collapse onto 4 sequences is detected: the bound is well above 0
            assert sum(lcbs) / len(lcbs) > 0.3 * H


def test_markov_data_reports_the_exact_metrics_and_skips_foreign_rows():
    dom = DNADomain()
    data = MarkovData(dom, motifs=["TATAAT"], train_tokens=4096, valid_tokens=4096, test_tokens=4096, seq_len=32)
    x = data.source.sample(16, 32, torch.Generator().manual_seed(0))
    tok = data.to_domain[x]
    tok[0, 5] = dom.ids["N"]
    r = data.score_samples(tok)
    assert r["samples_with_foreign_symbols"] == 1
    assert r["distinct_samples"] == 15
    for key in ("kmer_kl_bits", "kmer_js_floor_bits", "motif_per_kb", "motif_per_kb_exact"):
        assert isinstance(r[key], dict) and all(isinstance(v, float) for v in r[key].values())
    assert set(r["kmer_js_bits"]) == {f"k{k}" for k in range(1, 7)}
    assert r["sample_true_nll_bits"] == pytest.approx(float(data.true_nll_bits(tok[1:]).mean()))
    assert r["window_entropy_bits"] == pytest.approx(data.reference()["window_entropy_bits"])
