"""Label dropout in the trainer makes the unconditional pass a model of the mixture (tiny run on
the synthetic two-species source, whose exact laws are known)."""

from __future__ import annotations

import math

import torch

from seqdiff.utils.seeding import generator
from support.labelled import labelled_run


def _gap_bits(run) -> tuple[float, float]:
    """(model gap, exact gap), bits/base on the valid rows: the no-label pass's NELBO minus the
    labelled pass's (8 draws of the count estimator), and the exact
    E[log p_y(x) - log p_mix(x)], what the gap is for an exact model of both laws."""
    x, y = run.data.eval_rows("valid")
    per = x.shape[1] * math.log(2)

    def nelbo(label):
        with torch.no_grad():
            return sum(float(run.process.nelbo(run.model, x, label=label, generator=generator(0, k),
                                               estimator="count").nelbo.mean()) for k in range(8)) / 8 / per

    model = nelbo(run.labels.null(len(x))) - nelbo(y.unsqueeze(1))
    exact = float((run.data.log_likelihoods(x)[torch.arange(len(x)), y] - run.data.mixture_log_prob(x)).mean()) / per
    return model, exact


def test_label_dropout_trains_the_unconditional_pass():
    model, exact = _gap_bits(labelled_run(steps=200, dropout=0.3, batch_size=32, lr=3e-3))
    assert 0.02 < exact < 0.2  # the two species are distinguishable, and not trivially
    assert abs(model - exact) < 0.04  # measured 0.051 vs 0.0625
    # without dropout the no-label id is never trained: its pass is no model of the mixture
    untrained, _ = _gap_bits(labelled_run(steps=200, dropout=0.0, batch_size=32, lr=3e-3))
    assert untrained > 2 * exact  # measured 0.16


def test_label_dropout_is_reproducible():
    a = labelled_run(steps=5, dropout=0.5)
    b = labelled_run(steps=5, dropout=0.5)
    for (n, p), (_, q) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(p, q), n
