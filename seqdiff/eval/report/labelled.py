"""The labelled part of the report (a run trained with labels only; others' reports are unchanged).

Held out: each label value's rows scored under their own label (the conditional NELBO, a bound
on ``-log p(x | y)``) and the same rows under the "no label" id (the unconditional model's
bound on ``-log p(x)``), each with its 95% CI, and their paired difference (conditional minus
unconditional, per token: how much the label tells the model).

Sampled: for each label, ``eval.num_samples // K`` samples drawn under it (guidance scale
``eval.guidance``, default the run's ``guidance.scale``), classified by the model's own Bayes
classifier from its conditional NELBOs (:mod:`seqdiff.eval.labels`: an upper-bound-based
proxy, said so in the report) and, where the data source knows its labels' laws
(:meth:`DataSource.score_labelled_samples`), by the exact posterior beside it.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from seqdiff.data import Batch
from seqdiff.eval.labels import PROXY_NOTE, bayes_posterior, candidates, label_nelbos, with_label
from seqdiff.eval.likelihood import LN2, evaluate_likelihood, ratio_ci
from seqdiff.eval.report.config import EvalConfig
from seqdiff.run import Run

Log = Callable[[str], None]


def _figure(values: torch.Tensor, counts: torch.Tensor) -> dict[str, float]:
    r, ci = ratio_ci(values, counts)
    return {"nats_per_token": r, "nats_ci95": ci, "bits_per_token": r / LN2, "bits_ci95": ci / LN2}


def labelled_heldout(run: Run, cfg: EvalConfig, estimator: str | None, cond_seq: torch.Tensor, device,
                     report: dict[str, Any], log: Log) -> None:
    """``report["likelihood_unconditional"]`` and ``report["likelihood_by_label"]``;
    ``cond_seq``: each held-out row's conditional bound (the report's own, same rows)."""
    spec = run.labels
    batches = list(run.data.eval_batches(cfg.split, cfg.batch_size, cfg.max_sequences))
    labels = torch.cat([b.label.reshape(b.x0.shape[0], -1) for b in batches])
    res, uncond_seq, counts = evaluate_likelihood(
        run.model, run.process, with_label(batches, spec.null()), draws=cfg.draws, seed=cfg.seed,
        estimator=estimator, device=device)
    report["likelihood_unconditional"] = res.to_dict()
    log(f"held-out ({cfg.split}) under no label (the unconditional model): {res.summary(run.data.unit)}")
    by: dict[str, Any] = {}
    for f, (field, names) in enumerate(spec.fields):
        by[field] = {}
        for k, name in enumerate(names):
            rows = labels[:, f] == k
            if not rows.any():
                continue
            c, u, n = cond_seq[rows].double(), uncond_seq[rows].double(), counts[rows].double()
            entry = {"rows": int(rows.sum()), "conditional": _figure(c, n), "unconditional": _figure(u, n),
                     "conditional_minus_unconditional": _figure(c - u, n)}
            by[field][name] = entry
            cb, ub, db = entry["conditional"], entry["unconditional"], entry["conditional_minus_unconditional"]
            log(f"  {field}={name} ({entry['rows']} rows): NELBO given the label {cb['bits_per_token']:.4f} ± "
                f"{cb['bits_ci95']:.4f}, without {ub['bits_per_token']:.4f} ± {ub['bits_ci95']:.4f} bits/{run.data.unit}; "
                f"difference {db['bits_per_token']:+.4f} ± {db['bits_ci95']:.4f} (paired, 95% CI)")
    report["likelihood_by_label"] = by


def _prior(run: Run) -> tuple[dict[str, torch.Tensor], str]:
    given = run.data.labels is not None and run.data.labels.fields == run.labels.fields
    prior = run.data.label_prior() if given else None
    if prior is not None:
        return {f: torch.as_tensor(prior[f], dtype=torch.float64) for f in run.labels.field_names}, "data"
    return {f: torch.full((k,), 1.0 / k, dtype=torch.float64) for f, k in zip(run.labels.field_names, run.labels.sizes)}, "uniform"


def guidance_scale(run: Run, cfg: EvalConfig) -> float:
    """``eval.guidance``, else the run's ``guidance.scale``, else 0."""
    if cfg.guidance is not None:
        return cfg.guidance
    return float((run.config.get("guidance") or {}).get("scale") or 0.0)


def label_adherence(run: Run, cfg: EvalConfig, estimator: str | None, device, report: dict[str, Any], log: Log) -> None:
    """``report["label_adherence"]``: samples under each label, classified (nothing for
    ``num_samples`` below the number of labels of a field)."""
    spec, data = run.labels, run.data
    w = guidance_scale(run, cfg)
    prior, prior_source = _prior(run)
    out: dict[str, Any] = {"classifier": "bayes_nelbo", "note": PROXY_NOTE, "guidance_scale": w,
                           "prior_source": prior_source,
                           "prior": {f: prior[f].tolist() for f in spec.field_names}, "fields": {}}
    t0 = time.perf_counter()
    for field, names in spec.fields:
        n = cfg.num_samples // len(names)
        if n < 1:
            log(f"note: no label adherence for {field}: eval.num_samples={cfg.num_samples} < {len(names)} labels")
            continue
        cands = candidates(spec, field)
        per: dict[str, Any] = {}
        for k, name in enumerate(names):
            gen = run.generate(n, data.seq_len, data.sample_condition(n, cfg.seed), seed=cfg.seed + k,
                               batch_size=cfg.sample_batch_size, label=cands[k], guidance=w)
            tokens = gen.tokens
            batch = Batch(tokens, tokens != run.vocab.pad_id)
            nelbo, _ = label_nelbos(run.model, run.process, [batch], cands, draws=cfg.draws, seed=cfg.seed,
                                    estimator=estimator, device=device)
            post = bayes_posterior(nelbo, prior[field])
            entry = {"num_samples": n, "bayes_accuracy": float((post.argmax(1) == k).double().mean()),
                     "bayes_posterior": float(post[:, k].mean())}
            exact = data.score_labelled_samples(tokens, cands[k])
            if exact:
                entry["exact"] = exact
            per[name] = entry
            line = (f"  samples under {field}={name} ({n}, guidance {w:g}): Bayes-NELBO accuracy "
                    f"{entry['bayes_accuracy']:.3f} (mean p(y|x) {entry['bayes_posterior']:.3f})")
            if "label_accuracy" in exact:
                line += f"; exact posterior accuracy {exact['label_accuracy']:.3f}"
            log(line)
        accs = [e["bayes_accuracy"] for e in per.values()]
        field_out = {"labels": per, "bayes_accuracy_mean": sum(accs) / len(accs)}
        exact_accs = [e["exact"]["label_accuracy"] for e in per.values() if "label_accuracy" in e.get("exact", {})]
        if len(exact_accs) == len(per):
            field_out["exact_accuracy_mean"] = sum(exact_accs) / len(exact_accs)
        out["fields"][field] = field_out
    out["seconds"] = time.perf_counter() - t0
    report["label_adherence"] = out
    log(f"label adherence ({PROXY_NOTE}; prior {prior_source}): "
        + ", ".join(f"{f} mean accuracy {v['bayes_accuracy_mean']:.3f}"
                    + (f" (exact {v['exact_accuracy_mean']:.3f})" if "exact_accuracy_mean" in v else "")
                    for f, v in out["fields"].items()))
