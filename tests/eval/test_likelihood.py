"""AR NLL and MDLM NELBO of exactly-known toy models against the truth, through the same
``evaluate_likelihood`` / ``ratio_ci`` code the CLI and the benchmark use."""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.backbones.base import Backbone, select_outputs
from seqdiff.eval.likelihood import evaluate_likelihood, ratio_ci
from seqdiff.processes import AutoregressiveProcess, MaskedDiffusion
from seqdiff.schedules import LogLinearSchedule
from support.toys import ExactDenoiser, Toy

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU


class ExactAR(Backbone):
    """Causal backbone whose logits are the toy's true next-token conditionals.
    Input is the shifted sequence ``[START, x_0, ..., x_{L-2}]`` (START = [MASK])."""

    causal = True

    def __init__(self, toy: Toy) -> None:
        super().__init__()
        self.toy, self.vocab_size = toy, toy.vocab.size
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def features(self, x_t, t, valid):  # pragma: no cover
        raise NotImplementedError

    def head(self, h):  # pragma: no cover
        raise NotImplementedError

    def forward(self, x_in, t=None, valid=None, output_mask=None):
        B, L = x_in.shape
        toy = self.toy
        logits = torch.full((B, L, self.vocab_size), -30.0, dtype=torch.float64)
        for b in range(B):
            for i in range(L):
                prefix = x_in[b, 1 : i + 1]
                ok = (toy.seqs[:, :i] == prefix).all(1)
                w = torch.zeros(toy.V, dtype=torch.float64).index_add(0, toy.seqs[:, i], toy.p * ok)
                logits[b, i, : toy.V] = (w / w.sum()).clamp_min(1e-300).log()
        return select_outputs(logits, output_mask)


def data_sample(toy: Toy, n: int, seed: int = 0) -> torch.Tensor:
    idx = torch.multinomial(toy.p, n, replacement=True, generator=torch.Generator().manual_seed(seed))
    return toy.seqs[idx]


def batches(x: torch.Tensor, size: int = 256):
    return [(x[i : i + size], torch.ones_like(x[i : i + size], dtype=torch.bool)) for i in range(0, len(x), size)]


def test_ar_nll_is_exact_per_sequence():
    toy = Toy(V=3, L=4, seed=7)
    res, y, n = evaluate_likelihood(ExactAR(toy), AutoregressiveProcess(toy.vocab), batches(toy.seqs, 27))
    assert res.exact and res.draws == 1
    assert torch.allclose(y, toy.neg_log_p(toy.seqs), rtol=1e-6, atol=1e-6)
    assert res.nats_per_token == pytest.approx(float(toy.neg_log_p(toy.seqs).sum()) / (len(toy.seqs) * toy.L), rel=1e-6)  # the process computes in float32


def test_mdlm_nelbo_matches_the_truth_and_the_ar_ratio_is_one():
    toy = Toy(V=3, L=4, seed=7)
    x = data_sample(toy, 1500)
    truth = toy.neg_log_p(x)  # nats per sequence
    ar, y_ar, n = evaluate_likelihood(ExactAR(toy), AutoregressiveProcess(toy.vocab), batches(x))
    assert torch.allclose(y_ar, truth, rtol=1e-6, atol=1e-6)
    for estimator in ("count", "time"):
        proc = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), estimator=estimator, t_min=0.0)
        res, y, _ = evaluate_likelihood(ExactDenoiser(toy), proc, batches(x), draws=4, seed=1)
        per_token_truth = float(truth.sum()) / (len(x) * toy.L)
        # the reported interval (data + Monte-Carlo noise) covers the truth ...
        assert abs(res.nats_per_token - per_token_truth) < res.nats_ci95, (estimator, res.nats_per_token, per_token_truth)
        # ... and the Monte-Carlo error alone (same sequences) is within 4 standard errors
        d = y - truth
        assert abs(float(d.mean())) < 4 * float(d.std()) / math.sqrt(len(d)) + 1e-12, estimator
        # the MDLM / AR ratio, paired over sequences, is 1 within its interval
        r, ci = ratio_ci(y, y_ar)
        assert abs(r - 1.0) < ci and ci < 0.05, (estimator, r, ci)


def test_a_worse_denoiser_gets_a_larger_bound_and_ratio():
    toy = Toy(V=3, L=4, seed=7)
    x = data_sample(toy, 600, seed=2)
    _, y_ar, _ = evaluate_likelihood(ExactAR(toy), AutoregressiveProcess(toy.vocab), batches(x))
    proc = MaskedDiffusion(toy.vocab, LogLinearSchedule(eps=0.0), estimator="count", t_min=0.0)
    _, y, _ = evaluate_likelihood(ExactDenoiser(toy, noise=0.7), proc, batches(x), draws=4, seed=3)
    r, ci = ratio_ci(y, y_ar)
    assert r - ci > 1.0, (r, ci)


def test_mdlm_default_truncation_is_a_small_bias():
    """MDLM evaluates t in [1e-3, 1] with eps=1e-3: a bias of order 1e-3 (not a CI-sized error)."""
    toy = Toy(V=3, L=4, seed=7)
    x = data_sample(toy, 1500)
    truth = float(toy.neg_log_p(x).sum()) / (len(x) * toy.L)
    res, _, _ = evaluate_likelihood(ExactDenoiser(toy), MaskedDiffusion(toy.vocab), batches(x), draws=4, seed=1)
    assert abs(res.nats_per_token - truth) < res.nats_ci95 + 0.01
