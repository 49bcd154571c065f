r"""Label-conditional likelihoods and the model's own Bayes classifier of a sequence's label.

For a labelled run, field :math:`f` with names :math:`1..K_f`, every sequence gets one NELBO
per candidate label, :math:`\mathcal{L}(x \mid y)`, an upper bound on
:math:`-\log p_\theta(x \mid y)` (the other fields get the learned "no label" id). The
*Bayes classifier from the NELBOs* plugs the bounds in for the log-likelihoods:

.. math::
    \hat p(y \mid x) = \frac{\pi(y)\, e^{-\mathcal{L}(x \mid y)}}{\sum_{y'} \pi(y')\, e^{-\mathcal{L}(x \mid y')}}.

It is a proxy, not the model's exact posterior: each bound exceeds the NLL by its own gap
(and a Monte-Carlo NELBO is noisy), so the ratios of the bounds are not the ratios of the
likelihoods. The candidates are scored with the same seed, so every label sees the same
masks and times (common random numbers: the noise shared by all candidates cancels in the
softmax).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import Tensor

from seqdiff.data import Batch
from seqdiff.eval.likelihood import evaluate_likelihood
from seqdiff.labels import LabelSpec

PROXY_NOTE = ("Bayes classifier from the model's conditional NELBOs, p(y|x) ∝ p(y) exp(-NELBO(x|y)): "
              "an upper-bound-based proxy, not the model's exact posterior")

__all__ = ["PROXY_NOTE", "bayes_posterior", "candidates", "label_nelbos", "with_label"]


def candidates(spec: LabelSpec, field: str) -> Tensor:
    """The label ids ``[K_f, F]`` of every name of ``field``, the other fields "no label"."""
    f = spec.field_names.index(field)
    ids = spec.null(spec.sizes[f]).clone()
    ids[:, f] = torch.arange(spec.sizes[f])
    return ids


def with_label(batches: Iterable[Batch], label: Tensor) -> list[Batch]:
    """Each batch with every row's label ``label [F]``."""
    return [Batch(b.x0, b.valid, b.fixed, label.reshape(1, -1).expand(b.x0.shape[0], -1)) for b in batches]


def label_nelbos(model, process, batches: Sequence[Batch], cands: Tensor, *, draws: int = 1, seed: int = 0,
                 estimator: str | None = None, device=None) -> tuple[Tensor, Tensor]:
    """``(nelbo [N, K], tokens [N])``: each row's NELBO (nats) under each candidate label ``cands [K, F]``,
    every candidate with the same seed (:func:`evaluate_likelihood`, the same masks and times)."""
    cols, counts = [], None
    for ids in cands:
        _, per_seq, counts = evaluate_likelihood(model, process, with_label(batches, ids), draws=draws, seed=seed,
                                                 estimator=estimator, device=device)
        cols.append(per_seq.double())
    return torch.stack(cols, dim=1), counts


def bayes_posterior(nelbo: Tensor, prior: Tensor | None = None) -> Tensor:
    """:math:`\\mathrm{softmax}_y(\\log\\pi(y) - \\mathcal{L}(x\\mid y))` per row, ``[N, K]`` float64
    (``prior``: ``[K]`` probabilities; None: uniform)."""
    nelbo = nelbo.double()
    log_prior = torch.zeros(nelbo.shape[1], dtype=torch.float64) if prior is None else torch.log(prior.double())
    return torch.softmax(log_prior.to(nelbo.device) - nelbo, dim=1)
