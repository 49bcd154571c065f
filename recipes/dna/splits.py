"""Train/valid/test intervals when the BED has no split column (or there is no BED).

* ``chromosome``: whole chromosomes (records) are held out: ``valid_chroms`` and
  ``test_chroms`` name them, everything else trains. No window can straddle two splits.
* ``fraction``: every interval (each record, when there is no BED) is cut into three
  contiguous pieces with the given fractions, train first, then valid, then test.
  Contiguous pieces rather than random windows, so held-out bases are never inside a
  training window; the last ~seq_len bases before each cut are simply not covered by
  any window that crosses it.

Both are deterministic functions of the config: no seed is involved.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from seqdiff_recipes.dna.bed import SPLITS, Interval
from seqdiff.errors import ConfigError

SPLIT_MODES = ("chromosome", "fraction")


def by_labels(intervals: Sequence[Interval], labels: Sequence[str]) -> dict[str, list[Interval]]:
    out: dict[str, list[Interval]] = {s: [] for s in SPLITS}
    for iv, lab in zip(intervals, labels):
        out[lab].append(iv)
    return out


def by_chromosome(
    intervals: Sequence[Interval], valid_chroms: Sequence[str], test_chroms: Sequence[str], lengths: Mapping[str, int]
) -> dict[str, list[Interval]]:
    valid, test = set(valid_chroms or ()), set(test_chroms or ())
    if not valid and not test:
        raise ConfigError("data: split_by=chromosome needs data.valid_chroms and/or data.test_chroms (record names)")
    both = valid & test
    if both:
        raise ConfigError(f"data: chromosomes {sorted(both)} are in both valid_chroms and test_chroms")
    unknown = sorted((valid | test) - set(lengths))
    if unknown:
        raise ConfigError(f"data: valid/test chromosomes {unknown} are not records of the FASTA (have {list(lengths)[:8]})")
    out: dict[str, list[Interval]] = {s: [] for s in SPLITS}
    for iv in intervals:
        out["valid" if iv.chrom in valid else "test" if iv.chrom in test else "train"].append(iv)
    return out


def by_fraction(intervals: Sequence[Interval], fractions: Sequence[float]) -> dict[str, list[Interval]]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(f"data: split_fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    out: dict[str, list[Interval]] = {s: [] for s in SPLITS}
    f_train, f_valid = float(fractions[0]), float(fractions[1])
    for iv in intervals:
        n = len(iv)
        a = iv.start + round(n * f_train)
        b = iv.start + round(n * (f_train + f_valid))
        for name, s, e in (("train", iv.start, a), ("valid", a, b), ("test", b, iv.end)):
            if e > s:
                out[name].append(Interval(iv.chrom, s, e, iv.line, iv.label))
    return out


def assign(
    intervals: Sequence[Interval],
    labels: Sequence[str] | None,
    *,
    split_by: str,
    fractions: Sequence[float],
    valid_chroms: Sequence[str],
    test_chroms: Sequence[str],
    lengths: Mapping[str, int],
) -> dict[str, list[Interval]]:
    if labels is not None:
        return by_labels(intervals, labels)
    if split_by == "chromosome":
        return by_chromosome(intervals, valid_chroms, test_chroms, lengths)
    if split_by == "fraction":
        return by_fraction(intervals, fractions)
    raise ConfigError(f"data: split_by must be one of {SPLIT_MODES}, got {split_by!r}")
