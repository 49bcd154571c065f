"""FastaData: determinism, data-parallel slicing, windows inside their split, tiling,
N and soft-mask handling, splits without a BED, O(window) memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from support.genome import random_dna, tiny_genome, write_bed, write_fasta
from seqdiff_recipes.dna import DNADomain, FastaData
from seqdiff_recipes.dna.augment import reverse_complement_ids
from seqdiff.errors import ConfigError


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    return tiny_genome(tmp_path_factory.mktemp("genome"))


@pytest.fixture
def data(genome):
    return FastaData(DNADomain(), *genome, seq_len=64, seed=1)


def covered(intervals):
    out = {}
    for iv in intervals:
        out.setdefault(iv.chrom, np.zeros(100_000, bool))[iv.start : iv.end] = True
    return out


def test_train_batch_is_a_pure_function_of_seed_and_step(genome, data):
    a, va, _ = data.train_batch(5, 16)
    b, vb, _ = FastaData(DNADomain(), *genome, seq_len=64, seed=1).train_batch(5, 16)
    assert torch.equal(a, b) and torch.equal(va, vb)
    assert not torch.equal(a, data.train_batch(6, 16)[0])
    assert not torch.equal(a, FastaData(DNADomain(), *genome, seq_len=64, seed=2).train_batch(5, 16)[0])
    assert a.dtype == torch.long and va.dtype == torch.bool and a.shape == (16, 64)


def test_ranks_take_their_rows_of_the_global_batch(data):
    full, vfull, _ = data.train_batch(3, 12)
    parts = [data.train_batch(3, 4, rank=r, world_size=3) for r in range(3)]
    assert torch.equal(torch.cat([p[0] for p in parts]), full)
    assert torch.equal(torch.cat([p[1] for p in parts]), vfull)


def test_training_windows_stay_inside_training_intervals(data):
    train = covered(data.splits["train"].all)
    held = covered(data.splits["valid"].all + data.splits["test"].all)
    rng = np.random.default_rng(0)
    locs = data._train_locations(rng.integers(data.splits["train"].num_starts, size=5000))
    for c, a, b in locs:
        assert b - a == 64 and train[c][a:b].all()
        assert c not in held or not held[c][a:b].any()
    # every start is reachable: first and last start of the split
    s = data.splits["train"]
    first, last = data._train_locations(np.array([0, s.num_starts - 1]))
    assert first[1] == s.intervals[0].start and last[2] == s.intervals[-1].end


def test_training_rows_are_the_fasta_windows(genome):
    d = FastaData(DNADomain(), *genome, seq_len=64, seed=1, rc_augment=0.0)
    x, _, _ = d.train_batch(0, 8)
    gen = np.random.Generator(np.random.PCG64(__import__("seqdiff.utils.seeding", fromlist=["derive_seed"]).derive_seed(1, 0)))
    starts = gen.integers(d.splits["train"].num_starts, size=8)
    for row, (c, a, b) in zip(x, d._train_locations(starts)):
        assert d.domain.decode(row) == d.fasta.fetch(c, a, b).upper()


def test_eval_tiles_are_fixed_non_overlapping_and_held_out(data):
    wins = list(data.eval_windows("test"))
    assert wins == list(data.eval_windows("test"))
    seen = covered([])
    test = covered(data.splits["test"].all)
    train = covered(data.splits["train"].all)
    for c, a, b in wins:
        assert test[c][a:b].all() and not train[c][a:b].any()
        seen.setdefault(c, np.zeros(100_000, bool))
        assert not seen[c][a:b].any()
        seen[c][a:b] = True
    # tiles start at each interval's start
    starts = {iv.start for iv in data.splits["test"].intervals}
    assert {a for _, a, _ in wins if a in starts} == starts
    x = torch.cat([b[0] for b in data.eval_batches("test", 50)])
    assert x.shape[0] == len(wins)
    assert x.shape[0] <= data.splits["test"].num_tiles


def test_max_sequences_spreads_windows_over_the_split(data):
    all_w = list(data.eval_windows("valid"))
    some = list(data.eval_windows("valid", 10))
    assert len(some) == 10 and set(some) <= set(all_w)
    assert len({c for c, _, _ in some}) == len({c for c, _, _ in all_w})  # not just the first interval
    a = [b[0] for b in data.eval_batches("valid", 4, 10)]
    assert [t.shape[0] for t in a] == [4, 4, 2]
    b = [t[0] for t in data.eval_batches("valid", 4, 10)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def nfa(tmp_path):
    seq = bytearray(random_dna(6000, 4, softmask=0))
    seq[1000:1030] = b"N" * 30  # 30 N inside one 64-window -> rejected at max_n_fraction 0.1
    seq[1500:1503] = b"NNN"  # 3 N -> kept
    seq[3000:3040] = b"acgt" * 10  # soft-masked
    return write_fasta(tmp_path / "n.fa", {"chr1": bytes(seq)})


def test_n_windows_are_skipped_and_ns_ignore_masks_them(tmp_path):
    fa = nfa(tmp_path)
    kw = dict(seq_len=64, split_fractions=[0.0, 0.0, 1.0], rc_augment=0.0)
    with pytest.raises(Exception, match="no train"):
        FastaData(DNADomain(), fa, **kw)
    kw["split_fractions"] = [0.34, 0.33, 0.33]
    d = FastaData(DNADomain(), fa, **kw)
    wins = list(d.eval_windows("train"))
    assert all(d.fasta.fetch(c, a, b).count("N") <= 6 for c, a, b in wins)  # 0.1 * 64
    assert any(a <= 1000 < b for _, a, b in d.eval_windows("train", None)) is False
    assert any(a <= 1500 < b for _, a, b in wins)
    x, v, _ = next(d.eval_batches("train", 1000))
    assert v.all()  # ns=token: N is a target
    di = FastaData(DNADomain(), fa, ns="ignore", max_n_fraction=1.0, **kw)
    x, v, _ = next(di.eval_batches("train", 1000))
    n = x == di.domain.ids["N"]
    assert n.any() and torch.equal(v, ~n)
    # training never returns a window over the 30-N run
    for step in range(20):
        xt, _, _ = d.train_batch(step, 32)
        assert ((xt == 4).sum(1) <= 6).all()


def test_softmask_ignore_marks_repeats_invalid(tmp_path):
    fa = nfa(tmp_path)
    d = FastaData(DNADomain(), fa, seq_len=64, softmask="ignore", split_fractions=[0.34, 0.33, 0.33], rc_augment=1.0)
    ids, v = d._read([("chr1", 2990, 3054)])
    assert v[0, :10].all() and not v[0, 10:50].any() and v[0, 50:].all()
    # the RC augmentation reverses the mask with the bases
    x, vt, _ = d.train_batch(0, 64)
    rows = [(c, a, b) for c, a, b in d._train_locations(np.random.Generator(np.random.PCG64(__import__("seqdiff.utils.seeding", fromlist=["derive_seed"]).derive_seed(0, 0))).integers(d.splits["train"].num_starts, size=64))]
    for j, loc in enumerate(rows):
        ids, v = d._read([loc])
        if not d._acceptable(ids, v)[0]:
            continue  # redrawn: too many N
        assert torch.equal(x[j], torch.from_numpy(reverse_complement_ids(ids[0], d._complement)))
        assert torch.equal(vt[j], torch.from_numpy(v[0][::-1].copy()))


def test_split_by_chromosome_without_bed(genome):
    fa, _ = genome
    d = FastaData(DNADomain(), fa, seq_len=64, split_by="chromosome", valid_chroms=["chr2"], test_chroms=["chr3"])
    assert [iv.chrom for iv in d.splits["train"].all] == ["chr1"]
    assert {c for c, _, _ in d.eval_windows("test")} == {"chr3"}
    with pytest.raises(ConfigError, match="not records"):
        FastaData(DNADomain(), fa, seq_len=64, split_by="chromosome", test_chroms=["chrZ"])
    with pytest.raises(ConfigError, match="needs data.valid_chroms"):
        FastaData(DNADomain(), fa, seq_len=64, split_by="chromosome")


def test_split_by_fraction_is_contiguous(genome):
    fa, _ = genome
    d = FastaData(DNADomain(), fa, seq_len=64, split_fractions=[0.8, 0.1, 0.1], chroms="chr[12]")
    t = {iv.chrom: (iv.start, iv.end) for iv in d.splits["train"].all}
    v = {iv.chrom: (iv.start, iv.end) for iv in d.splits["valid"].all}
    e = {iv.chrom: (iv.start, iv.end) for iv in d.splits["test"].all}
    assert t == {"chr1": (0, 32000), "chr2": (0, 24000)}
    assert v == {"chr1": (32000, 36000), "chr2": (24000, 27000)}
    assert e == {"chr1": (36000, 40000), "chr2": (27000, 30000)}
    with pytest.raises(ConfigError, match="sum"):
        FastaData(DNADomain(), fa, seq_len=64, split_fractions=[0.8, 0.1])


def test_bed_without_split_column_uses_split_by(tmp_path, genome):
    fa, _ = genome
    bed = write_bed(tmp_path / "r.bed", [("chr1", 0, 10000), ("chr2", 0, 10000), ("chr3", 0, 5000)])
    d = FastaData(DNADomain(), fa, bed, seq_len=64, bed_split_column=None, split_by="chromosome", valid_chroms=["chr2"], test_chroms=["chr3"])
    assert d.splits["test"].all[0].end == 5000


def test_reference_and_unit(data):
    assert data.unit == "base"
    ref = data.reference()
    assert ref["splits"]["test"]["eval_windows"] == data.splits["test"].num_tiles
    assert 0.3 < ref["genome"]["gc_fraction"] < 0.6 and ref["genome"]["softmasked_fraction"] > 0


def test_memory_is_o_window(tmp_path):
    fa = write_fasta(tmp_path / "big.fa", {"chr1": 400_000, "chr2": 400_000}, softmask=0)
    d = FastaData(DNADomain(), fa, seq_len=64, rc_augment=0.5)
    d.train_batch(0, 8)
    tracemalloc.start()
    for step in range(20):
        d.train_batch(step, 8)
    for _ in d.eval_batches("test", 8, 64):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 200_000, peak  # far below the 800 kb genome: windows only
