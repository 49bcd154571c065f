"""Flank-conditioned infilling from a genome region: ``chr:start-end`` with its middle masked.

``seqdiff sample checkpoint=RUN condition.fasta=genome.fa condition.region=chr1:10001-11024``
reads the region (samtools notation: 1-based, inclusive), keeps its flanks fixed and
lets the model generate the middle half; ``condition.infill`` picks the middle instead
(a number of centred bases, or ``START-END`` in the same genomic coordinates), and
``condition.strand=-`` reverse-complements the region first (Biopython, IUPAC-aware).
``condition.motif`` + ``condition.motif_at`` may additionally fix a motif inside the
generated part. The result is a core :class:`Condition`, so every sampler honours it.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from seqdiff_recipes.dna.augment import reverse_complement
from seqdiff_recipes.dna.fasta import FastaFile
from seqdiff.errors import ConfigError, DataError
from seqdiff.samplers.base import Condition

_REGION = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>[\d,_]+)-(?P<end>[\d,_]+)$")
_RANGE = re.compile(r"^(?P<start>[\d,_]+)-(?P<end>[\d,_]+)$")


def _int(text: str) -> int:
    return int(text.replace(",", "").replace("_", ""))


def parse_region(text: str) -> tuple[str, int, int]:
    """``chr:start-end`` (1-based, inclusive) -> ``(chrom, start0, end)`` (0-based, half-open)."""
    m = _REGION.match(str(text).strip())
    if not m:
        raise ConfigError(f"condition.region: expected CHROM:START-END (1-based, inclusive), got {text!r}")
    start, end = _int(m["start"]), _int(m["end"])
    if start < 1 or end < start:
        raise ConfigError(f"condition.region: {text!r} needs 1 <= START <= END")
    return m["chrom"], start - 1, end


def infill_span(length: int, infill: Any, region_start0: int, strand: str) -> tuple[int, int]:
    """The generated part ``[a, b)`` in window coordinates."""
    if infill in (None, ""):
        a = length // 4
        return a, length - a
    text = str(infill).strip()
    if text.isdigit():
        n = int(text)
        if not 0 < n <= length:
            raise ConfigError(f"condition.infill: {n} bases do not fit in a region of {length}")
        a = (length - n) // 2
        return a, a + n
    m = _RANGE.match(text)
    if not m:
        raise ConfigError(f"condition.infill: expected a number of bases or START-END, got {infill!r}")
    s0, e = _int(m["start"]) - 1 - region_start0, _int(m["end"]) - region_start0
    if not 0 <= s0 < e <= length:
        raise ConfigError(f"condition.infill: {text} is not inside the region")
    if strand == "-":  # window coordinates run along the reverse strand
        s0, e = length - e, length - s0
    return s0, e


def region_condition(domain: Any, cond: Mapping[str, Any], *, index_dir: str | None = None) -> Condition:
    """A :class:`Condition` fixing the flanks of ``cond['region']`` of ``cond['fasta']``."""
    for key in ("prefix", "suffix", "left", "right"):
        if cond.get(key) not in (None, ""):
            raise ConfigError(f"condition.region fixes the flanks itself; drop condition.{key}")
    if not cond.get("fasta"):
        raise ConfigError("condition.region needs condition.fasta=PATH (the genome the region is read from)")
    strand = str(cond.get("strand") or "+")
    if strand not in ("+", "-"):
        raise ConfigError(f"condition.strand must be + or -, got {strand!r}")
    chrom, start, end = parse_region(cond["region"])
    fa = FastaFile(cond["fasta"], index_dir=index_dir)
    if chrom not in fa.lengths:
        raise DataError(f"{cond['fasta']}: no record named {chrom!r} (records: {fa.names[:5]})")
    if end > fa.lengths[chrom]:
        raise DataError(f"condition.region {cond['region']} runs past the end of {chrom} ({fa.lengths[chrom]:,} bp)")
    text = fa.fetch(chrom, start, end)
    if strand == "-":
        text = reverse_complement(text)
    try:
        ids = domain.encode(text, where=f"{cond['fasta']}:{cond['region']}")
    except ValueError as e:  # a domain may raise plain ValueError; report it as data
        raise DataError(str(e)) from None
    a, b = infill_span(len(ids), cond.get("infill"), start, strand)
    segments: dict[int, list[int]] = {}
    if a > 0:
        segments[0] = ids[:a]
    if b < len(ids):
        segments[b] = ids[b:]
    motif = cond.get("motif")
    if motif not in (None, ""):
        at = cond.get("motif_at")
        if at is None:
            raise ConfigError("condition: motif needs motif_at (its 0-based start position in the region)")
        try:
            segments[int(at)] = domain.encode(str(motif), where="condition.motif")
        except ValueError as e:
            raise ConfigError(str(e)) from None
    try:
        return Condition.from_segments(len(ids), segments)
    except ValueError as e:
        raise ConfigError(f"condition: {e}") from None
