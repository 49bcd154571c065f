"""Likelihood (NELBO / NLL with confidence intervals) and sample statistics."""

from seqdiff.eval.likelihood import LikelihoodResult, evaluate_likelihood, ratio_ci
from seqdiff.eval.samples import js_divergence_bits, kmer_distribution, per_sequence_entropy_bits, unigram_entropy_bits

__all__ = [
    "LikelihoodResult",
    "evaluate_likelihood",
    "js_divergence_bits",
    "kmer_distribution",
    "per_sequence_entropy_bits",
    "ratio_ci",
    "unigram_entropy_bits",
]
