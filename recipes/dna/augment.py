"""Reverse-complement augmentation over token ids.

The complement map comes from the vocabulary (``VocabSpec.complement``, built by the
domain from ``{A: T, C: G, G: C, T: A, N: N}``; specials map to themselves), so the
same permutation drives data augmentation here and RC-equivariant backbones in the
core. HyenaDNA/Caduceus reverse-complement the *string* before tokenising with p=0.5;
doing it on ids is the same map (checked against ``Bio.Seq.reverse_complement`` in the
tests) and needs no second tokenisation.
"""

from __future__ import annotations

import numpy as np
import torch
from Bio.Seq import reverse_complement as _bio_reverse_complement
from torch import Tensor

from seqdiff.vocab import reverse_complement as _reverse_complement


def reverse_complement_ids(x: Tensor | np.ndarray, complement: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """``complement[x]`` read backwards along the last axis (torch or numpy): the core's
    :func:`seqdiff.vocab.reverse_complement` of whole rows."""
    if isinstance(x, np.ndarray):
        return _reverse_complement(torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)), torch.as_tensor(complement)).numpy()
    return _reverse_complement(x, complement)


def rc_augment(x: Tensor, valid: Tensor, flip: Tensor, complement: Tensor) -> tuple[Tensor, Tensor]:
    """Reverse-complement the rows of ``x [B, L]`` where ``flip [B]`` is True (``valid``
    is reversed with them)."""
    if not bool(flip.any()):
        return x, valid
    x, valid = x.clone(), valid.clone()
    x[flip] = reverse_complement_ids(x[flip], complement)
    valid[flip] = valid[flip].flip(-1)
    return x, valid


def reverse_complement(text: str) -> str:
    """String reverse complement with IUPAC codes and case preserved (Biopython)."""
    return _bio_reverse_complement(text)
