"""BED intervals: ``chrom start end [split]`` (0-based, half-open), checked against the FASTA.

The HyenaDNA/Caduceus HG38 setup reads Basenji's ``sequences_human.bed``: tab-separated,
no header, four columns, the fourth one of ``train``/``valid``/``test``. Any BED with at
least three columns works; ``split_column`` names the (1-based) column holding the split
label, or ``None`` to assign splits from the config (``recipes/dna/splits.py``);
``label_columns`` the columns holding class labels of each row (species, cell type, activity
class: ``data.label_column=5``, or several), every row needing one in each (and, with
``label_names``, one of those). Every
row is checked before anything is read: the error names the file, the line and what to
change.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from seqdiff.errors import DataError

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Interval:
    """``[start, end)`` of record ``chrom``; ``line`` is the BED line it came from (or 0);
    ``label`` its class labels (one per ``label_columns``), or None."""

    chrom: str
    start: int
    end: int
    line: int = 0
    label: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return self.end - self.start


def read_bed(
    path: str | os.PathLike,
    lengths: Mapping[str, int],
    *,
    split_column: int | None = 4,
    fasta_name: str = "the FASTA",
    include: str | None = None,
    label_columns: Sequence[int] | None = None,
    label_names: Sequence[Sequence[str] | None] | None = None,
) -> tuple[list[Interval], list[str] | None]:
    """Parse and check a BED file.

    Args:
        lengths: record name -> length, from the FASTA index.
        split_column: 1-based column with the split label, or None.
        include: optional regex; rows whose chromosome does not fully match are skipped.
        label_columns: 1-based columns with each row's class labels (``Interval.label``).
        label_names: per label column, the labels allowed there, or None (any); a row with
            another is an error naming it.

    Returns:
        the intervals and, when ``split_column`` is set, the split label of each.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: BED file not found")
    pattern = re.compile(include) if include else None
    intervals: list[Interval] = []
    labels: list[str] = []
    with open(path, "r", encoding="utf-8", errors="replace", newline=None) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            where = f"{path}, line {lineno}"
            if len(cols) < 3:
                raise DataError(f"{where}: expected at least 3 tab-separated columns (chrom, start, end), got {len(cols)}: {line[:60]!r}")
            chrom, s, e = cols[0], cols[1], cols[2]
            try:
                start, end = int(s), int(e)
            except ValueError:
                raise DataError(f"{where}: start and end must be integers, got {s!r} and {e!r}") from None
            if start < 0:
                raise DataError(f"{where}: negative start {start}")
            if start > end:
                raise DataError(f"{where}: start {start} > end {end} (BED is 0-based, half-open: start <= end)")
            if pattern is not None and not pattern.fullmatch(chrom):
                continue
            if chrom not in lengths:
                raise DataError(f"{where}: chromosome {chrom!r} is not in {fasta_name}{_name_hint(chrom, lengths)}")
            if end > lengths[chrom]:
                raise DataError(
                    f"{where}: {chrom}:{start}-{end} runs past the end of {chrom} (length {lengths[chrom]:,} in {fasta_name}); "
                    "is the BED for another assembly?"
                )
            if split_column is not None:
                if len(cols) < split_column:
                    raise DataError(
                        f"{where}: no split label in column {split_column} (expected one of {', '.join(SPLITS)}); "
                        "set data.bed_split_column=null to assign splits by chromosome or fraction instead"
                    )
                label = cols[split_column - 1].strip()
                if label not in SPLITS:
                    raise DataError(
                        f"{where}: unknown split label {label!r} in column {split_column} (expected one of {', '.join(SPLITS)}; "
                        "if that column is a name, set data.bed_split_column=null)"
                    )
                labels.append(label)
            label_value = None
            if label_columns:
                label_value = tuple(_label(cols, c, (label_names or [None] * len(label_columns))[k], where)
                                    for k, c in enumerate(label_columns))
            if end > start:  # an empty interval has no windows; skip it silently
                intervals.append(Interval(chrom, start, end, lineno, label_value))
            elif split_column is not None:
                labels.pop()
    if not intervals:
        raise DataError(f"{path}: no intervals" + (f" on chromosomes matching {include!r}" if include else ""))
    return intervals, (labels if split_column is not None else None)


def _label(cols: Sequence[str], column: int, names: Sequence[str] | None, where: str) -> str:
    value = cols[column - 1].strip() if len(cols) >= column else ""
    if not value:
        raise DataError(f"{where}: no label in column {column} (data.label_column); every row needs one")
    if names is not None and value not in names:
        raise DataError(f"{where}: label {value!r} in column {column} is not one of data.label_names "
                        f"({', '.join(names)})")
    return value


def _name_hint(chrom: str, lengths: Mapping[str, int]) -> str:
    names = list(lengths)
    alt = chrom[3:] if chrom.startswith("chr") else "chr" + chrom
    if alt in lengths:
        return f" (it has {alt!r}: the BED and FASTA name chromosomes differently)"
    shown = ", ".join(names[:5]) + (f", ... ({len(names)} records)" if len(names) > 5 else "")
    return f" (records: {shown})"
