"""``evaluate_likelihood``: each sequence's estimate is unbiased on its own, and the 95%
interval covers.

On the enumerable toy with a perturbed exact denoiser the per-sequence NELBO is known in
closed form (``closed_form.py``). Draw ``k`` of a batch stratifies over its rows; the
rows' strata are permuted per draw, so no row is tied to one part of ``[0, 1]``. (Before,
row ``b`` always took stratum ``k*B + b``: with one draw, row 0 always had every token
masked.) The interval is for the NELBO per token of the source the held-out sequences are
drawn from, so its coverage is measured by drawing the sequences afresh for every seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: tests/ holds support/

import math

import torch

import support.closed_form as cf
from seqdiff.eval.likelihood import evaluate_likelihood
from seqdiff.processes import MaskedDiffusion
from support.table_denoiser import TableDenoiser
from support.toys import Toy


def _setup():
    toy = Toy(3, 3, seed=4)
    model = TableDenoiser(toy, noise=0.3)
    bound = cf.continuous_bound(cf.ce_table(toy, model.perturb), toy.L)
    return toy, model, MaskedDiffusion(toy.vocab), bound  # default eval: the count estimator


def _batches(x: torch.Tensor, size: int):
    return [(x[i : i + size], torch.ones_like(x[i : i + size], dtype=torch.bool)) for i in range(0, len(x), size)]


def test_each_sequence_estimate_is_unbiased_on_its_own():
    toy, model, proc, bound = _setup()
    seeds = 400
    for draws in (1, 4):
        y = torch.stack([evaluate_likelihood(model, proc, _batches(toy.seqs, 27), draws=draws, seed=s)[1] for s in range(seeds)])
        se = y.std(0) / math.sqrt(seeds)
        assert (se > 0).all()  # no row has a fixed estimate
        z = (y.mean(0) - bound) / se
        assert z.abs().max() < 4.5, (draws, z)


def test_ci_covers_the_source_nelbo():
    toy, model, proc, bound = _setup()
    target = float(toy.p @ bound) / toy.L  # nats per token of the source
    seeds, hits, widths = 400, 0, []
    for s in range(seeds):
        idx = torch.multinomial(toy.p, 64, replacement=True, generator=torch.Generator().manual_seed(10_000 + s))
        res, _, _ = evaluate_likelihood(model, proc, _batches(toy.seqs[idx], 16), draws=4, seed=s)
        hits += abs(res.nats_per_token - target) <= res.nats_ci95
        widths.append(res.nats_ci95)
    coverage = hits / seeds
    assert 0.90 <= coverage < 0.99, coverage
    assert all(math.isfinite(w) and w > 0 for w in widths)


if __name__ == "__main__":  # the coverage quoted in seqdiff/eval/likelihood.py: python tests/eval/test_likelihood_ci.py 1000
    import sys

    toy, model, proc, bound = _setup()
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    target = float(toy.p @ bound) / toy.L
    hits = 0
    for s in range(seeds):
        idx = torch.multinomial(toy.p, 64, replacement=True, generator=torch.Generator().manual_seed(10_000 + s))
        res, _, _ = evaluate_likelihood(model, proc, _batches(toy.seqs[idx], 16), draws=4, seed=s)
        hits += abs(res.nats_per_token - target) <= res.nats_ci95
    idx = torch.multinomial(toy.p, 64, replacement=True, generator=torch.Generator().manual_seed(7))
    fixed = [evaluate_likelihood(model, proc, _batches(toy.seqs[idx], 16), draws=4, seed=s)[0] for s in range(seeds)]
    R = torch.tensor([r.nats_per_token for r in fixed])
    print(f"coverage of the source NELBO over {seeds} seeds: {hits / seeds:.3f}; fixed set: mean half-width "
          f"{sum(r.nats_ci95 for r in fixed) / seeds:.4f} vs 1.96 sd across seeds {1.96 * float(R.std()):.4f}, "
          f"bias {float(R.mean()) - float(bound[idx].mean()) / toy.L:+.5f} ± {float(R.std()) / math.sqrt(seeds):.5f}")
