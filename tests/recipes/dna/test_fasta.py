"""pyfaidx access: random windows equal Bio.SeqIO's parse, BGZF, read-only folders,
GenBank input, irregular line lengths, atomic and cached indexing."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord

from support.genome import random_dna, write_bgzf, write_fasta
from seqdiff_recipes.dna import DNADomain, FastaData
from seqdiff_recipes.dna.fasta import FastaFile

RECORDS = {"chr1": 7_000, "chr2": 5_123, "chrM": 999}


def whole(path):
    return {r.id: str(r.seq) for r in SeqIO.parse(str(path), "fasta")}


def test_random_windows_match_biopython(tmp_path):
    fa = write_fasta(tmp_path / "g.fa", RECORDS, width=70)
    ref = whole(fa)
    f = FastaFile(fa)
    assert f.names == list(RECORDS) and f.lengths == RECORDS
    rng = np.random.default_rng(0)
    for _ in range(200):
        name = list(RECORDS)[rng.integers(3)]
        a = int(rng.integers(RECORDS[name]))
        b = int(rng.integers(a, RECORDS[name] + 1))
        assert f.fetch(name, a, b) == ref[name][a:b]


def test_bgzip_fasta_reads_like_plain(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "z").mkdir()
    plain = write_fasta(tmp_path / "p" / "g.fa", RECORDS, seed=5)
    gz = write_bgzf(tmp_path / "z" / "g.fa.gz", RECORDS, seed=5)
    a, b = FastaFile(plain), FastaFile(gz)
    assert b.compressed and (tmp_path / "z" / "g.fa.gz.gzi").exists()
    for name, n in RECORDS.items():
        for s in (0, 1, n // 2, n - 64):
            assert a.fetch(name, s, s + 64) == b.fetch(name, s, s + 64)
    da = FastaData(DNADomain(), plain, seq_len=64)
    db = FastaData(DNADomain(), gz, seq_len=64)
    assert (da.train_batch(1, 16)[0] == db.train_batch(1, 16)[0]).all()


def test_read_only_folder_puts_index_in_cache(tmp_path):
    ro = tmp_path / "shared"
    ro.mkdir()
    fa = write_fasta(ro / "g.fa", RECORDS)
    os.chmod(ro, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        cache = tmp_path / "cache"
        f = FastaFile(fa, index_dir=cache)
        assert sorted(p.name for p in ro.iterdir()) == ["g.fa"]  # nothing written next to it
        assert f.index_path.parent.parent == cache / "index" and f.index_path.exists()
        assert f.fetch("chr2", 10, 20) == whole(fa)["chr2"][10:20]
        # a second open reuses the cached index
        mtime = f.index_path.stat().st_mtime_ns
        g = FastaFile(fa, index_dir=cache)
        assert g.index_path == f.index_path and g.index_path.stat().st_mtime_ns == mtime
    finally:
        os.chmod(ro, stat.S_IRWXU)


def test_default_cache_is_seqdiff_cache_dir(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    fa = write_fasta(ro / "g.fa", {"chr1": 300})
    os.chmod(ro, 0o555)
    try:
        monkeypatch.setenv("SEQDIFF_CACHE_DIR", str(tmp_path / "c"))
        f = FastaFile(fa)
        assert str(f.index_path).startswith(str(tmp_path / "c"))
    finally:
        os.chmod(ro, 0o755)


def test_stale_index_is_rebuilt_atomically(tmp_path):
    fa = write_fasta(tmp_path / "g.fa", {"chr1": 500})
    FastaFile(fa)
    write_fasta(fa, {"chr1": 800, "chr9": 100}, seed=1)
    os.utime(fa, ns=(fa.stat().st_atime_ns, (tmp_path / "g.fa.fai").stat().st_mtime_ns + 10**9))
    f = FastaFile(fa)
    assert f.lengths == {"chr1": 800, "chr9": 100}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".seqdiff")]


def test_genbank_input(tmp_path):
    recs = [
        SeqRecord(Seq(random_dna(3000, i, softmask=0).decode()), id=f"NC_00000{i}.1", name=f"LOC{i}", description="synthetic", annotations={"molecule_type": "DNA"})
        for i in range(1, 3)
    ]
    gb = tmp_path / "g.gbk"
    SeqIO.write(recs, str(gb), "genbank")
    data = FastaData(DNADomain(), gb, seq_len=100, rc_augment=0)
    assert data.fasta.lengths == {"NC_000001.1": 3000, "NC_000002.1": 3000}
    x, _, _ = data.train_batch(0, 4)
    assert x.shape == (4, 100)
    chrom, a, b = next(data.eval_windows("test"))
    assert data.fasta.fetch(chrom, a, b) == str(recs[int(chrom[8]) - 1].seq[a:b])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.gbk"]  # the converted copy lives in the cache


def test_irregular_line_lengths_are_normalised_with_biopython(tmp_path, capsys):
    seq = random_dna(1000, 2, softmask=0)
    fa = tmp_path / "ragged.fa"
    fa.write_bytes(b">chr1\n" + seq[:70] + b"\n" + seq[70:100] + b"\n" + seq[100:] + b"\n")
    f = FastaFile(fa)
    assert f.fetch("chr1", 0, 1000) == seq.decode()
    assert "irregular line lengths" in capsys.readouterr().err
    assert not (tmp_path / "ragged.fa.fai").exists()


def test_validation_is_cached(tmp_path):
    fa = write_fasta(tmp_path / "g.fa", RECORDS)
    FastaData(DNADomain(), fa, seq_len=64, index_dir=tmp_path / "c")
    stamps = list((tmp_path / "c" / "validated").glob("*.json"))
    assert len(stamps) == 1
    # a corrupt stamp is simply ignored and rewritten
    stamps[0].write_text("{not json")
    data = FastaData(DNADomain(), fa, seq_len=64, index_dir=tmp_path / "c")
    assert data.reference()["genome"]["bases"] == sum(RECORDS.values())


def test_pickle_and_reopen(tmp_path):
    import pickle

    fa = write_fasta(tmp_path / "g.fa", RECORDS)
    data = FastaData(DNADomain(), fa, seq_len=64)
    clone = pickle.loads(pickle.dumps(data))
    assert (clone.train_batch(2, 4)[0] == data.train_batch(2, 4)[0]).all()


@pytest.mark.parametrize("suffix", [".fa"])
def test_bgzip_with_wrong_suffix_is_explained(tmp_path, suffix):
    from seqdiff.errors import DataError

    gz = write_bgzf(tmp_path / "g.fa.gz", {"chr1": 500})
    wrong = tmp_path / ("h" + suffix)
    gz.rename(wrong)
    with pytest.raises(DataError, match=r"must be named \*\.gz"):
        FastaFile(wrong)


def test_gzipped_genbank_is_accepted(tmp_path):
    import gzip

    rec = SeqRecord(Seq(random_dna(2000, 9, softmask=0).decode()), id="MT", description="x", annotations={"molecule_type": "DNA"})
    plain = tmp_path / "mt.gb"
    SeqIO.write([rec], str(plain), "genbank")
    gz = tmp_path / "mt.gb.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    f = FastaFile(gz)
    assert f.lengths == {"MT": 2000} and f.fetch("MT", 5, 25) == str(rec.seq[5:25])
