"""The held-out part of the report: the likelihood with its CI (the bound beside MDLM's
eps-truncated figure when that is asked for), a second unit (e.g. bits per character), the data
source's reference figures (an exact entropy rate) and the paired ratio to a baseline run.

Every ratio uses the bound: ``sum_i ours_i / sum_i baseline_i`` over the same rows, with the
delta-method CI of paired sums (:func:`seqdiff.eval.likelihood.ratio_ci`).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch

from seqdiff.errors import ConfigError
from seqdiff.eval.likelihood import LikelihoodResult, evaluate_likelihood, ratio_ci
from seqdiff.eval.report.config import EvalConfig
from seqdiff.run import Run, load

Log = Callable[[str], None]


def eval_estimator(process: Any, requested: str | None) -> str | None:
    """``eval.estimator`` checked against the process (a masked process only; others have one)."""
    if process.kind != "masked":
        return None
    try:
        return process.eval_estimator(requested)
    except ValueError as e:
        raise ConfigError(f"eval.estimator={requested}: {e}") from None


def _score(run: Run, cfg: EvalConfig, estimator: str | None, device, *, model=None, process=None):
    return evaluate_likelihood(
        model if model is not None else run.model,
        process if process is not None else run.process,
        run.data.eval_batches(cfg.split, cfg.batch_size, cfg.max_sequences),
        draws=cfg.draws, seed=cfg.seed, estimator=estimator, device=device,
    )


def heldout_section(run: Run, cfg: EvalConfig, device, report: dict[str, Any], log: Log) -> tuple[LikelihoodResult, torch.Tensor]:
    """Fill ``report`` with the likelihood section; returns the bound and its per-row values."""
    data = run.data
    t0 = time.perf_counter()
    res, per_seq, _ = _score(run, cfg, eval_estimator(run.process, cfg.estimator), device)
    report["likelihood"] = res.to_dict()
    if data.labels is not None:  # each row scored under its own label: -log p(x | y), the label given
        report["likelihood"]["conditional_on"] = list(data.labels.field_names)
        log(f"held-out likelihood conditional on the rows' labels ({', '.join(data.labels.field_names)}): "
            "a bound on -log p(x | y), the label given, not scored")
    # MDLM's eps-truncated figure (eval.estimator=time) is reported with the bound beside it;
    # every ratio below uses the bound.
    bound, bound_seq = res, per_seq
    if not res.bound:
        bound, bound_seq, _ = _score(run, cfg, None, device)
        report["likelihood_bound"] = bound.to_dict()
    report["eval_seconds"] = time.perf_counter() - t0
    units = data.eval_units(cfg.split, cfg.max_sequences)
    if units is not None:  # e.g. characters per window for text: the same NELBO in bits per character
        name, counts = units
        r_nats, ci_nats = ratio_ci(bound_seq, counts.double())
        report[f"bits_per_{name}"] = {"value": r_nats / math.log(2), "ci95": ci_nats / math.log(2)}
        report[f"nats_per_{name}"] = {"value": r_nats, "ci95": ci_nats}
        log(f"held-out ({cfg.split}) {r_nats / math.log(2):.4f} ± {ci_nats / math.log(2):.4f} bits/{name} "
            f"({r_nats:.4f} ± {ci_nats:.4f} nats/{name})")
    ref = data.reference()
    unit = data.unit
    report["reference"] = ref
    report["unit"] = unit
    log(f"held-out ({cfg.split}) {res.summary(unit)}")
    if bound is not res:
        log(f"held-out ({cfg.split}) {bound.summary(unit)}")
    if "counting" in ref:  # e.g. text: which inserted BOS/EOS tokens the perplexity counts
        log(f"counted: {ref['counting']}")
    if data.labels is not None and run.labels is not None:  # per label, and the same rows without one
        from seqdiff.eval.report.labelled import labelled_heldout

        labelled_heldout(run, cfg, bound.estimator, bound_seq, device, report, log)
    if cfg.baseline:
        report["baseline"] = baseline_ratio(run, cfg, bound_seq, device, log)
    if "entropy_rate_bits" in ref:
        h, hw = ref["entropy_rate_bits"], ref.get("window_entropy_bits")
        log(f"true entropy rate of the source:  {h:.4f} bits/token")
        if hw is not None:
            log(f"exact entropy of a {data.seq_len}-token window: {hw:.4f} bits/token (first tokens have no context)")
            report["nelbo_over_window_entropy"] = bound.bits_per_token / hw
        report["nelbo_over_entropy_rate"] = bound.bits_per_token / h
        log(f"ratio {bound.kind} / entropy rate: {bound.bits_per_token / h:.4f}")
    return bound, bound_seq


def baseline_ratio(run: Run, cfg: EvalConfig, per_seq: torch.Tensor, device, log: Log) -> dict[str, Any]:
    """Score another run (e.g. the matched AR model) on the same rows; the paired ratio."""
    base = load(cfg.baseline, device=device)
    diff = run.vocab.describe_difference(base.vocab)
    if diff and (run.vocab.size != base.vocab.size or run.vocab.tokens != base.vocab.tokens):  # same ids, same text
        raise ConfigError(f"eval.baseline: {cfg.baseline} has a different vocabulary ({diff}); the ratio needs the same tokens")
    # the baseline's bound too (MDLM's truncated "time" figure is never a ratio's term)
    est = eval_estimator(base.process, None if cfg.estimator == "time" else cfg.estimator)
    res, base_seq, _ = _score(run, cfg, est, device, model=base.model, process=base.process)
    r, ci = ratio_ci(per_seq, base_seq)
    out: dict[str, Any] = {"checkpoint": str(base.checkpoint.path), "process": base.process.kind,
                           "likelihood": res.to_dict(), "ratio": r, "ratio_ci95": ci}
    units = run.data.eval_units(cfg.split, cfg.max_sequences)
    if units is not None:
        name, counts = units
        b, bci = ratio_ci(base_seq, counts.double())
        out[f"nats_per_{name}"] = {"value": b, "ci95": bci}
    log(f"baseline ({base.process.kind}, {base.checkpoint.path}): {res.summary(run.data.unit)}")
    log(f"ratio ours / baseline: {r:.4f} ± {ci:.4f} (nats, paired over {res.num_sequences} sequences, 95% CI)")
    return out
