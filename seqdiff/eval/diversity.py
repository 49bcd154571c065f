"""Diversity and distribution metrics of generated sequences (domain-free).

Token-level: distinct-n (Li et al. 2016: unique n-grams / all n-grams, pooled over the
samples) and self-BLEU (Zhu et al. 2018, Texygen: each sample scored as a hypothesis
against all the others as references; BLEU-4 with uniform weights, the closest-length
brevity penalty and NLTK's ``method1`` smoothing, epsilon 0.1 for empty precisions).
Feature-level, on embeddings from a judge model: the Vendi score (Friedman & Dieng
2023, ``vendi-score`` package, cosine kernel) and MAUVE (Pillutla et al. 2021,
``mauve-text`` package, on features we supply: its ``p_text=`` path would download
gpt2-large). Both packages are optional (``pip install 'seqdiff[eval]'``).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from seqdiff.errors import ConfigError

Seqs = Sequence[Sequence[int]] | Tensor


def _as_lists(seqs: Seqs) -> list[list[int]]:
    if isinstance(seqs, Tensor):
        return [[int(v) for v in row] for row in seqs.tolist()] if seqs.dim() == 2 else [[int(v) for v in seqs.tolist()]]
    return [[int(v) for v in s] for s in seqs]


def _ngrams(seq: list[int], n: int) -> Counter:
    return Counter(tuple(seq[i : i + n]) for i in range(len(seq) - n + 1))


def distinct_n(seqs: Seqs, n: int) -> float:
    """Unique n-grams over all n-grams of all samples (0 when there are none)."""
    total, unique = 0, set()
    for s in _as_lists(seqs):
        grams = [tuple(s[i : i + n]) for i in range(len(s) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def sentence_bleu(hypothesis: list[int], references: list[list[int]], max_n: int = 4,
                  ref_counts: list[list[Counter]] | None = None) -> float:
    """BLEU of one hypothesis (uniform weights up to ``max_n``, method1 smoothing)."""
    c = len(hypothesis)
    if c == 0 or not references:
        return 0.0
    log_p = 0.0
    for n in range(1, max_n + 1):
        hyp = _ngrams(hypothesis, n)
        total = sum(hyp.values())
        if total == 0:
            return 0.0  # shorter than n: BLEU is undefined; NLTK returns 0 as well
        refs = ref_counts[n - 1] if ref_counts is not None else [_ngrams(r, n) for r in references]
        clipped = sum(min(cnt, max(r.get(g, 0) for r in refs)) for g, cnt in hyp.items())
        log_p += math.log((clipped if clipped > 0 else 0.1) / total) / max_n
    r = min((abs(len(ref) - c), len(ref)) for ref in references)[1]
    bp = 1.0 if c > r else math.exp(1.0 - r / c)
    return bp * math.exp(log_p)


def self_bleu(seqs: Seqs, max_n: int = 4, max_samples: int | None = 64) -> float:
    """Mean BLEU of each sample against the others (higher = less diverse)."""
    lists = _as_lists(seqs)[: max_samples or None]
    if len(lists) < 2:
        raise ValueError("self_bleu: needs at least 2 samples")
    grams = [[_ngrams(s, n) for s in lists] for n in range(1, max_n + 1)]
    scores = []
    for i, hyp in enumerate(lists):
        refs = lists[:i] + lists[i + 1 :]
        ref_counts = [g[:i] + g[i + 1 :] for g in grams]
        scores.append(sentence_bleu(hyp, refs, max_n, ref_counts))
    return float(np.mean(scores))


def _features(x) -> np.ndarray:
    a = x.detach().double().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2:
        raise ValueError(f"features must be [n >= 2, d], got shape {a.shape}")
    return a


def vendi_score(features, q: float = 1.0) -> float:
    """Vendi score of the samples' feature vectors (cosine-similarity kernel); between 1
    (all identical) and ``n`` (orthogonal)."""
    try:
        from vendi_score import vendi
    except ImportError:
        raise ConfigError("the Vendi score needs the vendi-score package: pip install 'seqdiff[eval]'") from None
    X = _features(features)
    with warnings.catch_warnings():  # vendi-score 0.0.3 touches scipy's deprecated sparse namespace
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(vendi.score_X(X, q=q, normalize=True))


def mauve_score(p_features, q_features, *, seed: int = 25, num_buckets: int | str = "auto") -> float:
    """MAUVE between real (``p``) and generated (``q``) feature sets; 1 = indistinguishable.

    With fewer than a few hundred samples per side MAUVE is noisy and biased (its
    authors use 5000); report ``n`` with it."""
    try:
        import mauve
    except ImportError:
        raise ConfigError("MAUVE needs the mauve-text package: pip install 'seqdiff[eval]'") from None
    p, q = _features(p_features), _features(q_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = mauve.compute_mauve(p_features=p, q_features=q, device_id=-1, verbose=False, seed=seed,
                                  num_buckets=num_buckets)
    return float(out.mauve)


def distinct_summary(seqs: Seqs, ns: Sequence[int] = (1, 2, 3, 4)) -> dict[str, float]:
    lists = _as_lists(seqs)
    return {f"distinct_{n}": distinct_n(lists, n) for n in ns}


def strip_ids(tokens: Tensor, drop: Sequence[int]) -> list[list[int]]:
    """Rows of ``tokens`` without the given ids (e.g. padding), as lists."""
    drop_t = torch.tensor(list(drop), dtype=torch.long)
    return [[int(v) for v in row[~torch.isin(row, drop_t)].tolist()] for row in tokens.cpu()]
