"""Fixed-length windows over tokenised records: the batch source every recipe shares.

Training windows sit at random offsets inside records; the batch of step ``s`` is a
pure function of ``(seed, s)``, so resuming a run needs only its step counter and a
data-parallel rank takes its slice of the same global batch (identical to a single
process with the global batch size). Evaluation windows tile each record without
overlap, so evaluation is deterministic.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import Tensor

from seqdiff.data import Batch, DataSource
from seqdiff.utils.seeding import generator


class WindowData(DataSource):
    """Windows of ``seq_len`` tokens from per-split lists of 1-D id tensors.

    Args:
        splits: ``{"train": [ids, ...], "valid": [...], "test": [...]}``.
        seq_len: window length.
        seed: seeds training-window placement.
        pad_id: id used for padding (eval tail windows are not padded; see below).
    """

    def __init__(self, splits: dict[str, Sequence[Tensor]], seq_len: int, seed: int = 0, pad_id: int = 0) -> None:
        if seq_len < 1:
            raise ValueError(f"WindowData: seq_len must be >= 1, got {seq_len}")
        self.seq_len = int(seq_len)
        self.seed = int(seed)
        self.pad_id = int(pad_id)
        self.splits = {name: [r.long().flatten() for r in recs] for name, recs in splits.items()}
        train = self.splits.get("train", [])
        self._train = [r for r in train if len(r) >= self.seq_len]
        if train and not self._train:
            longest = max(len(r) for r in train)
            raise ValueError(
                f"WindowData: window length {self.seq_len} is longer than every training record (longest {longest})"
            )
        starts = torch.tensor([len(r) - self.seq_len + 1 for r in self._train], dtype=torch.float64)
        self._weights = starts / starts.sum() if len(starts) else starts

    def num_tokens(self, split: str) -> int:
        return sum(len(r) for r in self.splits.get(split, []))

    def train_batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Batch:
        """Rows ``rank*B .. (rank+1)*B`` of the global batch of step ``step``."""
        if not self._train:
            raise ValueError("WindowData: no training records")
        gen = generator(self.seed, int(step))
        total = batch_size * world_size
        rec = torch.multinomial(self._weights, total, replacement=True, generator=gen)
        u = torch.rand(total, generator=gen, dtype=torch.float64)
        rows = []
        for b in range(rank * batch_size, (rank + 1) * batch_size):
            r = self._train[int(rec[b])]
            start = int(u[b] * (len(r) - self.seq_len + 1))
            rows.append(r[start : start + self.seq_len])
        x = torch.stack(rows)
        return Batch(x, torch.ones_like(x, dtype=torch.bool))

    def eval_windows(self, split: str = "valid") -> Tensor:
        """All non-overlapping full windows of the split, in record order ``[N, L]``.

        A record's final partial window is dropped: scoring it padded would change the
        per-token context statistics between runs with different ``seq_len``.
        """
        recs = self.splits.get(split)
        if not recs:
            raise ValueError(f"WindowData: no records in split {split!r} (have {sorted(self.splits)})")
        L = self.seq_len
        wins = [r[: (len(r) // L) * L].view(-1, L) for r in recs if len(r) >= L]
        if not wins:
            raise ValueError(f"WindowData: every {split} record is shorter than the window length {L}")
        return torch.cat(wins)

    def eval_batches(self, split: str = "valid", batch_size: int = 64, max_sequences: int | None = None) -> Iterator[Batch]:
        wins = self.eval_windows(split)
        if max_sequences is not None:
            wins = wins[:max_sequences]
        for i in range(0, len(wins), batch_size):
            x = wins[i : i + batch_size]
            yield Batch(x, torch.ones_like(x, dtype=torch.bool))
