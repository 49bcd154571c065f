r"""Fréchet distance between embeddings of generated and real sequences, beside its floor.

The Fréchet (2-Wasserstein) distance between the Gaussians fitted to two feature sets
(FID, Heusel et al. 2017; FBD/SFID/FReD for DNA):

.. math:: d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
          - 2 \operatorname{tr}\bigl(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\bigr)^{1/2}.

:math:`(\Sigma_1\Sigma_2)^{1/2}` has the trace of the symmetric PSD
:math:`(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}`, so everything is two symmetric
eigen-decompositions in float64 (no ``scipy.linalg.sqrtm``, whose complex round-off on
near-singular covariances FID implementations patch by hand); negative eigenvalues of
round-off are clipped to zero.

**The floor.** Means and covariances estimated from ``n`` samples carry an ``O(D/n)``
bias, so two sets of *real* windows are never at zero; with fewer samples than feature
dimensions the covariances are rank-deficient and the bias dominates. A distance means
something only next to the same distance between two disjoint sets of held-out windows
of the same size (:func:`frechet_report` always returns both, on equal set sizes).

Features come from a judge (anything with ``tokenize`` / ``features``, as
:class:`seqdiff.eval.judge.SeqdiffJudge`: an AR run or an imported HyenaDNA) or from the
evaluated model itself (:class:`ModelFeatures`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

Array = np.ndarray


def gaussian_stats(features: Tensor | Array) -> tuple[Array, Array]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` (float64) of features ``[N, D]``."""
    f = features.detach().cpu().double().numpy() if isinstance(features, Tensor) else np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"gaussian_stats: need features [N >= 2, D], got shape {tuple(f.shape)}")
    return f.mean(0), np.cov(f, rowvar=False, ddof=1).reshape(f.shape[1], f.shape[1])


def sqrtm_psd(a: Array) -> Array:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh(0.5 * (a + a.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: Array, sigma1: Array, mu2: Array, sigma2: Array) -> float:
    """Squared Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (module docstring)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: shapes {mu1.shape}, {s1.shape} vs {mu2.shape}, {s2.shape}")
    r = sqrtm_psd(s1)
    m = r @ s2 @ r
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (m + m.T)), 0.0, None)).sum()
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * cross)
    return max(d, 0.0)


def frechet_from_features(a: Tensor | Array, b: Tensor | Array) -> float:
    """Squared Fréchet distance between the Gaussians fitted to two feature sets."""
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


class ModelFeatures:
    """The evaluated run's own backbone as the feature extractor (no separate judge).

    Each window is read clean (nothing masked; ``t = 0`` for a time-conditioned model;
    an AR model reads its shifted input) and its final hidden states are averaged over
    valid positions. A masked model never saw fully clean input in training, so these are
    features of an input at the edge of its training distribution: use the same extractor
    for samples and for real windows (the floor then says what they are worth).
    """

    def __init__(self, experiment, *, batch_size: int = 32) -> None:
        self.exp = experiment
        self.domain = experiment.domain
        self.batch_size = int(batch_size)
        self.name = f"model features {getattr(experiment.checkpoint, 'path', '')}".strip()

    def tokenize(self, samples: Tensor, sample_domain: Any) -> tuple[list[list[int] | None], bool]:
        pad = sample_domain.vocab.pad_id
        return [[i for i in row if i != pad] for row in samples.tolist()], False

    @torch.no_grad()
    def features(self, token_lists: list[list[int]]) -> Tensor:
        model, proc = self.exp.model, self.exp.process
        device = next(model.parameters()).device
        pad = self.domain.vocab.pad_id
        out = []
        was = model.training
        model.eval()
        try:
            for i in range(0, len(token_lists), self.batch_size):
                chunk = token_lists[i : i + self.batch_size]
                width = max(len(c) for c in chunk)
                x = torch.full((len(chunk), width), pad, dtype=torch.long)
                valid = torch.zeros((len(chunk), width), dtype=torch.bool)
                for r, c in enumerate(chunk):
                    x[r, : len(c)] = torch.tensor(c, dtype=torch.long)
                    valid[r, : len(c)] = True
                x, valid = x.to(device), valid.to(device)
                if getattr(proc, "kind", "") == "autoregressive":
                    x, t = proc.shift_right(x), None
                else:
                    t = torch.zeros(len(chunk), device=device) if getattr(model, "time_conditioning", False) else None
                h = model.features(x, t, valid).float()
                out.append(((h * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)).cpu())
        finally:
            model.train(was)
        return torch.cat(out) if out else torch.zeros(0, 1)


def frechet_report(judge: Any, sample_tokens: Tensor, real_tokens_a: Tensor, real_tokens_b: Tensor, domain: Any,
                   *, sample_features: Tensor | None = None) -> dict:
    """Fréchet distance of samples to real windows ``b``, and its real-vs-real floor ``a`` vs ``b``.

    ``a`` and ``b`` must be disjoint sets of held-out windows. All three sets are cut to
    the same size ``n`` (the smallest of the three after dropping rows the judge cannot
    encode), since the estimate's bias depends on ``n``. Returns
    ``frechet_distance``, ``frechet_floor`` (both squared distances in feature units),
    their ratio, ``frechet_n`` and ``frechet_feature_dim``. ``sample_features``: the samples'
    features when the caller already has them (the judge is not run on the samples again).
    """

    def feats(tokens: Tensor) -> Tensor:
        lists, _ = judge.tokenize(tokens, domain)
        return judge.features([t for t in lists if t])

    fs = feats(sample_tokens) if sample_features is None else sample_features
    fa, fb = feats(real_tokens_a), feats(real_tokens_b)
    n = min(len(fs), len(fa), len(fb))
    if n < 2:
        raise ValueError(f"frechet_report: need at least 2 encodable rows in each set, got {len(fs)}, {len(fa)}, {len(fb)}")
    fs, fa, fb = fs[:n], fa[:n], fb[:n]
    d, floor = frechet_from_features(fs, fb), frechet_from_features(fa, fb)
    return {
        "frechet_distance": d,
        "frechet_floor": floor,
        "frechet_over_floor": d / floor if floor > 0 else float("inf"),
        "frechet_n": n,
        "frechet_feature_dim": int(fs.shape[1]),
    }
