"""DNA sample statistics against real windows: k-mer spectra, GC, CpG o/e, homopolymers.

Every statistic is computed on A/C/G/T only (N and specials break k-mers and runs).
Divergences come with a *floor*: the same divergence between two disjoint sets of real
windows of the samples' size. Finite samples of a 4^6-bin spectrum are never at zero
divergence, so a number is only meaningful next to its floor.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from Bio.SeqUtils import gc_fraction
from torch import Tensor

from seqdiff.eval.samples import js_divergence_bits, kmer_distribution

BASES = "ACGT"
OTHER = 4  # code of anything that is not A/C/G/T
KMAX = 6
RUN_CAP = 12  # homopolymer-run histogram bins 1..RUN_CAP-1 and ">= RUN_CAP"


def base_codes(tokens: Tensor, domain: Any) -> Tensor:
    """Map domain ids to 0..3 for A, C, G, T and 4 for everything else."""
    lut = torch.full((domain.vocab.size,), OTHER, dtype=torch.long)
    for i, b in enumerate(BASES):
        if b in domain.ids:
            lut[domain.ids[b]] = i
    return lut[tokens.long().cpu()]


def kmer_spectrum(codes: Tensor, k: int) -> Tensor:
    """Distribution over the 4^k k-mers of A/C/G/T (k-mers touching N/specials dropped)."""
    full = kmer_distribution(codes, k, OTHER + 1)  # over 5^k codes
    keep = torch.ones(5**k, dtype=torch.bool)
    idx = torch.arange(5**k)
    for _ in range(k):
        keep &= idx % 5 != OTHER
        idx = idx // 5
    p = full[keep]
    return p / p.sum() if p.sum() > 0 else p


def gc_content(codes: Tensor) -> float:
    """Mean per-window GC fraction (Biopython's ``gc_fraction``, N removed)."""
    vals = [gc_fraction(_text(row), ambiguous="remove") for row in codes]
    return float(sum(vals) / len(vals)) if vals else math.nan


def _text(row: Tensor) -> str:
    return "".join(map("ACGTN".__getitem__, row.tolist()))


def cpg_observed_expected(codes: Tensor) -> float:
    """Pooled CpG o/e: ``#CG * n / (#C * #G)`` over all windows (Gardiner-Garden & Frommer)."""
    c = int((codes == 1).sum())
    g = int((codes == 2).sum())
    cg = int(((codes[:, :-1] == 1) & (codes[:, 1:] == 2)).sum())
    n = int((codes < OTHER).sum())
    return cg * n / (c * g) if c and g else math.nan


def homopolymer_runs(codes: Tensor) -> Tensor:
    """Lengths of maximal runs of one base within rows (N and row ends break runs)."""
    sep = torch.full((codes.shape[0], 1), OTHER + 1, dtype=codes.dtype)
    flat = torch.cat([codes, sep], dim=1).flatten()
    values, counts = torch.unique_consecutive(flat, return_counts=True)
    return counts[values < OTHER]


def run_histogram(runs: Tensor) -> Tensor:
    h = torch.bincount(runs.clamp(max=RUN_CAP), minlength=RUN_CAP + 1)[1:].double()
    return h / h.sum() if h.sum() > 0 else h


def sequence_stats(codes: Tensor) -> dict[str, float]:
    runs = homopolymer_runs(codes)
    per_row_max = [int(homopolymer_runs(r[None]).max()) if (r < OTHER).any() else 0 for r in codes]
    acgt = int((codes < OTHER).sum())
    return {
        "gc_fraction": gc_content(codes),
        "cpg_observed_expected": cpg_observed_expected(codes),
        "n_or_other_fraction": 1.0 - acgt / codes.numel() if codes.numel() else math.nan,
        "homopolymer_mean_run": float(runs.double().mean()) if runs.numel() else math.nan,
        "homopolymer_mean_longest_run": float(sum(per_row_max) / len(per_row_max)) if per_row_max else math.nan,
        "homopolymer_bases_in_runs_ge5": float(runs[runs >= 5].sum()) / acgt if acgt else math.nan,
    }


def divergences(a: Tensor, b: Tensor) -> dict[str, Any]:
    """JS divergences (bits) between two sets of base codes: k-mers k=1..6 and run lengths."""
    out: dict[str, Any] = {}
    L = min(a.shape[1], b.shape[1])
    for k in range(1, min(KMAX, L) + 1):
        pa, pb = kmer_spectrum(a, k), kmer_spectrum(b, k)
        out[f"k{k}"] = js_divergence_bits(pa, pb) if pa.sum() > 0 and pb.sum() > 0 else math.nan
    ra, rb = run_histogram(homopolymer_runs(a)), run_histogram(homopolymer_runs(b))
    out["homopolymer_runs"] = js_divergence_bits(ra, rb) if ra.sum() > 0 and rb.sum() > 0 else math.nan
    return out


def compare(samples: Tensor, real: Tensor, domain: Any) -> dict[str, Any]:
    """Statistics of ``samples`` and of real windows, divergences and their noise floor.

    The real windows are split (interleaved) into two disjoint halves A and B of at most
    the samples' size; samples are compared with B, and A with B gives the floor.
    """
    s = base_codes(samples, domain)
    r = base_codes(real, domain)
    n = s.shape[0]
    ref_a, ref_b = r[0::2][:n], r[1::2][:n]
    if ref_b.shape[0] == 0:
        ref_a = ref_b = r
    div = divergences(s, ref_b)
    floor = divergences(ref_a, ref_b)
    return {
        "kmer_js_bits": {k: v for k, v in div.items() if k.startswith("k")},
        "kmer_js_floor_bits": {k: v for k, v in floor.items() if k.startswith("k")},
        "homopolymer_run_js_bits": div["homopolymer_runs"],
        "homopolymer_run_js_floor_bits": floor["homopolymer_runs"],
        "sample_stats": sequence_stats(s),
        "real_stats": sequence_stats(r),
        "reference_windows": int(r.shape[0]),
        "floor_windows": int(ref_a.shape[0]),
    }
