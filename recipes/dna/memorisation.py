r"""Memorisation: how close each generated window is to the training windows.

Two numbers per sample, each the best over both strands (training used reverse-complement
augmentation, so a copied reverse complement is a copy):

* **Longest exact match** (LEM): the longest substring of the sample that occurs in the
  indexed training bases. Every exact match of length :math:`\ge k` starts with a shared
  :math:`k`-mer, and a match of length :math:`m` is :math:`m-k+1` consecutive shared
  :math:`k`-mers on one diagonal (sample offset :math:`i`, genome offset :math:`i+d`), so
  LEM is exact from :math:`k` up; a sample whose longest match is shorter than :math:`k`
  reports 0 (``longest_match_detects_from`` says :math:`k`).
* **Nearest-neighbour identity**: the largest fraction of equal positions (ungapped,
  Hamming) between the sample and any training window of the sample's length (D3's
  cross-sequence identity, D3LM's novelty). With a small index it is computed *exactly*
  over every window (one-hot windows times one-hot samples, a matrix product in chunks).
  Beyond ``exact_budget`` multiply-adds only windows on a diagonal sharing a :math:`k`-mer
  with the sample are scored. A window with :math:`m` mismatches and no run of :math:`k`
  matches has :math:`L - m \le (m+1)(k-1)`, i.e. :math:`m \ge c = \lceil (L-k+1)/k \rceil`;
  so every window of identity :math:`\ge f^* = 1 - (c-1)/L` shares a :math:`k`-mer with
  the sample on its diagonal, and the reported value is exact at or above :math:`f^*`
  (``identity_exact_at_or_above``) and a lower bound below it. N never matches anything.

A random sequence is *not* at identity 0.25: the maximum over :math:`N` windows of a
Binomial(:math:`L`, ~0.25-0.3) fraction grows with :math:`N` (about 0.45 for
:math:`L = 64` against :math:`10^4` windows), and genomes share repeats across
chromosomes. So the numbers for samples are reported beside the same numbers for
held-out real windows (never trained on): memorisation is what exceeds that floor.

**The index** covers the training intervals, read block by block through pyfaidx (the
genome is never in memory; what is held is the indexed bases, 1 byte each, and their
sorted :math:`k`-mer keys and positions, 12 bytes each). When the training intervals hold
more than ``max_bases`` bases, the index takes an evenly spaced systematic sample of
``block``-base blocks (block :math:`\lfloor (j + 1/2) T / B \rfloor` of the :math:`T`
blocks, :math:`j = 0..B-1`): deterministic, spread over every chromosome;
``coverage`` is the fraction of training bases indexed, and a copy of an unindexed
region is not detected.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import torch

#: byte -> code: A/C/G/T (either case) 0..3, anything else 4; 5 separates indexed blocks.
LUT = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    LUT[_b] = LUT[_b + 32] = _i
SEP = 5
NEVER = 6  # non-ACGT symbols of a query: equal to nothing in the index
DEFAULT_K = 12
DEFAULT_BLOCK = 1 << 16
EXACT_BUDGET = 2e10  # multiply-adds of the exact identity scan before falling back to seeds


def encode(seq: str | bytes) -> np.ndarray:
    """Bases as codes 0..3 (A/C/G/T, either case), 4 for anything else."""
    raw = seq.encode("ascii", "replace") if isinstance(seq, str) else bytes(seq)
    return LUT[np.frombuffer(raw, dtype=np.uint8)]


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of code rows ``[M, L]`` (0..3 complemented, others kept)."""
    rc = codes[:, ::-1].copy()
    acgt = rc < 4
    rc[acgt] = 3 - rc[acgt]
    return rc


def identity_exact_threshold(L: int, k: int) -> float:
    """:math:`f^*`: identities at or above it are found by the k-mer seeds (module docstring)."""
    if L < k:
        return math.inf
    return 1.0 - (math.ceil((L - k + 1) / k) - 1) / L


