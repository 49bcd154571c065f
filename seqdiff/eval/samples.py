"""Domain-free statistics of generated token sequences.

Sample entropy is reported beside every sample-quality number: a sampler can lower
generative perplexity simply by lowering diversity (MDLM's float32 Gumbel draws did),
and entropy exposes that.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LN2 = math.log(2.0)


def unigram_entropy_bits(tokens: Tensor, valid: Tensor | None = None) -> float:
    """Entropy (bits) of the pooled token histogram of the samples."""
    t = tokens[valid] if valid is not None else tokens.flatten()
    if t.numel() == 0:
        return 0.0
    counts = torch.bincount(t.long()).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum() / LN2)


def per_sequence_entropy_bits(tokens: Tensor) -> Tensor:
    """Entropy (bits) of each row's own token histogram (bd3lms/DUO's sample entropy)."""
    out = []
    for row in tokens:
        counts = torch.bincount(row.long()).double()
        p = counts[counts > 0] / counts.sum()
        out.append(float(-(p * p.log()).sum() / LN2))
    return torch.tensor(out, dtype=torch.float64)


def kmer_distribution(tokens: Tensor, k: int, vocab_size: int) -> Tensor:
    """Normalised counts of the ``vocab_size**k`` k-mers occurring inside rows."""
    if tokens.shape[1] < k:
        raise ValueError(f"kmer_distribution: rows of length {tokens.shape[1]} shorter than k={k}")
    codes = torch.zeros(tokens.shape[0], tokens.shape[1] - k + 1, dtype=torch.long)
    for j in range(k):
        codes = codes * vocab_size + tokens[:, j : tokens.shape[1] - k + 1 + j].long().cpu()
    counts = torch.bincount(codes.flatten(), minlength=vocab_size**k).double()
    return counts / counts.sum()


def js_divergence_bits(p: Tensor, q: Tensor) -> float:
    """Jensen-Shannon divergence (bits, in [0, 1]) between two distributions."""
    p, q = p.double() / p.sum(), q.double() / q.sum()
    m = 0.5 * (p + q)

    def kl(a: Tensor, b: Tensor) -> Tensor:
        nz = a > 0
        return (a[nz] * (a[nz] / b[nz]).log()).sum()

    return float(0.5 * (kl(p, m) + kl(q, m)) / LN2)
