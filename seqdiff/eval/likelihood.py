"""Likelihood evaluation with a fixed seed, stratified draws and a confidence interval.

The same function scores the masked process (a Monte-Carlo NELBO, an upper bound on
the NLL of the model the sampler draws from) and the autoregressive one (exact NLL), so
the MDLM/AR ratio comes from one code path. For the masked process the default
estimator is the exact bound (``count`` in continuous time, the T-step bound when
``num_steps > 0``); each result says whether its estimator's mean is a bound (``bound``)
and what it is (``estimand``): MDLM's ``time`` estimator is eps-truncated, slightly below
the bound (see :mod:`seqdiff.processes.masked`).

Each sequence gets ``draws`` estimates. Draw ``k`` of a batch of ``B`` rows stratifies
over the batch (strata ``k*B .. k*B+B-1`` of ``draws*B``), with the rows assigned to its
strata by a fresh seeded permutation, so every row gets one uniformly placed stratum of
each of the ``draws`` blocks of ``[0, 1]``: each sequence's estimate is unbiased on its
own (``tests/eval/test_likelihood_ci.py``; with a fixed assignment row ``b`` always took
stratum ``k*B + b``: with one draw of the count estimator, row 0 had every token masked).

The interval is a 95% normal interval of the ratio estimator
:math:`\\hat R=\\sum_b y_b/\\sum_b n_b` (nats over tokens) by the delta method, treating
sequences as independent. It is an interval for the per-token NELBO of the *source* the
held-out sequences are drawn from: it contains both data and Monte-Carlo noise. Measured
on the enumerable toy (64 sequences drawn afresh per seed, 4 draws, count estimator,
perturbed exact denoiser), it covered the exact value in 95.0% of 1,000 seeds
(``tests/eval/test_likelihood_ci.py`` asserts 90-99% on 400). As an
interval for the NELBO of the fixed held-out set itself it is conservative: its
half-width there was 0.061 nats/token against a Monte-Carlo spread (1.96 sd across
seeds) of 0.025.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from torch import Tensor

from seqdiff.processes.base import Process
from seqdiff.utils.seeding import generator as make_generator

LN2 = math.log(2.0)
Z95 = 1.959963984540054


@dataclass
class LikelihoodResult:
    """Per-token NLL bound in nats and bits, perplexity, 95% CI half-widths."""

    nats_per_token: float
    nats_ci95: float
    bits_per_token: float
    bits_ci95: float
    perplexity: float
    perplexity_ci95: tuple[float, float]
    num_sequences: int
    num_tokens: int
    draws: int
    estimator: str
    exact: bool
    #: the estimator's mean is an upper bound on the model's NLL (an exact NLL counts)
    bound: bool = True
    #: what the estimator's mean is, in words
    estimand: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def kind(self) -> str:
        return "NLL" if self.exact else ("NELBO" if self.bound else "truncated NELBO (not a bound)")

    def summary(self, unit: str = "token") -> str:
        return (
            f"{self.kind} {self.bits_per_token:.4f} ± {self.bits_ci95:.4f} bits/{unit} "
            f"(ppl {self.perplexity:.4f}, 95% CI; {self.num_sequences} seqs × {self.draws} draws, {self.estimator}"
            + (f": {self.estimand}" if self.estimand else "") + ")"
        )


def ratio_ci(values: Tensor, counts: Tensor) -> tuple[float, float]:
    """Token-weighted mean ``sum(values)/sum(counts)`` and its 95% CI half-width."""
    y, n = values.double(), counts.double()
    N = y.numel()
    R = float(y.sum() / n.sum())
    if N < 2:
        return R, math.inf
    resid = y - R * n
    se = math.sqrt(float((resid**2).sum()) / (N * (N - 1))) / float(n.mean())
    return R, Z95 * se


@torch.no_grad()
def evaluate_likelihood(
    model: torch.nn.Module,
    process: Process,
    batches: Iterable[tuple[Tensor, ...]],
    *,
    draws: int = 1,
    seed: int = 0,
    estimator: str | None = None,
    device: torch.device | str | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[LikelihoodResult, Tensor, Tensor]:
    """Score held-out batches; returns ``(result, per-sequence nats, per-sequence tokens)``.

    ``batches``: :class:`seqdiff.data.Batch` es, or ``(x0, valid[, fixed])`` tuples; a
    batch's ``label`` is given to the model (the conditional NELBO, :math:`-\\log p(x \\mid y)`).
    ``estimator``: checked by :meth:`Process.eval_estimator`; for the masked process,
    ``None`` is its exact bound (``count`` in continuous time, the T-step bound for
    ``num_steps > 0``); ``"count"`` with ``num_steps > 0`` is refused (a ValueError),
    since it would report the continuous bound for a T-step model. A process whose
    ``nelbo`` is an exact likelihood is scored once (``draws`` does not apply).
    """
    if draws < 1:
        raise ValueError(f"evaluate_likelihood: draws must be >= 1, got {draws}")
    exact = process.exact_likelihood
    est = process.eval_estimator(estimator)
    kw = {"estimator": est}
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    totals, counts = [], []
    try:
        for i, batch in enumerate(batches):  # (x0, valid) or (x0, valid, fixed)
            x0, valid = batch[0].to(device), batch[1].to(device)
            bkw = dict(kw)
            if len(batch) > 2 and batch[2] is not None:
                bkw["fixed"] = batch[2].to(device)
            label = getattr(batch, "label", None)
            if label is not None:  # labelled data: the conditional NELBO
                bkw["label"] = label.to(device).long().reshape(batch[0].shape[0], -1)
            B = x0.shape[0]
            acc = torch.zeros(B, dtype=torch.float64, device=device)
            for k in range(1 if exact else draws):
                gen = make_generator(seed, i, k)
                # Row perm[p] takes stratum k*B + p: a fresh random stratum of block k for
                # every row and draw, so each row's average is unbiased on its own.
                perm = (torch.arange(B) if exact else torch.randperm(B, generator=gen)).to(device)
                pkw = {key: v[perm] if isinstance(v, Tensor) else v for key, v in bkw.items()}
                with _autocast(device, autocast_dtype):
                    out = process.nelbo(model, x0[perm], valid[perm], generator=gen, offset=k * B, total=draws * B, **pkw)
                acc[perm] += out.nelbo
                num_tokens = torch.empty_like(out.num_tokens)
                num_tokens[perm] = out.num_tokens
            totals.append((acc / (1 if exact else draws)).cpu())
            counts.append(num_tokens.cpu())
    finally:
        model.train(was_training)
    if not totals:
        raise ValueError("evaluate_likelihood: no evaluation batches")
    y, n = torch.cat(totals), torch.cat(counts)
    R, ci = ratio_ci(y, n)
    result = LikelihoodResult(
        nats_per_token=R,
        nats_ci95=ci,
        bits_per_token=R / LN2,
        bits_ci95=ci / LN2,
        perplexity=math.exp(R),
        perplexity_ci95=(math.exp(R - ci), math.exp(R + ci)) if math.isfinite(ci) else (0.0, math.inf),
        num_sequences=int(y.numel()),
        num_tokens=int(n.sum()),
        draws=1 if exact else draws,
        estimator=est,
        exact=exact,
        bound=process.estimate_is_bound(est),
        estimand=process.estimand(est),
    )
    return result, y, n


def _autocast(device, dtype):
    device = torch.device(device)
    if dtype is None or device.type != "cuda":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast("cuda", dtype=dtype)
