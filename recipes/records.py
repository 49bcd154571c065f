"""One sequence per row: proteins, RNAs, reads, any FASTA of short records, any alphabet.

Where :mod:`seqdiff_recipes.dna` cuts windows out of long chromosomes, this source keeps each
record whole: a row is one record, padded to ``seq_len`` (padding is excluded from
attention and loss) or, if longer, cropped (at a random offset in training, at the
start for evaluation). Records are split into train/valid/test by a hash of their
name, so a split never depends on file order and adding records never moves old ones.
Works with any domain that has ``encode``/``vocab`` (e.g. ``configs/domain/protein.yaml``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import Tensor

from seqdiff.data import Batch, DataSource
from seqdiff.errors import ConfigError, DataError
from seqdiff.utils.seeding import generator

SPLITS = ("train", "valid", "test")


def read_fasta_records(path: str | Path) -> list[tuple[str, str, int]]:
    """``(name, sequence, line)`` of every record, validated with Biopython's parser."""
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    text = path.read_bytes()
    if not text.strip():
        raise DataError(f"{path}: empty file (expected FASTA records starting with '>')")
    first = text.lstrip()[:1]
    if first != b">":
        raise DataError(f"{path}: line 1: expected a FASTA header starting with '>', got {text.lstrip()[:20]!r}")
    records, seen = [], {}
    line_of = _header_lines(text)
    with open(path, encoding="ascii", errors="strict", newline=None) as f:
        try:
            for i, (title, seq) in enumerate(SimpleFastaParser(f)):
                name = title.split()[0] if title.split() else ""
                line = line_of[i] if i < len(line_of) else 0
                if not name:
                    raise DataError(f"{path}: line {line}: record with an empty name")
                if name in seen:
                    raise DataError(f"{path}: line {line}: duplicate record name {name!r} (first at line {seen[name]})")
                seen[name] = line
                records.append((name, seq.replace(" ", ""), line))
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: byte offset {e.start}: not ASCII; FASTA must be plain text") from None
    return records


def _header_lines(text: bytes) -> list[int]:
    return [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith(b">")]


def split_of(name: str, fractions: Sequence[float]) -> str:
    """Deterministic split from a hash of the record name."""
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2**64
    acc = 0.0
    for split, frac in zip(SPLITS, fractions):
        acc += frac
        if h < acc:
            return split
    return SPLITS[-1]


class RecordData(DataSource):
    """Rows of whole records from a FASTA file.

    Args:
        domain: tokenizer/vocabulary (``encode``, ``vocab``).
        path: FASTA file.
        seq_len: row length (records are padded or cropped to it).
        split_fractions: train/valid/test fractions of records (by name hash).
        min_length: records shorter than this are skipped.
        seed: seeds training crops and batch composition.
    """

    unit = "token"

    def __init__(
        self,
        domain,
        path: str,
        seq_len: int = 256,
        split_fractions: Sequence[float] = (0.9, 0.05, 0.05),
        min_length: int = 1,
        seed: int = 0,
    ) -> None:
        if path in (None, ""):
            raise ConfigError("data.path: give the FASTA file (data.path=proteins.fa)")
        if len(split_fractions) != 3 or abs(sum(split_fractions) - 1.0) > 1e-6 or min(split_fractions) < 0:
            raise ConfigError(f"data.split_fractions must be three non-negative numbers summing to 1, got {list(split_fractions)}")
        self.domain = domain
        self.seq_len = int(seq_len)
        self.seed = int(seed)
        self.pad_id = domain.vocab.pad_id
        self.splits: dict[str, list[Tensor]] = {s: [] for s in SPLITS}
        for name, seq, line in read_fasta_records(path):
            if len(seq) < min_length:
                continue
            ids = domain.encode(seq, where=f"{path}: line {line + 1} (record {name!r})")
            self.splits[split_of(name, split_fractions)].append(torch.tensor(ids, dtype=torch.long))
        if not self.splits["train"]:
            raise DataError(f"{path}: no training records (check min_length and split_fractions)")

    def _row(self, rec: Tensor, start: int) -> tuple[Tensor, Tensor]:
        L = self.seq_len
        piece = rec[start : start + L]
        x = torch.full((L,), self.pad_id, dtype=torch.long)
        x[: len(piece)] = piece
        valid = torch.zeros(L, dtype=torch.bool)
        valid[: len(piece)] = True
        return x, valid

    def train_batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Batch:
        recs = self.splits["train"]
        gen = generator(self.seed, int(step))
        total = batch_size * world_size
        pick = torch.randint(len(recs), (total,), generator=gen)
        u = torch.rand(total, generator=gen, dtype=torch.float64)
        rows = []
        for b in range(rank * batch_size, (rank + 1) * batch_size):
            rec = recs[int(pick[b])]
            start = int(u[b] * max(0, len(rec) - self.seq_len + 1))
            rows.append(self._row(rec, start))
        return Batch(torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]))

    def eval_batches(self, split: str = "valid", batch_size: int = 64, max_sequences: int | None = None) -> Iterator[Batch]:
        recs = self.splits.get(split)
        if not recs:
            raise DataError(f"RecordData: no {split} records (have {[s for s in SPLITS if self.splits[s]]})")
        recs = recs[:max_sequences] if max_sequences else recs
        for i in range(0, len(recs), batch_size):
            rows = [self._row(r, 0) for r in recs[i : i + batch_size]]
            yield Batch(torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]))

    def sample_condition(self, n: int, seed: int = 0):
        """Unconditional samples take their lengths from training records (p(x) = p(len)
        p(x | len)): a ``Condition`` whose ``valid`` mask is each row's length."""
        from seqdiff.samplers import Condition

        recs = self.splits["train"]
        pick = torch.randint(len(recs), (n,), generator=generator(self.seed, seed, 7))
        lengths = torch.tensor([min(len(recs[int(i)]), self.seq_len) for i in pick])
        valid = torch.arange(self.seq_len).unsqueeze(0) < lengths.unsqueeze(1)
        return Condition(torch.zeros(n, self.seq_len, dtype=torch.long), torch.zeros(n, self.seq_len, dtype=torch.bool), valid)
