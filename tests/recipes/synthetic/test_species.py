"""The multi-species source (seqdiff_recipes/synthetic/species.py): its exact posterior and
mixture against enumeration, its rows against its declared laws, its batches reproducible."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from seqdiff.labels import LabelSpec
from seqdiff_recipes.alphabet import AlphabetDomain
from seqdiff_recipes.synthetic import SpeciesData

DOMAIN = AlphabetDomain(name="dna", alphabet="ACGTN", uppercase=True)


def source(**kw):
    kw = {"species": ["a", "b", "c"], "prior": [0.5, 0.3, 0.2], "order": 1, "seq_len": 4, "eval_sequences": 30, **kw}
    return SpeciesData(DOMAIN, **kw)


def test_the_label_vocabulary_and_the_chains_differ_by_species():
    d = source()
    assert d.labels == LabelSpec.of({"species": ["a", "b", "c"]})
    assert not torch.allclose(d.sources[0].transition, d.sources[1].transition)
    assert d.motifs == [["TATAAT"], ["GGATCC"], ["CACGTG"]]


def test_posterior_and_mixture_by_enumeration():
    d = source()
    seqs = torch.tensor(list(itertools.product(range(4), repeat=4)))
    tokens = d.to_domain[seqs]
    # independently of log_prob: the chain's string_probability, times the prior, normalised
    joint = torch.tensor([[p * src.string_probability(s.tolist()) for p, src in zip([0.5, 0.3, 0.2], d.sources)]
                          for s in seqs], dtype=torch.float64)
    assert joint.sum().item() == pytest.approx(1.0, abs=1e-12)  # the windows' law sums to one
    assert torch.allclose(d.posterior(tokens), joint / joint.sum(1, keepdim=True), atol=1e-12)
    assert torch.allclose(d.mixture_log_prob(tokens), joint.sum(1).log(), atol=1e-12)
    mix1 = sum(p * src.kmer_law(1) for p, src in zip([0.5, 0.3, 0.2], d.sources))
    assert torch.allclose(d.kmer_law(1), mix1)
    # a foreign id (N) leaves a row without a likelihood under any species
    bad = tokens[:1].clone()
    bad[0, 0] = DOMAIN.ids["N"]
    assert torch.isinf(d.log_likelihoods(bad)).all()


def test_rows_follow_the_prior_and_each_species_chain():
    d = source(seq_len=8)
    b = d.train_batch(0, 6000)
    y = b.label[:, 0]
    freq = torch.bincount(y, minlength=3).double() / len(y)
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), atol=0.025)  # > 3.5 s.e.
    for k in range(3):  # the first base of species k's rows: its chain's stationary law
        first = d.from_domain[b.x0[y == k, 0]]
        emp = torch.bincount(first, minlength=4).double() / len(first)
        assert (emp - d.kmer_law(1, k)).abs().max() < 0.06


def test_batches_are_a_pure_function_of_step_and_ranks_take_slices():
    d = source()
    one = d.train_batch(3, 8)
    again = d.train_batch(3, 8)
    assert torch.equal(one.x0, again.x0) and torch.equal(one.label, again.label)
    ranks = [d.train_batch(3, 4, rank=r, world_size=2) for r in (0, 1)]
    assert torch.equal(torch.cat([r.x0 for r in ranks]), one.x0)
    assert torch.equal(torch.cat([r.label for r in ranks]), one.label)
    ev = list(d.eval_batches("valid", batch_size=7))
    assert sum(len(b.x0) for b in ev) == 30 and ev[0].label[:4, 0].tolist() == [0, 1, 2, 0]
    assert torch.equal(next(iter(d.eval_batches("valid", 7))).x0, ev[0].x0)
    assert not torch.equal(next(iter(d.eval_batches("test", 7))).x0, ev[0].x0)


def test_score_label_on_exact_draws_of_a_species():
    d = source(seq_len=64, order=2, prior=None)
    x = d.draw(torch.full((400,), 1), torch.Generator().manual_seed(0))
    s = d.score_label(x, 1)
    post = d.posterior(x)[:, 1]
    assert s["label_accuracy"] == pytest.approx(float((d.posterior(x).argmax(1) == 1).double().mean()))
    assert s["label_posterior"] == pytest.approx(float(post.mean())) and s["label_posterior"] > 0.9
    # the true NLL of exact draws is the chain's window entropy, within 4 standard errors
    mean, var = d.sources[1].nll_moments(64)
    assert abs(s["true_nll_bits"] * 64 * math.log(2) - mean) < 4 * math.sqrt(var / 400)


@pytest.mark.parametrize("kw, msg", [
    ({"prior": [0.5, 0.5]}, "prior must be 3 positive numbers"),
    ({"motifs": [["TATA"]]}, "1 motif lists for 3 species"),
    ({"motifs": [["TAXA"], [], []]}, "outside 'ACGT'"),
])
def test_bad_settings_are_refused(kw, msg):
    with pytest.raises(ValueError, match=msg):
        source(**kw)


def test_a_shared_chain_differs_between_species_only_at_motif_contexts():
    d = source(shared_chain=True, motifs=[["TATAAT"], ["GGATCC"], ["CACGTG"]])
    p0, p1 = d.sources[0].transition, d.sources[1].transition
    differ = (p0 - p1).abs().sum(1) > 0
    assert 0 < int(differ.sum()) <= 10  # the contexts the two motifs rewrite, nothing else
    assert not torch.allclose(d.posterior(d.draw(torch.zeros(50, dtype=torch.long), torch.Generator().manual_seed(0))),
                              d.prior.expand(50, -1))
