"""distinct-n, self-BLEU, Vendi and MAUVE on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqdiff.eval.diversity import distinct_n, mauve_score, self_bleu, sentence_bleu, strip_ids, vendi_score

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU


def test_distinct_n_by_hand():
    seqs = [[1, 2, 3, 1, 2], [1, 2, 4]]
    # unigrams: 8 total, {1,2,3,4} unique; bigrams: (1,2),(2,3),(3,1),(1,2),(1,2),(2,4): 6 total, 4 unique
    assert distinct_n(seqs, 1) == 4 / 8
    assert distinct_n(seqs, 2) == 4 / 6
    assert distinct_n(torch.tensor([[5, 5, 5]]), 1) == 1 / 3
    assert distinct_n([[1]], 2) == 0.0


def test_sentence_bleu_by_hand():
    ref = [1, 2, 3, 4, 5, 6]
    assert sentence_bleu(ref, [ref]) == pytest.approx(1.0)
    # hypothesis 1 2 3 4 9 9: p1 = 4/6, p2 = 3/5, p3 = 2/4, p4 = 1/3; same length, BP = 1
    hyp = [1, 2, 3, 4, 9, 9]
    expected = math.exp((math.log(4 / 6) + math.log(3 / 5) + math.log(2 / 4) + math.log(1 / 3)) / 4)
    assert sentence_bleu(hyp, [ref]) == pytest.approx(expected)
    # shorter hypothesis: brevity penalty exp(1 - 6/4); empty 4-gram precision smoothed with 0.1
    short = [1, 2, 7, 8]
    p = [2 / 4, 1 / 3, 0.1 / 2, 0.1 / 1]
    assert sentence_bleu(short, [ref]) == pytest.approx(math.exp(1 - 6 / 4) * math.exp(sum(map(math.log, p)) / 4))


def test_self_bleu_extremes():
    same = [[1, 2, 3, 4, 5]] * 4
    assert self_bleu(same) == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    varied = torch.randint(0, 1000, (8, 30), generator=g)
    assert self_bleu(varied) < 0.05
    with pytest.raises(ValueError):
        self_bleu([[1, 2]])


def test_vendi_counts_effective_distinct_samples():
    pytest.importorskip("vendi_score")
    assert vendi_score(np.ones((5, 3))) == pytest.approx(1.0, abs=1e-6)
    assert vendi_score(np.eye(6)) == pytest.approx(6.0, rel=1e-6)
    two = np.repeat(np.eye(2), 5, axis=0)  # two clusters of identical points
    assert vendi_score(two) == pytest.approx(2.0, rel=1e-6)


def test_mauve_separates_shifted_features():
    pytest.importorskip("mauve")
    rng = np.random.default_rng(0)
    p = rng.normal(size=(400, 8))
    q_same = rng.normal(size=(400, 8))
    q_far = rng.normal(size=(400, 8)) + 3.0
    same, far = mauve_score(p, q_same), mauve_score(p, q_far)
    assert same > 0.8 and far < 0.2, (same, far)


def test_strip_ids():
    assert strip_ids(torch.tensor([[1, 9, 2, 9], [9, 9, 3, 4]]), [9]) == [[1, 2], [3, 4]]
