"""Whole-record data (one FASTA record per row), used for proteins and other short sequences."""

import random

import pytest
import torch

from seqdiff_recipes.alphabet import AlphabetDomain
from seqdiff_recipes.records import RecordData, read_fasta_records
from seqdiff.errors import ConfigError, DataError

AA = "ACDEFGHIKLMNPQRSTVWY"


def protein_domain():
    return AlphabetDomain(AA + "X", name="protein", uppercase=True)


def write_proteins(path, n=60, seed=0):
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        seq = "".join(rng.choice(AA) for _ in range(rng.randint(20, 90)))
        lines += [f">prot{i} some description", seq[:40], seq[40:]]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rows_are_padded_or_cropped_and_deterministic(tmp_path):
    fa = write_proteins(tmp_path / "p.fa")
    d = RecordData(protein_domain(), str(fa), seq_len=48, seed=1)
    assert sum(len(v) for v in d.splits.values()) == 60
    x, valid, _ = d.train_batch(3, 8)
    x2, valid2, _ = d.train_batch(3, 8)
    assert torch.equal(x, x2) and torch.equal(valid, valid2)
    assert (x[~valid] == d.pad_id).all() and (x[valid] < 20).all()
    # valid positions form a prefix of each row
    assert all(int(v.sum()) == 0 or bool(v[: int(v.sum())].all()) for v in valid)
    # rank slices of a global batch
    a, _, _ = d.train_batch(5, 4, rank=0, world_size=2)
    b, _, _ = d.train_batch(5, 4, rank=1, world_size=2)
    full, _, _ = d.train_batch(5, 8)
    assert torch.equal(torch.cat([a, b]), full)
    ev = list(d.eval_batches("train", 16, 20))
    assert sum(len(e[0]) for e in ev) == 20
    # splits depend on names only: reversing the file keeps every record in its split
    fa2 = tmp_path / "rev.fa"
    recs = read_fasta_records(fa)
    fa2.write_text("".join(f">{n}\n{s}\n" for n, s, _ in reversed(recs)))
    d2 = RecordData(protein_domain(), str(fa2), seq_len=48)
    assert sorted(len(r) for r in d2.splits["valid"]) == sorted(len(r) for r in d.splits["valid"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty file"),
        ("MKV\n>a\nMKV\n", "line 1: expected a FASTA header"),
        (">a\nMKV\n>a\nMKW\n", "line 3: duplicate record name 'a' \\(first at line 1\\)"),
        (">a\nMKV\n>b\nMKB\n", "line 4 \\(record 'b'\\): character 'B' at position 2"),
    ],
)
def test_bad_fasta_is_reported_with_file_and_line(tmp_path, content, message):
    fa = tmp_path / "bad.fa"
    fa.write_text(content)
    with pytest.raises(DataError, match=message):
        RecordData(protein_domain(), str(fa), seq_len=16)


def test_non_ascii_and_missing_path(tmp_path):
    fa = tmp_path / "bad.fa"
    fa.write_bytes(b">a\nMK\xffV\n")
    with pytest.raises(DataError, match="byte offset"):
        RecordData(protein_domain(), str(fa))
    with pytest.raises(ConfigError, match="data.path"):
        RecordData(protein_domain(), None)
    with pytest.raises(DataError, match="no such file"):
        RecordData(protein_domain(), str(tmp_path / "missing.fa"))
