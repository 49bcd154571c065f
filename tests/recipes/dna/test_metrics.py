"""Sample statistics: k-mer spectra, GC (Biopython), CpG o/e, homopolymer runs, floors."""

from __future__ import annotations

import math

import pytest
import torch
from Bio.SeqUtils import gc_fraction

from support.genome import tiny_genome
from seqdiff_recipes.dna import DNADomain, FastaData
from seqdiff_recipes.dna import metrics as m

D = DNADomain()


def ids(*texts):
    return torch.tensor([D.encode(t) for t in texts])


def test_kmer_spectrum_counts_acgt_kmers_only():
    c = m.base_codes(ids("AACGN"), D)
    assert c.tolist() == [[0, 0, 1, 2, 4]]
    p1 = m.kmer_spectrum(c, 1)
    assert p1.tolist() == [0.5, 0.25, 0.25, 0.0]
    p2 = m.kmer_spectrum(c, 2)  # AA, AC, CG (GN dropped)
    assert p2.shape == (16,) and p2[0] == p2[1] == p2[6] == pytest.approx(1 / 3)


def test_gc_cpg_and_homopolymers():
    c = m.base_codes(ids("CGCGAAAAATTN", "GGGGCCCCATAA"), D)
    assert m.gc_content(c) == pytest.approx((gc_fraction("CGCGAAAAATTN", ambiguous="remove") + 8 / 12) / 2)
    # CpG o/e pooled: 2 CG, 6 C, 6 G, 23 A/C/G/T bases -> 2*23/36
    assert m.cpg_observed_expected(c) == pytest.approx(2 * 23 / 36)
    runs = m.homopolymer_runs(c)
    assert runs.tolist() == [1, 1, 1, 1, 5, 2, 4, 4, 1, 1, 2]
    s = m.sequence_stats(c)
    assert s["homopolymer_mean_longest_run"] == pytest.approx(4.5)
    assert s["homopolymer_bases_in_runs_ge5"] == pytest.approx(5 / 23)


def test_identical_sets_have_zero_divergence_and_shuffles_do_not():
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 4, (64, 128), generator=g)
    d = m.divergences(real, real)
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in d.values())
    homo = torch.zeros(64, 128, dtype=torch.long)
    assert m.divergences(homo, real)["k1"] > 0.5


def test_score_samples_has_floors_and_real_stats(tmp_path):
    fa, bed = tiny_genome(tmp_path)
    data = FastaData(D, fa, bed, seq_len=64)
    real = next(data.eval_batches("test", 16, 16))[0]
    out = data.score_samples(real)
    assert set(out["kmer_js_bits"]) == {f"k{k}" for k in range(1, 7)}
    assert all(0 <= out["kmer_js_bits"][k] <= 1 for k in out["kmer_js_bits"])
    assert out["floor_windows"] == 16 and out["reference_split"] == "test"
    # real windows score near the floor; i.i.d. uniform samples do not (GC, CpG, k-mers)
    rand = torch.randint(0, 4, (16, 64), generator=torch.Generator().manual_seed(1))
    bad = data.score_samples(rand)
    assert bad["kmer_js_bits"]["k3"] > out["kmer_js_bits"]["k3"]
    assert abs(bad["sample_stats"]["cpg_observed_expected"] - 1.0) < abs(out["real_stats"]["cpg_observed_expected"] - 1.0)
    assert not math.isnan(out["real_stats"]["gc_fraction"])


def test_score_samples_reports_memorisation_and_motifs(tmp_path):
    fa, bed = tiny_genome(tmp_path)
    motif_file = tmp_path / "m.jaspar"
    motif_file.write_text(">P1 planted\nA [ 18 0 0 0 18 0 0 18 ]\nC [ 0 18 0 0 0 0 18 0 ]\nG [ 0 0 18 18 0 0 0 0 ]\nT [ 0 0 0 0 0 18 0 0 ]\n"
                          ">P2 short\nA [ 18 0 ]\nC [ 0 18 ]\nG [ 0 0 ]\nT [ 0 0 ]\n")
    data = FastaData(D, fa, bed, seq_len=64, motifs_file=str(motif_file), memorisation_k=10)
    train = data.splits["train"].intervals[0]
    copies = torch.tensor([D.encode(data.fasta.fetch(train.chrom, train.start + 64 * i, train.start + 64 * (i + 1)))
                           for i in range(8)])
    out = data.score_samples(copies)
    assert out["memorisation_index"]["coverage"] == 1.0  # the tiny genome fits under the cap
    assert out["memorisation"]["full_length_copies"] == 1.0 and out["memorisation"]["identity_mean"] == 1.0
    assert out["memorisation_real"]["identity_mean"] < 0.9  # held-out windows were never trained on
    site = "ACGGATCA"
    planted = copies.clone()
    planted[:, 10:18] = torch.tensor(D.encode(site))
    out = data.score_samples(planted)
    assert out["motif_count"] == 2 and out["motif_unreachable"] == 1  # a 2-mer never has p <= 1e-4
    assert out["motif_samples_over_real"]["P1 planted"] > 1
    assert out["motif_hits_per_kb"]["P1 planted"] >= 8 * 1000 / planted.numel()
    a, b = data.reference_sets(8)
    assert a.shape == b.shape == (8, 64) and not any(torch.equal(x, y) for x in a for y in b)


def test_sample_metric_settings_are_checked(tmp_path):
    from seqdiff.errors import ConfigError, DataError

    fa, bed = tiny_genome(tmp_path)
    with pytest.raises(DataError, match="nope.meme: motif file not found"):
        FastaData(D, fa, bed, seq_len=64, motifs_file=str(tmp_path / "nope.meme"))
    with pytest.raises(ConfigError, match="data.motif_pvalue"):
        FastaData(D, fa, bed, seq_len=64, motif_pvalue=2)
    off = FastaData(D, fa, bed, seq_len=64, memorisation_max_bases=0)
    assert off.memorisation_index() is None
    assert "memorisation" not in off.score_samples(next(off.eval_batches("test", 4, 4))[0])
