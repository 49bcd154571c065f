"""Windows of a genome FASTA (+ optional BED) as a seqdiff data source.

HG38 setup (HyenaDNA/Caduceus, used by MDLM's DNA table): the Basenji BED's rows with
their ``train``/``valid``/``test`` label, windows of L=1024 bases, upper-cased input,
reverse-complement augmentation with p=0.5 in training, bits/base = log2(perplexity).
Any other genome is the same source pointed at another FASTA/BED (``data.fasta``,
``data.bed``), or at a FASTA alone with a split by chromosome or by fraction.

* **Training windows**: start positions are drawn uniformly over *all* valid starts
  of the training intervals (an interval is chosen with probability proportional to
  its number of starts), so every base is equally likely to be trained on. Row ``r``
  of step ``s`` uses its own generator seeded by ``(seed, s, r)``, so a batch is a pure
  function of ``(seed, step)`` and data-parallel rank ``k`` reads only rows
  ``k*B .. (k+1)*B`` of the global batch (the same rows a single process would read).
* **Evaluation windows** tile each held-out interval without overlap from its start
  (a final partial window is dropped, as in ``recipes/windows.py``). With
  ``max_sequences`` smaller than the number of tiles, one window is taken from each of
  ``max_sequences`` equal strata of the tiling (a systematic sample spread over the
  whole split, not the first few intervals). No randomness: evaluation is repeatable.
* **A genome held out whole** (``split_by: test``): every interval (each record, or each BED
  row whatever its label) is test data and there is no train or valid split, for scoring a run
  on another genome: ``seqdiff eval checkpoint=RUN data.fasta=other.fa data.split_by=test``.
  Such a source is evaluation-only: ``train_batch`` (and reading an empty split) is a one-line
  error, while the default modes still refuse a missing split when the source is built.
* **Memory** is O(batch x window): pyfaidx seeks and reads each window; nothing of the
  genome is held in memory beyond the index.

Deliberate differences from the Caduceus/HyenaDNA pipeline (``caduceus-notes.md`` §4):

1. *No window extension across rows.* Caduceus stretches every BED row to 2^20 bases
   and tiles that, which reaches into neighbouring rows, including rows of other
   splits (train/test leakage), and shifts windows that run past the chromosome end
   back inside (duplicates). Here windows never leave their interval, so held-out
   bases are never trained on. Caduceus's test windows therefore cover ~8x more bases
   (2^20 instead of 131,072 per row) and can include training rows; ours are exactly
   the held-out rows.
2. *No EOS token.* Caduceus appends ``[SEP]`` to each window and scores it as a
   target; a constant last token is free likelihood (it lowers perplexity by about
   1/L of the per-token loss). Bits/base here counts bases only.
3. *N handling is explicit.* Caduceus turns N into ``[PAD]`` with ``ignore_index`` and
   then still counts those positions in the perplexity denominator (``numel``), which
   lowers the reported number on N-rich windows. With ``ns: ignore`` (the HG38 config)
   N positions are neither targets nor counted; with ``ns: token`` (default for other
   FASTA files) N is an ordinary token. Windows with more than ``max_n_fraction`` N
   are skipped in both training and evaluation.
4. *Evaluation is the ELBO, not masked-position perplexity*: the core's likelihood
   code reports an upper bound on the NLL of whole windows, comparable to MDLM's
   ``≤`` numbers, not to Caduceus MLM perplexity.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from seqdiff_recipes.dna import metrics, motifs
from seqdiff_recipes.dna.augment import reverse_complement_ids
from seqdiff_recipes.dna.bed import SPLITS, Interval, read_bed
from seqdiff_recipes.dna.domain import byte_table, why_invalid
from seqdiff_recipes.dna.fasta import FastaFile
from seqdiff_recipes.dna.memorisation import TrainingIndex
from seqdiff_recipes.dna.splits import assign
from seqdiff.data import Batch, DataSource
from seqdiff.errors import ConfigError, DataError
from seqdiff.labels import LabelSpec
from seqdiff.utils.seeding import derive_seed

#: Draws of a training window rejected for too many N before keeping the last one.
MAX_TRIES = 16
N_MODES = ("token", "ignore")
#: ``split_by`` value of a genome held out whole: its only split.
EVAL_ONLY = "test"
SOFTMASK_MODES = ("keep", "ignore")


class _Split:
    """The intervals of one split that can hold a window, with prefix sums for sampling."""

    def __init__(self, name: str, intervals: Sequence[Interval], seq_len: int,
                 label_index: Sequence[dict[str, int]] | None = None) -> None:
        self.name = name
        self.all = list(intervals)
        self.intervals = [iv for iv in intervals if len(iv) >= seq_len]
        # each interval's label ids [n, F] (a labelled BED), or None
        self.label_ids = (np.array([[index[v] for index, v in zip(label_index, iv.label)] for iv in self.intervals],
                                   dtype=np.int64).reshape(len(self.intervals), len(label_index))
                          if label_index is not None else None)
        self.chroms = [iv.chrom for iv in self.intervals]
        self.starts = np.array([iv.start for iv in self.intervals], dtype=np.int64)
        lens = np.array([len(iv) for iv in self.intervals], dtype=np.int64)
        self.cum_starts = np.cumsum(lens - seq_len + 1) if len(lens) else np.zeros(0, np.int64)
        self.cum_tiles = np.cumsum(lens // seq_len) if len(lens) else np.zeros(0, np.int64)

    @property
    def num_starts(self) -> int:
        return int(self.cum_starts[-1]) if len(self.cum_starts) else 0

    @property
    def num_tiles(self) -> int:
        return int(self.cum_tiles[-1]) if len(self.cum_tiles) else 0

    def bases(self) -> int:
        return sum(len(iv) for iv in self.all)


class FastaData(DataSource):
    """Training and evaluation windows from a FASTA file and optional BED intervals.

    Args:
        domain: the tokenizer (``DNADomain`` or any domain with ``encode``/``vocab``).
        fasta: FASTA (plain or BGZF ``.gz``) or GenBank file.
        bed: optional BED (``chrom start end [split]``); without it, every record of the
            FASTA (matching ``chroms``) is one interval.
        seq_len: window length L.
        bed_split_column: 1-based BED column with ``train``/``valid``/``test``; ``null``
            to split BED intervals by ``split_by`` instead.
        split_by: ``fraction`` or ``chromosome`` (when there are no split labels), or
            ``test``: every interval is test data (evaluation only; BED labels are ignored).
        split_fractions: train/valid/test fractions of each interval (``fraction``).
        valid_chroms, test_chroms: held-out records (``chromosome``).
        chroms: optional regex; only records (or BED rows) whose name fully matches.
        rc_augment: probability of reverse-complementing a training window.
        ns: ``token`` (N is a token, trained and scored) or ``ignore`` (N positions are
            not targets: marked invalid, like Caduceus's N -> [PAD] with ignore_index).
        softmask: ``keep`` (lower case is folded by the domain) or ``ignore`` (soft-masked
            repeat positions are marked invalid: not targets, not attended).
        max_n_fraction: windows with a larger fraction of N are redrawn (training) or
            skipped (evaluation).
        validate: scan the FASTA once for characters the domain rejects (cached).
        index_dir: where the .fai goes when the FASTA's folder is read-only.
        reference_split, reference_windows: the real windows that sample statistics are
            compared against (see :meth:`score_samples`).
        seed: seeds training-window placement and RC flips.
        label_column: 1-based BED column with each row's class label (species, cell type,
            activity), or a list of columns (several label fields): every window of that row
            carries them (``Batch.label``; a label is strand-free, so an RC-flipped window
            keeps it). Null: no labels.
        label_names: the labels allowed (their order is the label ids'): a list for one
            field, ``{field: [names]}`` for several; null (or a field left out): the
            distinct labels of the BED, sorted. A row without one, or with one not listed,
            is an error naming the file and line.
        label_field: the name of the label field, or a list, one per column
            (``condition.label=NAME``, or ``field:name,field:name``).
        motifs_file, motif_pvalue, memorisation_max_bases, memorisation_k: the sample
            metrics of :meth:`score_samples` (see :meth:`_init_sample_metrics`).
    """

    unit = "base"

    def __init__(
        self,
        domain: Any,
        fasta: str | os.PathLike | None = None,
        bed: str | os.PathLike | None = None,
        seq_len: int = 1024,
        bed_split_column: int | None = 4,
        split_by: str = "fraction",
        split_fractions: Sequence[float] = (0.9, 0.05, 0.05),
        valid_chroms: Sequence[str] = (),
        test_chroms: Sequence[str] = (),
        chroms: str | None = None,
        rc_augment: float = 0.5,
        ns: str = "token",
        softmask: str = "keep",
        max_n_fraction: float = 0.1,
        validate: bool = True,
        index_dir: str | os.PathLike | None = None,
        reference_split: str = "test",
        reference_windows: int = 512,
        seed: int = 0,
        motifs_file: str | None = None,
        motif_pvalue: float = motifs.DEFAULT_PVALUE,
        memorisation_max_bases: int = 4_000_000,
        memorisation_k: int = 12,
        label_column: int | Sequence[int] | None = None,
        label_names: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        label_field: str | Sequence[str] = "label",
    ) -> None:
        columns, fields, allowed = _label_settings(label_column, label_names, label_field, bed, bed_split_column,
                                                   split_by)
        if not fasta:
            raise ConfigError("data.fasta: give the genome, e.g. data.fasta=/path/genome.fa (plain, bgzip .gz, or GenBank)")
        if int(seq_len) < 1:
            raise ConfigError(f"data.seq_len must be >= 1, got {seq_len}")
        if ns not in N_MODES:
            raise ConfigError(f"data.ns must be one of {N_MODES}, got {ns!r}")
        if softmask not in SOFTMASK_MODES:
            raise ConfigError(f"data.softmask must be one of {SOFTMASK_MODES}, got {softmask!r}")
        if not 0.0 <= float(rc_augment) <= 1.0:
            raise ConfigError(f"data.rc_augment is a probability, got {rc_augment}")
        if not 0.0 <= float(max_n_fraction) <= 1.0:
            raise ConfigError(f"data.max_n_fraction must be in [0, 1], got {max_n_fraction}")
        if split_by == EVAL_ONLY and reference_split != EVAL_ONLY:
            raise ConfigError(f"data.reference_split={reference_split}: with data.split_by=test the only split is test")
        if reference_split not in SPLITS:
            raise ConfigError(f"data.reference_split must be one of {SPLITS}, got {reference_split!r}")
        self.domain = domain
        self.vocab = domain.vocab
        self.seq_len = int(seq_len)
        self.seed = int(seed)
        self.rc_p = float(rc_augment)
        self.ns = ns
        self.softmask = softmask
        self.max_n_fraction = float(max_n_fraction)
        self.reference_split = reference_split
        self.reference_windows = int(reference_windows)
        self._init_sample_metrics(motifs_file, motif_pvalue, memorisation_max_bases, memorisation_k)
        if self.rc_p > 0 and self.vocab.complement is None:
            raise ConfigError("data.rc_augment > 0 needs a domain with a complement map (set data.rc_augment=0)")
        comp = self.vocab.complement
        self._complement = np.asarray(comp, dtype=np.int64) if comp is not None else None
        self.n_id = getattr(domain, "ids", {}).get("N")

        if not Path(fasta).expanduser().is_file():
            raise DataError(
                f"{fasta}: FASTA file not found (set data.fasta=PATH; for HG38 first run "
                f"`seqdiff download hg38 --dir {Path(fasta).parent}`)"
            )
        self.fasta = FastaFile(fasta, index_dir=index_dir)
        self._table = byte_table(domain).astype(np.int64)
        self.composition: dict[int, int] = {}
        if validate:
            self.composition = self.fasta.validate(byte_table(domain), lambda c: why_invalid(domain, c))
        lengths = self.fasta.lengths
        fasta_name = str(self.fasta.source)
        self.eval_only = split_by == EVAL_ONLY
        if bed:
            intervals, labels = read_bed(
                bed, lengths, split_column=None if self.eval_only else bed_split_column, fasta_name=fasta_name,
                include=chroms, label_columns=columns, label_names=allowed,
            )
        else:
            pattern = re.compile(chroms) if chroms else None
            intervals = [Interval(n, 0, ln) for n, ln in lengths.items() if pattern is None or pattern.fullmatch(n)]
            if not intervals:
                raise ConfigError(f"data.chroms={chroms!r} matches no record of {fasta_name} (records: {list(lengths)[:8]})")
            labels = None
        self.bed = str(bed) if bed else None
        if self.eval_only:
            split_intervals = {"train": [], "valid": [], EVAL_ONLY: list(intervals)}
        else:
            split_intervals = assign(
                intervals,
                labels,
                split_by=split_by,
                fractions=split_fractions,
                valid_chroms=valid_chroms,
                test_chroms=test_chroms,
                lengths=lengths,
            )
        label_index = None
        if columns:
            names = [list(a) if a is not None else sorted({iv.label[k] for iv in intervals}) for k, a in enumerate(allowed)]
            self.labels = LabelSpec(tuple((f, tuple(n)) for f, n in zip(fields, names)))
            label_index = [{n: i for i, n in enumerate(ns)} for ns in names]
        self.splits = {name: _Split(name, split_intervals[name], self.seq_len, label_index) for name in SPLITS}
        self.source_name = self.bed or fasta_name
        if self.eval_only:
            self._check_split(EVAL_ONLY)
            return
        empty = [n for n, s in self.splits.items() if not s.all]
        if empty:
            how = "add rows with that label to the BED" if labels is not None else "adjust data.split_fractions / data.valid_chroms / data.test_chroms"
            raise DataError(f"{self.source_name}: no {'/'.join(empty)} intervals ({how}); training, validation and the final "
                            "evaluation need all three (to evaluate on a genome held out whole: data.split_by=test)")
        for name in self.splits:
            self._check_split(name)

    def _check_split(self, name: str) -> None:
        """A one-line error unless split ``name`` holds at least one window."""
        s = self.splits[name]
        if not s.all:  # only an evaluation-only source gets here with an empty split
            raise DataError(f"{self.source_name}: no {name} intervals: data.split_by=test holds the whole genome out "
                            "as the test set (evaluation only); train with data.split_by=fraction or chromosome, or a "
                            "BED with train/valid/test labels")
        if not s.intervals:
            longest = max(s.all, key=len)
            where = f"line {longest.line}: " if longest.line else ""
            raise DataError(
                f"{self.source_name}: window length {self.seq_len} is longer than every {name} interval "
                f"(longest: {where}{longest.chrom}:{longest.start}-{longest.end}, {len(longest):,} bp); lower data.seq_len"
            )

    # ------------------------------------------------------------------ reading
    def _read(self, locs: Sequence[tuple[str, int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Ids ``[n, L]`` and valid mask of windows ``(chrom, start, end)``.

        One pyfaidx read per window, then a single byte-table lookup for all of them.
        """
        seqs = [self.fasta.fetch(c, a, b) for c, a, b in locs]
        L = self.seq_len
        for (c, a, b), seq in zip(locs, seqs):
            if len(seq) != b - a:
                raise DataError(f"{self.fasta.source}: {c}:{a}-{b} returned {len(seq)} bases (index out of date?)")
        raw = np.frombuffer("".join(seqs).encode("ascii", "replace"), dtype=np.uint8).reshape(len(locs), L)
        ids = self._table[raw]
        if ids.min() < 0:
            row, col = np.unravel_index(int(np.argmin(ids)), ids.shape)
            c, a, _ = locs[row]
            line, column = self.fasta.base_location(c, a + int(col))
            raise DataError(
                f"{self.fasta.source}: record {c!r}, line {line}, column {column}: "
                f"character {seqs[row][col]!r} {why_invalid(self.domain, seqs[row][col])}"
            )
        valid = np.ones(ids.shape, dtype=bool)
        if self.ns == "ignore" and self.n_id is not None:
            valid &= ids != self.n_id
        if self.softmask == "ignore":
            valid &= raw < 97  # a-z: soft-masked repeat
        return ids, valid

    def _acceptable(self, ids: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Per row: at most ``max_n_fraction`` N and at least one position to score."""
        ok = valid.any(axis=1)
        if self.n_id is not None and self.max_n_fraction < 1.0:
            ok &= (ids == self.n_id).sum(axis=1) <= self.max_n_fraction * ids.shape[1]
        return ok

    def _train_labels(self, r: np.ndarray) -> np.ndarray | None:
        """The label ids of training start numbers ``r`` (their intervals'), or None."""
        s = self.splits["train"]
        return None if s.label_ids is None else s.label_ids[np.searchsorted(s.cum_starts, r, side="right")]

    def _train_locations(self, r: np.ndarray) -> list[tuple[str, int, int]]:
        """Training start numbers ``r`` (each in 0 .. num_starts-1) as windows."""
        s = self.splits["train"]
        i = np.searchsorted(s.cum_starts, r, side="right")
        before = np.where(i > 0, s.cum_starts[np.maximum(i - 1, 0)], 0)
        starts = (s.starts[i] + r - before).tolist()
        L = self.seq_len
        return [(s.chroms[k], a, a + L) for k, a in zip(i.tolist(), starts)]

    def window(self, split: str, index: int) -> tuple[str, int, int]:
        """``(chrom, start, end)`` of evaluation tile ``index`` of ``split``."""
        s = self._split(split)
        i = int(np.searchsorted(s.cum_tiles, index, side="right"))
        before = int(s.cum_tiles[i - 1]) if i else 0
        start = int(s.starts[i]) + (index - before) * self.seq_len
        return s.chroms[i], start, start + self.seq_len

    def _split(self, split: str) -> _Split:
        if split not in self.splits:
            raise ConfigError(f"data: unknown split {split!r} (have {', '.join(SPLITS)})")
        if self.eval_only:
            self._check_split(split)
        return self.splits[split]

    # ------------------------------------------------------------------ data-source contract
    def train_batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Batch:
        """Rows ``rank*B .. (rank+1)*B`` of the global batch of step ``step``."""
        total = self._split("train").num_starts
        lo, hi = rank * batch_size, (rank + 1) * batch_size
        # The whole global batch's draws come from one generator per step, so every
        # rank sees the same draws and takes its own rows.
        gen = np.random.Generator(np.random.PCG64(derive_seed(self.seed, int(step))))
        starts = gen.integers(total, size=batch_size * world_size)[lo:hi]
        flip = (gen.random(batch_size * world_size) < self.rc_p)[lo:hi]
        ids, valid = self._read(self._train_locations(starts))
        label = self._train_labels(starts)
        for j in np.flatnonzero(~self._acceptable(ids, valid)):
            # Too many N: redraw this row from its own stream (still a pure function of
            # (seed, step, row)); after MAX_TRIES the last draw is kept.
            rng = np.random.Generator(np.random.PCG64(derive_seed(self.seed, int(step), lo + int(j), 1)))
            for _ in range(MAX_TRIES - 1):
                redraw = rng.integers(total, size=1)
                rid, rv = self._read(self._train_locations(redraw))
                if self._acceptable(rid, rv)[0]:
                    break
            ids[j], valid[j] = rid[0], rv[0]
            if label is not None:
                label[j] = self._train_labels(redraw)[0]
        if self._complement is not None and flip.any():
            ids[flip] = reverse_complement_ids(ids[flip], self._complement)
            valid[flip] = valid[flip][:, ::-1]
        return Batch(torch.from_numpy(ids), torch.from_numpy(valid), None,
                     None if label is None else torch.from_numpy(label))

    def eval_windows(self, split: str = "valid", max_sequences: int | None = None) -> Iterator[tuple[str, int, int]]:
        """The evaluation windows ``(chrom, start, end)`` in order (see module docstring)."""
        for _, loc, _ in self._eval_rows(split, max_sequences):
            yield loc

    def _eval_rows(self, split: str, max_sequences: int | None
                   ) -> Iterator[tuple[tuple[np.ndarray, np.ndarray], tuple[str, int, int], int | None]]:
        """``((ids, valid), (chrom, start, end), label ids [F] or None)`` of each evaluation window."""
        s = self._split(split)
        T = s.num_tiles
        n = T if max_sequences is None else min(int(max_sequences), T)
        for k in range(n):
            # Stratum k of the tiling; take its first acceptable window.
            for j in range(k * T // n, (k + 1) * T // n):
                loc = self.window(split, j)
                ids, v = self._read([loc])
                if self._acceptable(ids, v)[0]:
                    label = None
                    if s.label_ids is not None:
                        label = s.label_ids[int(np.searchsorted(s.cum_tiles, j, side="right"))]
                    yield (ids[0], v[0]), loc, label
                    break

    def eval_batches(self, split: str = "valid", batch_size: int = 64, max_sequences: int | None = None) -> Iterator[Batch]:
        xs, vs, ys = [], [], []

        def batch() -> Batch:
            label = torch.from_numpy(np.stack(ys)) if ys and ys[0] is not None else None
            return Batch(torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(vs)), None, label)

        for (ids, v), _, y in self._eval_rows(split, max_sequences):
            xs.append(ids)
            vs.append(v)
            ys.append(y)
            if len(xs) == batch_size:
                yield batch()
                xs, vs, ys = [], [], []
        if xs:
            yield batch()

    # ------------------------------------------------------------------ reports
    def num_tokens(self, split: str) -> int:
        return self._split(split).bases()

    def label_prior(self) -> dict[str, Tensor] | None:
        """Each label's share of the training windows (an interval weighs its window starts)."""
        s = self.splits["train"]
        if self.labels is None or s.label_ids is None or not s.num_starts:
            return None
        starts = np.diff(s.cum_starts, prepend=0).astype(np.float64)
        out = {}
        for f, (name, k) in enumerate(zip(self.labels.field_names, self.labels.sizes)):
            w = np.bincount(s.label_ids[:, f], weights=starts, minlength=k)[:k]
            out[name] = torch.from_numpy(w / w.sum())
        return out

    def reference(self) -> dict:
        """What was trained and evaluated on (saved in eval.json next to the numbers)."""
        out: dict[str, Any] = {
            "fasta": str(self.fasta.source),
            "bed": self.bed,
            "seq_len": self.seq_len,
            "rc_augment": self.rc_p,
            "ns": self.ns,
            "softmask": self.softmask,
            "max_n_fraction": self.max_n_fraction,
            "uniform_bits_per_base": 2.0,
            "splits": {
                name: {
                    "intervals": len(s.all),
                    "usable_intervals": len(s.intervals),
                    "bases": s.bases(),
                    "eval_windows": s.num_tiles,
                }
                for name, s in self.splits.items()
            },
        }
        if self.composition:
            total = sum(self.composition.values())
            count = lambda chars: sum(self.composition.get(ord(c), 0) for c in chars)  # noqa: E731
            acgt = count("ACGTacgt")
            out["genome"] = {
                "bases": total,
                "gc_fraction": count("GCgc") / acgt if acgt else math.nan,
                "n_fraction": count("Nn") / total if total else math.nan,
                "softmasked_fraction": sum(c for b, c in self.composition.items() if 97 <= b <= 122) / total if total else math.nan,
            }
        return out

    # ------------------------------------------------------------------ sample metrics
    def _init_sample_metrics(self, motifs_file: str | None, motif_pvalue: float, max_bases: int, k: int) -> None:
        """Settings of the sample metrics; checked here, loaded on first use.

        ``motifs_file``: a MEME/JASPAR file, or ``jaspar[:RELEASE[:TAX_GROUP]]`` for the
        database bundled in pyjaspar (``pip install 'seqdiff[motifs]'``); null: no motif
        enrichment. ``memorisation_max_bases``: bases of the training intervals indexed for
        memorisation (0: off; more than that: an even sample of blocks). ``memorisation_k``:
        seed length of the index (exact matches shorter than it are not measured).
        """
        if not 0.0 < float(motif_pvalue) < 1.0:
            raise ConfigError(f"data.motif_pvalue must be in (0, 1), got {motif_pvalue}")
        if int(max_bases) < 0:
            raise ConfigError(f"data.memorisation_max_bases must be >= 0 (0: off), got {max_bases}")
        if not 1 <= int(k) <= 31:
            raise ConfigError(f"data.memorisation_k must be in 1..31, got {k}")
        if motifs_file and not (str(motifs_file).startswith("jaspar")) and not Path(str(motifs_file)).expanduser().is_file():
            raise DataError(f"{motifs_file}: motif file not found (data.motifs_file: a MEME/JASPAR file, or jaspar)")
        self.motifs_file = str(motifs_file) if motifs_file else None
        self.motif_pvalue = float(motif_pvalue)
        self.memorisation_max_bases = int(max_bases)
        self.memorisation_k = int(k)
        self._memo_index: TrainingIndex | None = None
        self._motifs: motifs.MotifScanner | None = None

    def memorisation_index(self) -> TrainingIndex | None:
        """The k-mer index over the training intervals (built once, streaming through pyfaidx;
        None when ``memorisation_max_bases`` is 0). See :mod:`seqdiff_recipes.dna.memorisation`."""
        if self.memorisation_max_bases <= 0:
            return None
        if self._memo_index is None:
            train = [(iv.chrom, iv.start, iv.end) for iv in self.splits["train"].all]
            self._memo_index = TrainingIndex.from_fasta(self.fasta, train, max_bases=self.memorisation_max_bases,
                                                        k=self.memorisation_k)
        return self._memo_index

    def motif_scanner(self) -> motifs.MotifScanner | None:
        """The motifs of ``motifs_file`` prepared for scanning (thresholds computed once)."""
        if not self.motifs_file:
            return None
        if self._motifs is None:
            self._motifs = motifs.MotifScanner(motifs.load_motifs(self.motifs_file), pvalue=self.motif_pvalue)
        return self._motifs

    def reference_sets(self, n: int) -> tuple[Tensor, Tensor]:
        """Two disjoint sets of at most ``n`` held-out windows (``reference_split``), the ones
        every floor of :meth:`score_samples` uses: samples are compared with ``b``, ``a`` with
        ``b`` gives the floor (e.g. for :func:`seqdiff.eval.frechet.frechet_report`)."""
        r = self._reference(n)
        return r[0::2][:n], r[1::2][:n]

    def _reference(self, n: int) -> Tensor:
        """The held-out windows sample statistics are compared with (at least ``2 n``)."""
        want = max(2 * n, self.reference_windows)
        real = [b.x0 for b in self.eval_batches(self.reference_split, want, want)]
        return torch.cat(real) if real else torch.zeros(0, self.seq_len, dtype=torch.long)

    def score_samples(self, tokens: Tensor) -> dict:
        """Sample statistics against held-out real windows (``reference_split``).

        k-mer spectrum Jensen-Shannon divergence (k = 1..6), GC content, CpG
        observed/expected and homopolymer-run statistics. Each divergence has a *floor*
        beside it: the same divergence between two disjoint sets of real windows of the
        samples' size, i.e. what sampling noise alone gives. A model matches the data
        on a statistic when its divergence is near the floor.

        Memorisation (``memorisation``: longest exact match and nearest-neighbour identity
        to the indexed training bases, both strands) comes beside the same numbers for
        held-out windows (``memorisation_real``), and ``memorisation_index`` says what the
        index covers. With ``motifs_file``: per-motif hit rates and the samples/real ratio,
        with the rate correlation beside its real-vs-real floor.
        """
        n = int(tokens.shape[0])
        ref = self._reference(n)
        if not len(ref):
            return {}
        out = metrics.compare(tokens, ref, self.domain)
        out["reference_split"] = self.reference_split
        s = metrics.base_codes(tokens, self.domain)
        r = metrics.base_codes(ref, self.domain)
        ref_a, ref_b = r[0::2][:n], r[1::2][:n]  # as metrics.compare splits them
        index = self.memorisation_index()
        if index is not None and index.indexed_bases:
            out["memorisation"] = index.summary(s)
            out["memorisation_real"] = index.summary(ref_b)
            out["memorisation_index"] = index.describe(int(tokens.shape[1]))
        if self.motifs_file and len(ref_a) and len(ref_b):
            out.update(motifs.enrichment(s.numpy(), ref_a.numpy(), ref_b.numpy(), self.motif_scanner()))
        return out


def _label_settings(column: Any, names: Any, field: Any, bed: Any, split_column: int | None, split_by: str
                    ) -> tuple[list[int] | None, list[str], list[list[str] | None]]:
    """``(columns, field names, allowed names per field)`` of ``data.label_*`` (one-line errors)."""
    if column is None:
        return None, [], []
    given = list(column) if isinstance(column, (list, tuple)) else [column]
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in given):
        raise ConfigError(f"data.label_column: expected a 1-based BED column or a list of them, got {column!r}")
    columns = [int(c) for c in given]
    if not bed:
        raise ConfigError("data.label_column: labels are read from a BED column; give data.bed=regions.bed")
    if any(c < 1 for c in columns) or len(set(columns)) != len(columns):
        raise ConfigError(f"data.label_column: expected distinct 1-based BED columns, got {columns}")
    if split_column is not None and int(split_column) in columns and split_by != EVAL_ONLY:
        raise ConfigError(f"data.label_column={column} is also data.bed_split_column (the train/valid/test column); "
                          "set one of them to another column")
    fields = [str(f) for f in (field if isinstance(field, (list, tuple)) else [field])]
    if len(fields) != len(columns):
        raise ConfigError(f"data.label_field: {len(columns)} label columns need {len(columns)} field names "
                          f"(data.label_field=[...]), got {fields}")
    if names is None:
        allowed = [None] * len(columns)
    elif isinstance(names, Mapping):
        unknown = [k for k in names if k not in fields]
        if unknown:
            raise ConfigError(f"data.label_names: unknown label fields {unknown} (fields: {', '.join(fields)})")
        allowed = [[str(n) for n in names[f]] if f in names else None for f in fields]
    else:
        if len(fields) != 1:
            raise ConfigError("data.label_names: with several label fields give {field: [names], ...}")
        allowed = [[str(n) for n in names]]
    return columns, fields, allowed