def sample_blocks(intervals: Sequence[tuple[str, int, int]], max_bases: int, block: int) -> tuple[list[tuple[str, int, int]], int]:
    """The blocks to index (systematic sample, module docstring) and the training bases in all."""
    blocks = [(c, a, min(a + block, b)) for c, s, b in intervals for a in range(s, b, block)]
    total = sum(b - a for _, a, b in blocks)
    if total <= max_bases:
        return blocks, total
    want = max(1, max_bases // block)
    T = len(blocks)
    return [blocks[int((j + 0.5) * T / want)] for j in range(min(want, T))], total


class TrainingIndex:
    """A sorted k-mer index over training bases (blocks joined by separators).

    Build it with :meth:`from_fasta` (streaming through a :class:`~seqdiff_recipes.dna.fasta.FastaFile`)
    or :meth:`from_sequences`; query with :meth:`query`.
    """

    def __init__(self, pieces: Iterable[np.ndarray], *, k: int = DEFAULT_K, training_bases: int | None = None) -> None:
        if not 1 <= k <= 31:
            raise ValueError(f"TrainingIndex: k must be in 1..31 (2 bits a base in an int64), got {k}")
        parts: list[np.ndarray] = []
        for p in pieces:
            parts += [np.asarray(p, dtype=np.uint8), np.array([SEP], dtype=np.uint8)]
        self.seq = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
        self.k = int(k)
        self.indexed_bases = int((self.seq != SEP).sum())
        self.training_bases = int(training_bases if training_bases is not None else self.indexed_bases)
        n = len(self.seq) - k + 1
        if n <= 0:
            self.keys = np.zeros(0, np.int64)
            self.pos = np.zeros(0, np.int64)
            return
        c = self.seq.astype(np.int64)
        key = np.zeros(n, dtype=np.int64)
        bad = np.zeros(n, dtype=bool)
        for j in range(k):
            key = (key << 2) | (c[j : j + n] & 3)
            bad |= c[j : j + n] > 3
        keep = np.flatnonzero(~bad)
        order = np.argsort(key[keep], kind="stable")
        self.keys = key[keep][order]
        self.pos = keep[order].astype(np.int32 if len(self.seq) < 2**31 else np.int64)

    @classmethod
    def from_sequences(cls, seqs: Iterable[str | bytes], *, k: int = DEFAULT_K) -> "TrainingIndex":
        return cls((encode(s) for s in seqs), k=k)

    @classmethod
    def from_fasta(cls, fasta: Any, intervals: Sequence[tuple[str, int, int]], *, max_bases: int = 4_000_000,
                   k: int = DEFAULT_K, block: int = DEFAULT_BLOCK) -> "TrainingIndex":
        """Index the training ``intervals`` ``(chrom, start, end)`` of ``fasta`` (anything with
        ``fetch(chrom, start, end) -> str``), one block read at a time."""
        blocks, total = sample_blocks(intervals, int(max_bases), int(block))
        index = cls((encode(fasta.fetch(c, a, b)) for c, a, b in blocks), k=k, training_bases=total)
        index.blocks = blocks
        return index

    @property
    def coverage(self) -> float:
        return self.indexed_bases / self.training_bases if self.training_bases else 0.0

    # ------------------------------------------------------------------ queries
    def _hits(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All (sample offset, genome position) pairs sharing a k-mer."""
        k, L = self.k, len(row)
        n = L - k + 1
        if n <= 0 or not len(self.keys):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        c = row.astype(np.int64)
        key = np.zeros(n, dtype=np.int64)
        bad = np.zeros(n, dtype=bool)
        for j in range(k):
            key = (key << 2) | (c[j : j + n] & 3)
            bad |= c[j : j + n] > 3
        offs = np.flatnonzero(~bad)
        lo = np.searchsorted(self.keys, key[offs], "left")
        hi = np.searchsorted(self.keys, key[offs], "right")
        counts = hi - lo
        i = np.repeat(offs, counts)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)  # position within each hit range
        g = self.pos[starts + np.arange(counts.sum())].astype(np.int64) if counts.sum() else np.zeros(0, np.int64)
        return i, g

    def _longest(self, i: np.ndarray, g: np.ndarray) -> int:
        if not len(i):
            return 0
        d = g - i
        order = np.lexsort((i, d))
        d, i = d[order], i[order]
        new = np.ones(len(i), dtype=bool)
        new[1:] = (d[1:] != d[:-1]) | (i[1:] != i[:-1] + 1)
        return int(np.bincount(np.cumsum(new)).max()) + self.k - 1

    def _window_ok(self, L: int) -> np.ndarray:
        """Window starts whose ``L`` bases lie inside one indexed block."""
        n = len(self.seq) - L + 1
        if n <= 0:
            return np.zeros(0, dtype=bool)
        sep = np.concatenate([[0], np.cumsum(self.seq == SEP)])
        return sep[L : L + n] - sep[:n] == 0

    def _identity_exact(self, q: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Best matches per query row over every window: chunks of one-hot windows @ one-hot queries."""
        M, L = q.shape
        onehot = torch.zeros(len(self.seq), 4)
        acgt = torch.from_numpy(self.seq < 4)
        onehot[acgt, torch.from_numpy(self.seq.astype(np.int64))[acgt]] = 1.0
        Q = torch.zeros(M, L, 4)
        qa = torch.from_numpy(q < 4)
        Q[qa.nonzero(as_tuple=True) + (torch.from_numpy(q.astype(np.int64))[qa],)] = 1.0
        Q = Q.permute(0, 2, 1).reshape(M, 4 * L)  # (base, position) order, as unfold lays windows out
        best = torch.full((M,), -1.0)
        okt = torch.from_numpy(ok)
        C = max(64, (1 << 22) // (4 * L))
        for c0 in range(0, len(ok), C):
            c1 = min(c0 + C, len(ok))
            W = onehot[c0 : c1 + L - 1].unfold(0, L, 1).reshape(c1 - c0, 4 * L)  # [C, 4, L] -> [C, 4L]
            s = W @ Q.T
            s[~okt[c0:c1]] = -1.0
            best = torch.maximum(best, s.max(0).values)
        return best.clamp(min=0).numpy().astype(np.int64)

    def _identity_seeded(self, row: np.ndarray, i: np.ndarray, g: np.ndarray, ok: np.ndarray) -> int:
        if not len(i):
            return 0
        L = len(row)
        w = np.unique(g - i)
        w = w[(w >= 0) & (w < len(ok))]
        w = w[ok[w]]
        best = 0
        for c0 in range(0, len(w), max(1, (1 << 22) // L)):
            ww = w[c0 : c0 + max(1, (1 << 22) // L)]
            win = self.seq[ww[:, None] + np.arange(L)[None, :]]
            best = max(best, int((win == row[None, :]).sum(1).max()))
        return best

    def query(self, codes: np.ndarray | torch.Tensor, *, exact_budget: float = EXACT_BUDGET) -> dict[str, Any]:
        """Per row of ``codes [M, L]`` (0..3 A/C/G/T, anything else never matches), best over
        both strands: ``longest_match`` (bases) and ``identity`` (fraction), as arrays;
        ``identity_exact`` says whether every window was scored."""
        q = np.asarray(codes.cpu().numpy() if isinstance(codes, torch.Tensor) else codes, dtype=np.int64)
        q = np.where((q >= 0) & (q < 4), q, NEVER).astype(np.uint8)
        M, L = q.shape
        both = np.concatenate([q, reverse_complement_codes(q)])
        ok = self._window_ok(L)
        exact = int(ok.sum()) * 4 * L * 2 * M <= exact_budget
        lem = np.zeros(2 * M, dtype=np.int64)
        ident = self._identity_exact(both, ok) if exact and ok.any() else np.zeros(2 * M, dtype=np.int64)
        for r in range(2 * M):
            i, g = self._hits(both[r])
            lem[r] = self._longest(i, g)
            if not exact:
                ident[r] = self._identity_seeded(both[r], i, g, ok)
        return {
            "longest_match": np.maximum(lem[:M], lem[M:]),
            "identity": np.maximum(ident[:M], ident[M:]) / L,
            "identity_exact": exact,
        }

    def summary(self, codes: np.ndarray | torch.Tensor, *, exact_budget: float = EXACT_BUDGET) -> dict[str, float]:
        """:meth:`query` summarised over rows: means, medians, maxima and the fractions of
        rows that are full-length copies or above identity 0.9 / 0.99."""
        r = self.query(codes, exact_budget=exact_budget)
        L = int(codes.shape[1])
        lem, ident = r["longest_match"].astype(np.float64), r["identity"]
        return {
            "longest_match_mean": float(lem.mean()),
            "longest_match_median": float(np.median(lem)),
            "longest_match_max": float(lem.max()),
            "full_length_copies": float((lem >= L).mean()),
            "identity_mean": float(ident.mean()),
            "identity_median": float(np.median(ident)),
            "identity_max": float(ident.max()),
            "identity_ge_0.9": float((ident >= 0.9).mean()),
            "identity_ge_0.99": float((ident >= 0.99).mean()),
            "identity_exact": float(r["identity_exact"]),
        }

    def describe(self, L: int) -> dict[str, float]:
        """What the index covers and what its numbers mean (for the report)."""
        return {
            "indexed_bases": float(self.indexed_bases),
            "training_bases": float(self.training_bases),
            "coverage": self.coverage,
            "longest_match_detects_from": float(self.k),
            "identity_exact_at_or_above": identity_exact_threshold(L, self.k),
        }
