"""Memorisation index: copies found exactly, random sequences at their brute-force identity."""

from __future__ import annotations

import numpy as np
import pytest

from support.genome import write_fasta
from seqdiff_recipes.dna.fasta import FastaFile
from seqdiff_recipes.dna.memorisation import TrainingIndex, encode, identity_exact_threshold, reverse_complement_codes, sample_blocks

L = 64
COMP = str.maketrans("ACGTacgtN", "TGCAtgcaN")


def _genome(tmp_path):
    fa = write_fasta(tmp_path / "g.fa", {"chr1": 12_000, "chr2": 8_000}, seed=3, n_runs=1)
    f = FastaFile(fa, index_dir=tmp_path / "cache")
    train = [("chr1", 0, 10_000), ("chr2", 1_000, 8_000)]
    return f, train


def _brute_identity(sample: str, texts: list[str]) -> float:
    """Best fraction of equal A/C/G/T positions over every window of every text, both strands."""
    best = 0
    q = [sample, sample.translate(COMP)[::-1]]
    for t in texts:
        g = encode(t)
        win = np.lib.stride_tricks.sliding_window_view(g, len(sample))
        for s in q:
            c = encode(s)
            m = (win == c[None, :]) & (c[None, :] < 4)
            best = max(best, int(m.sum(1).max()))
    return best / len(sample)


def _brute_lem(sample: str, texts: list[str]) -> int:
    up = [t.upper() for t in texts]
    best = 0
    for s in (sample, sample.translate(COMP)[::-1]):
        for ell in range(len(s), best, -1):
            if any(s[i : i + ell] in t for t in up for i in range(len(s) - ell + 1)):
                best = ell
                break
    return best


def test_copies_and_random_samples(tmp_path):
    f, train = _genome(tmp_path)
    idx = TrainingIndex.from_fasta(f, train, max_bases=10**9, k=8)
    texts = [f.fetch(c, a, b) for c, a, b in train]
    assert idx.coverage == 1.0 and idx.indexed_bases == 17_000
    copy = texts[0][3000 : 3000 + L].upper()
    rc = texts[1][500 : 500 + L].upper().translate(COMP)[::-1]
    rng = np.random.default_rng(0)
    rand = ["".join(rng.choice(list("ACGT"), L)) for _ in range(3)]
    mutated = list(texts[1][2000 : 2000 + L].upper())
    assert "N" not in copy + rc + "".join(mutated)
    for j in (5, 30, 50):
        mutated[j] = "A" if mutated[j] != "A" else "C"
    mutated = "".join(mutated)
    queries = [copy, rc, mutated] + rand
    codes = np.stack([encode(s) for s in queries])
    lems = [_brute_lem(s, texts) for s in rand]
    truths = [_brute_identity(s, texts) for s in rand]
    for budget in (1e12, 0.0):  # every window scored | only windows on a shared 8-mer's diagonal
        r = idx.query(codes, exact_budget=budget)
        assert r["identity_exact"] == (budget > 0)
        assert r["identity"][:2].tolist() == [1.0, 1.0] and r["longest_match"][:2].tolist() == [L, L]
        assert r["identity"][2] == pytest.approx((L - 3) / L)  # >= f*: found by the seeds too
        assert (L - 3) / L >= identity_exact_threshold(L, 8)
        assert r["longest_match"][2] == _brute_lem(mutated, texts) >= 24  # the run between substitutions 5 and 30
        for j, s in enumerate(rand):
            lem = int(r["longest_match"][3 + j])
            assert lem == (lems[j] if lems[j] >= 8 else 0)
            truth = truths[j]
            if budget > 0:
                assert r["identity"][3 + j] == pytest.approx(truth)
                assert 0.3 < truth < 0.6  # a random 64-mer: the best of ~34,000 windows, far from a copy
            else:
                assert r["identity"][3 + j] <= truth + 1e-12  # below f*: a lower bound
    s = idx.summary(codes)
    assert s["full_length_copies"] == pytest.approx(2 / 6) and s["identity_max"] == 1.0


def test_windows_never_span_two_indexed_blocks():
    a = "ACGT" * 40
    b = "TTGCA" * 40
    idx = TrainingIndex.from_sequences([a, b], k=6)
    across = encode(a[-32:] + b[:32])[None, :]
    r = idx.query(across)
    assert r["identity"][0] < 1.0 and r["longest_match"][0] < L
    inside = encode(a[10 : 10 + L])[None, :]
    assert idx.query(inside)["identity"][0] == 1.0


def test_capped_index_is_an_even_sample_of_blocks(tmp_path):
    f, train = _genome(tmp_path)
    blocks, total = sample_blocks(train, max_bases=4_000, block=1_000)
    assert total == 17_000 and len(blocks) == 4
    assert {c for c, _, _ in blocks} == {"chr1", "chr2"}  # spread over the whole training set
    idx = TrainingIndex.from_fasta(f, train, max_bases=4_000, k=8, block=1_000)
    assert idx.indexed_bases == 4_000 and idx.coverage == pytest.approx(4_000 / 17_000)
    assert len(idx.seq) == 4_000 + 4  # the indexed bases and a separator after each block: no more
    c, a, _ = idx.blocks[1]
    inside = encode(f.fetch(c, a + 100, a + 100 + L))[None, :]
    assert idx.query(inside)["identity"][0] == 1.0
    d = idx.describe(L)
    assert d["coverage"] == idx.coverage and d["longest_match_detects_from"] == 8


def test_reverse_complement_codes_and_n():
    c = encode("ACGTNa")[None, :]
    assert reverse_complement_codes(c).tolist() == [[3, 4, 0, 1, 2, 3]]
    idx = TrainingIndex.from_sequences(["NNNN" + "ACGT" * 20])
    q = encode("N" * L)[None, :]
    r = idx.query(q)
    assert r["identity"][0] == 0.0 and r["longest_match"][0] == 0  # N matches nothing


@pytest.mark.parametrize("L,k", [(16, 4), (20, 6), (12, 3)])
def test_exact_threshold_by_enumerating_mismatch_patterns(L, k):
    # every mismatch pattern with identity >= f* has a run of k matches (so a shared k-mer);
    # and one pattern just below f* has none (the threshold is the best possible)
    import itertools

    f = identity_exact_threshold(L, k)

    def longest_run(mism):
        best = run = 0
        for j in range(L):
            run = 0 if j in mism else run + 1
            best = max(best, run)
        return best

    below_found = False
    for m in range(L + 1):
        for mism in itertools.combinations(range(L), m):
            ident = 1 - m / L
            if ident >= f:
                assert longest_run(set(mism)) >= k
            elif longest_run(set(mism)) < k:
                below_found = True
        if 1 - m / L < f and below_found:
            break
    assert below_found
