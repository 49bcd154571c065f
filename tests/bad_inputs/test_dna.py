"""Malformed FASTA/BED input: a clear DataError naming the file and record/line, and
nothing left half-written (no index under its final name, no temporary files)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from support.genome import random_dna, tiny_genome, write_bed, write_bgzf, write_fasta
from seqdiff_recipes.dna import DNADomain, FastaData
from seqdiff_recipes.dna.fasta import FastaFile
from seqdiff.errors import DataError


def listing(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


def check_error(tmp_path: Path, fasta: Path, match: str, *, bed: Path | None = None, seq_len: int = 64, **kw):
    before = listing(fasta.parent)
    with pytest.raises(DataError, match=match) as exc:
        FastaData(DNADomain(**kw.pop("domain", {})), fasta, bed, seq_len=seq_len, **kw)
    assert str(fasta.name) in str(exc.value) or (bed is not None and bed.name in str(exc.value))
    # nothing half-written next to the input: no new file except a complete .fai
    new = listing(fasta.parent) - before
    assert not {n for n in new if not n.endswith(".fai")}, new
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".seqdiff")]
    assert not leftovers, leftovers
    return str(exc.value)


# ---------------------------------------------------------------------------- FASTA
def test_empty_file(tmp_path):
    fa = tmp_path / "empty.fa"
    fa.write_bytes(b"")
    check_error(tmp_path, fa, "empty file")


def test_blank_file_has_no_records(tmp_path):
    fa = tmp_path / "blank.fa"
    fa.write_bytes(b"\n\n  \n")
    check_error(tmp_path, fa, "no FASTA records")


def test_no_header(tmp_path):
    fa = tmp_path / "nohead.fa"
    fa.write_bytes(b"ACGTACGT\nACGT\n")
    msg = check_error(tmp_path, fa, r"line 1: expected a FASTA header starting with '>'")
    assert "ACGTACGT" in msg


def test_header_only(tmp_path):
    fa = tmp_path / "headonly.fa"
    fa.write_bytes(b">chr1 nothing follows\n")
    check_error(tmp_path, fa, r"record 'chr1' \(header at line 1\) has no sequence")


def test_empty_record_among_others(tmp_path):
    fa = tmp_path / "mixed.fa"
    fa.write_bytes(b">chr1\n" + random_dna(120, softmask=0) + b"\n>chr2\n>chr3\nACGT\n")
    check_error(tmp_path, fa, r"record 'chr2' \(header at line 3\) has no sequence")


def test_duplicate_record_names(tmp_path):
    fa = write_fasta(tmp_path / "dup.fa", {"chr1": 200, "chr2": 200})
    fa.write_bytes(fa.read_bytes() + b">chr1 again\nACGTACGT\n")
    msg = check_error(tmp_path, fa, r"duplicate record name 'chr1' \(headers at lines 1 and 11\)")
    assert not (tmp_path / "dup.fa.fai").exists()  # the index was never published


@pytest.mark.parametrize("char,expect", [("X", "'X' is not a DNA base"), ("*", r"'\*' is not a DNA base"), ("R", "'R' is an IUPAC ambiguity code")])
def test_characters_outside_the_alphabet(tmp_path, char, expect):
    seq = bytearray(random_dna(300, softmask=0))
    seq[130] = ord(char)  # chr1 takes lines 1-10; chr2's header is line 11, base 130 is on line 14, column 11
    fa = write_fasta(tmp_path / "bad.fa", {"chr1": 500, "chr2": bytes(seq)})
    msg = check_error(tmp_path, fa, rf"record 'chr2', line 14, column 11: .*{expect}")
    assert "bad.fa" in msg


def test_iupac_mapped_to_n_when_asked(tmp_path):
    seq = bytearray(random_dna(3000, softmask=0))
    seq[130] = ord("R")
    fa = write_fasta(tmp_path / "iupac.fa", {"chr1": bytes(seq)})
    data = FastaData(DNADomain(iupac="to_n"), fa, seq_len=64, split_fractions=[0.8, 0.1, 0.1], rc_augment=0)
    ids, _ = data._read([("chr1", 128, 192)])
    assert ids[0, 2] == data.domain.ids["N"]


def test_lowercase_rejected_when_not_folding(tmp_path):
    fa = write_fasta(tmp_path / "soft.fa", {"chr1": b"ACGT" * 30 + b"acgt" + b"ACGT" * 30})
    check_error(tmp_path, fa, r"record 'chr1', line 4, column 1: character 'a' is a lower-case \(soft-masked\) base", domain={"uppercase": False})


def test_windows_line_endings_are_accepted(tmp_path):
    (tmp_path / "lf").mkdir()
    (tmp_path / "crlf").mkdir()
    recs = {"chr1": 3000, "chr2": 2000}
    lf = write_fasta(tmp_path / "lf" / "g.fa", recs, seed=3)
    crlf = write_fasta(tmp_path / "crlf" / "g.fa", recs, seed=3, newline=b"\r\n")
    assert b"\r\n" in crlf.read_bytes()
    a = FastaData(DNADomain(), lf, seq_len=50)
    b = FastaData(DNADomain(), crlf, seq_len=50)
    for split in ("train", "test"):
        xa = next(a.eval_batches(split, 100))[0]
        xb = next(b.eval_batches(split, 100))[0]
        assert (xa == xb).all()
    assert (a.train_batch(3, 8)[0] == b.train_batch(3, 8)[0]).all()


def test_gzip_that_is_not_bgzip(tmp_path):
    plain = write_fasta(tmp_path / "g.fa", {"chr1": 500})
    gz = tmp_path / "g.fa.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    msg = check_error(tmp_path, gz, r"gzip-compressed but not BGZF")
    assert "bgzip" in msg


def test_truncated_bgzip(tmp_path):
    gz = write_bgzf(tmp_path / "g.fa.gz", {"chr1": 50_000, "chr2": 30_000})
    FastaFile(gz)  # the complete file indexes fine
    for p in tmp_path.glob("g.fa.gz.*"):
        p.unlink()
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2])
    check_error(tmp_path, gz, r"truncated BGZF file")


def test_truncated_plain_gzip_is_reported_as_not_bgzip(tmp_path):
    plain = write_fasta(tmp_path / "g.fa", {"chr1": 5000})
    gz = tmp_path / "t.fa.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes())[:-40])
    check_error(tmp_path, gz, r"not BGZF")


def test_missing_fasta(tmp_path):
    with pytest.raises(DataError, match=r"nope.fa: FASTA file not found \(set data.fasta=PATH"):
        FastaData(DNADomain(), tmp_path / "nope.fa")


# ---------------------------------------------------------------------------- BED
@pytest.fixture
def genome(tmp_path):
    return write_fasta(tmp_path / "genome.fa", {"chr1": 5000, "chr2": 3000})


def bed_error(tmp_path, genome, rows, match, **kw):
    bed = write_bed(tmp_path / "regions.bed", rows) if not isinstance(rows, str) else rows
    if isinstance(rows, str):
        bed = tmp_path / "regions.bed"
        bed.write_text(rows)
    msg = check_error(tmp_path, genome, match, bed=bed, **kw)
    assert "regions.bed" in msg
    return msg


GOOD = [("chr1", 0, 1000, "train"), ("chr1", 1000, 2000, "valid"), ("chr2", 0, 1000, "test")]


def test_bed_fewer_than_three_columns(tmp_path, genome):
    bed_error(tmp_path, genome, "chr1\t0\t1000\ttrain\nchr1\t1000\n", r"line 2: expected at least 3 tab-separated columns")


def test_bed_start_after_end(tmp_path, genome):
    bed_error(tmp_path, genome, [*GOOD, ("chr2", 2000, 1500, "train")], r"line 4: start 2000 > end 1500")


def test_bed_not_integers(tmp_path, genome):
    bed_error(tmp_path, genome, [("chr1", "10k", 2000, "train")], r"line 1: start and end must be integers")


def test_bed_past_chromosome_end(tmp_path, genome):
    msg = bed_error(tmp_path, genome, [*GOOD, ("chr2", 2500, 3500, "train")], r"line 4: chr2:2500-3500 runs past the end of chr2 \(length 3,000")
    assert "genome.fa" in msg


def test_bed_chromosome_missing_from_fasta(tmp_path, genome):
    bed_error(tmp_path, genome, [*GOOD, ("chr7", 0, 100, "train")], r"line 4: chromosome 'chr7' is not in .*genome.fa \(records: chr1, chr2\)")


def test_bed_chromosome_naming_mismatch_is_explained(tmp_path, genome):
    bed_error(tmp_path, genome, [("1", 0, 100, "train")], r"it has 'chr1'")


def test_bed_unknown_split_label(tmp_path, genome):
    bed_error(tmp_path, genome, [*GOOD, ("chr1", 3000, 4000, "training")], r"line 4: unknown split label 'training' in column 4")


def test_bed_missing_split_label(tmp_path, genome):
    bed_error(tmp_path, genome, [*GOOD, ("chr1", 3000, 4000)], r"line 4: no split label in column 4 .*bed_split_column=null")


def test_bed_missing_split_is_reported(tmp_path, genome):
    bed_error(tmp_path, genome, [("chr1", 0, 1000, "train"), ("chr2", 0, 1000, "test")], r"no valid intervals")


def test_window_longer_than_every_interval(tmp_path, genome):
    msg = bed_error(tmp_path, genome, GOOD, r"window length 2048 is longer than every train interval", seq_len=2048)
    assert "line 1" in msg and "1,000 bp" in msg


def test_bed_comments_and_track_lines_are_skipped(tmp_path, genome):
    bed = tmp_path / "regions.bed"
    bed.write_text("# comment\ntrack name=x\n" + "".join("\t".join(map(str, r)) + "\n" for r in GOOD))
    data = FastaData(DNADomain(), genome, bed, seq_len=100)
    assert [len(s.all) for s in data.splits.values()] == [1, 1, 1]


def test_no_input_is_written_to_on_success(tmp_path):
    fa, bed = tiny_genome(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in (fa, bed)}
    FastaData(DNADomain(), fa, bed, seq_len=64)
    assert {p: p.stat().st_mtime_ns for p in (fa, bed)} == before
    assert listing(tmp_path) == {"genome.fa", "genome.fa.fai", "regions.bed"}
    assert os.path.getsize(tmp_path / "genome.fa.fai") > 0


def test_non_ascii_bytes(tmp_path):
    fa = tmp_path / "bin.fa"
    fa.write_bytes(b">chr1\nACGT\nAC\x94T\n")
    check_error(tmp_path, fa, r"line 3, column 3: non-ASCII byte 0x94")
