"""Reverse complement over ids: equal to Biopython's on strings, an involution, and the
training augmentation flips exactly the rows it draws."""

from __future__ import annotations

import torch

from support.genome import tiny_genome
from seqdiff_recipes.dna import DNADomain, FastaData
from seqdiff_recipes.dna.augment import rc_augment, reverse_complement, reverse_complement_ids


def test_rc_ids_equals_biopython_on_strings():
    d = DNADomain()
    comp = d.vocab.complement_tensor()
    text = "ACGTNNGATTACAacgtCCCGGG"
    ids = torch.tensor(d.encode(text))
    assert d.decode(reverse_complement_ids(ids, comp)) == reverse_complement(text).upper()
    assert reverse_complement("ACGTRYKMacgtn") == "nacgtKMRYACGT"  # IUPAC + case (Biopython)
    assert torch.equal(reverse_complement_ids(reverse_complement_ids(ids, comp), comp), ids)
    assert (reverse_complement_ids(ids.numpy(), comp.numpy()) == reverse_complement_ids(ids, comp).numpy()).all()


def test_rc_augment_rows():
    comp = DNADomain().vocab.complement_tensor()
    x = torch.tensor([[0, 1, 2, 4], [0, 0, 3, 1]])
    v = torch.tensor([[True, True, True, False], [True] * 4])
    y, w = rc_augment(x, v, torch.tensor([True, False]), comp)
    assert y.tolist() == [[4, 1, 2, 3], [0, 0, 3, 1]]
    assert w.tolist() == [[False, True, True, True], [True] * 4]


def test_training_batches_are_reverse_complemented_with_p(tmp_path):
    fa, bed = tiny_genome(tmp_path)
    d = DNADomain()
    plain = FastaData(d, fa, bed, seq_len=64, rc_augment=0.0, seed=3)
    always = FastaData(d, fa, bed, seq_len=64, rc_augment=1.0, seed=3)
    half = FastaData(d, fa, bed, seq_len=64, rc_augment=0.5, seed=3)
    comp = d.vocab.complement_tensor()
    x0, _, _ = plain.train_batch(7, 64)
    x1, _, _ = always.train_batch(7, 64)
    assert torch.equal(x1, reverse_complement_ids(x0, comp))  # same windows, all flipped
    xh, _, _ = half.train_batch(7, 64)
    flipped = (xh != x0).any(1)
    assert torch.equal(xh[flipped], x1[flipped]) and torch.equal(xh[~flipped], x0[~flipped])
    assert 16 < int(flipped.sum()) < 48
    # evaluation is never augmented
    assert torch.equal(next(always.eval_batches("test", 8))[0], next(plain.eval_batches("test", 8))[0])
