"""The sampled part of the report: samples from the run's sampler with their statistics beside
the data's (unigram entropy, the data source's own, e.g. k-mer spectra or the NLL under a known
source), a judge's generative perplexity with the samples' entropy beside it, Vendi and MAUVE on
the judge's features, and the sampling-steps sweep (gen-PPL and entropy against
``sampler.num_steps``: the trade-off gen-PPL alone hides)."""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch

from seqdiff.errors import ConfigError
from seqdiff.eval.report.config import EvalConfig
from seqdiff.eval.samples import per_sequence_entropy_bits, unigram_entropy_bits
from seqdiff.run import Run

Log = Callable[[str], None]


def samples_section(run: Run, cfg: EvalConfig, device, report: dict[str, Any], log: Log) -> None:
    """``report["samples"]`` (and ``report["sweep"]`` with a judge); nothing for ``num_samples=0``."""
    n = cfg.num_samples
    if n <= 0:
        return
    data = run.data
    t0 = time.perf_counter()
    out = run.generate(n, data.seq_len, data.sample_condition(n, cfg.seed), seed=cfg.seed,
                       batch_size=cfg.sample_batch_size)
    stats: dict[str, Any] = {
        "num_samples": n,
        "seconds": time.perf_counter() - t0,
        "nfe_per_sample": float(out.nfe.double().mean()),
        "unigram_entropy_bits": unigram_entropy_bits(out.tokens, out.tokens != run.vocab.pad_id),
        "mean_sequence_entropy_bits": float(per_sequence_entropy_bits(out.tokens).mean()),
    }
    real, real_valid = next(iter(data.eval_batches(cfg.split, n, n)))[:2]  # (x0, valid[, fixed])
    stats["data_unigram_entropy_bits"] = unigram_entropy_bits(real, real_valid)
    domain_stats = data.score_samples(out.tokens)
    stats.update(domain_stats)
    report["samples"] = stats
    line = f"samples ({n}): unigram entropy {stats['unigram_entropy_bits']:.3f} bits (data {stats['data_unigram_entropy_bits']:.3f})"
    if "sample_true_nll_bits" in stats and math.isfinite(stats["sample_true_nll_bits"]):
        line += f", NLL under the true source {stats['sample_true_nll_bits']:.4f} bits/token"
    log(line)
    for text in stat_lines(domain_stats, skip={"sample_true_nll_bits"}):
        log("  " + text)
    for row in out.tokens[:4]:
        log("  " + run.domain.decode(row))
    if run.labels is not None:  # samples under each label, classified
        from seqdiff.eval.report.heldout import eval_estimator
        from seqdiff.eval.report.labelled import label_adherence

        est = eval_estimator(run.process, None if cfg.estimator == "time" else cfg.estimator)
        label_adherence(run, cfg, est, device, report, log)
    judge = _load_judge(cfg, device)
    if judge is not None:
        stats.update(_judge_samples(run, cfg, judge, out.tokens, log))
        report["sweep"] = _sampling_sweep(run, cfg, judge, log)


def _load_judge(cfg: EvalConfig, device):
    if not cfg.judge:
        return None
    from seqdiff.eval.judge import load_judge

    return load_judge(cfg.judge, device=device, batch_size=cfg.judge_batch_size)


def _judge_samples(run: Run, cfg: EvalConfig, judge, tokens: torch.Tensor, log: Log) -> dict[str, Any]:
    """gen-PPL with entropy beside it; the Fréchet distance, Vendi and MAUVE on the judge's features."""
    from seqdiff.eval.judge import generative_perplexity

    res, judged = generative_perplexity(judge, tokens, run.domain)
    out: dict[str, Any] = {"judge": res.to_dict()}
    log(f"samples: {res.summary()}")
    keep = [t for t in judged if t]
    f_gen = judge.features(keep) if keep else None  # once: Fréchet, Vendi and MAUVE all read them
    out.update(_frechet(run, cfg, judge, tokens, f_gen, log))
    if not cfg.diversity:
        return out
    from seqdiff.eval.diversity import mauve_score, vendi_score

    real = next(iter(run.data.eval_batches(cfg.split, len(tokens), len(tokens))))[0]
    real_lists = [t for t in judge.tokenize(real, run.domain)[0] if t]
    try:
        f_gen = f_gen if f_gen is not None else judge.features(keep)
        f_real = judge.features(real_lists)
        out["vendi"] = vendi_score(f_gen)
        out["data_vendi"] = vendi_score(f_real)
        out["mauve"] = mauve_score(f_real, f_gen)
        out["mauve_n"] = [len(f_real), len(f_gen)]
        log(f"samples: Vendi {out['vendi']:.2f} (data {out['data_vendi']:.2f}), MAUVE {out['mauve']:.3f} "
            f"({len(f_gen)} vs {len(f_real)} real; noisy below a few hundred)")
    except ConfigError as e:  # optional packages missing: say so once, keep the rest
        log(f"note: {e}")
    return out


def _frechet(run: Run, cfg: EvalConfig, judge, tokens: torch.Tensor, f_gen: torch.Tensor | None, log: Log) -> dict[str, Any]:
    """Fréchet distance of the samples to held-out windows on the judge's features, beside its
    floor: the same distance between two disjoint halves of held-out windows of the samples'
    number (what finite samples of the data itself give)."""
    from seqdiff.eval.frechet import frechet_report

    n = len(tokens)
    real = torch.cat([b.x0 for b in run.data.eval_batches(cfg.split, 2 * n, 2 * n)])
    a, b = real[0::2][:n], real[1::2][:n]
    try:
        rep = frechet_report(judge, tokens, a, b, run.domain, sample_features=f_gen)
    except ValueError as e:  # too few rows the judge can encode: say so, keep the rest
        log(f"note: no Fréchet distance ({e})")
        return {}
    log(f"samples: Fréchet distance {rep['frechet_distance']:.4g} (real-vs-real floor {rep['frechet_floor']:.4g}, "
        f"n={rep['frechet_n']}, judge features)")
    return rep


def _sampling_sweep(run: Run, cfg: EvalConfig, judge, log: Log) -> list[dict[str, Any]]:
    """gen-PPL and entropy for each ``sampling_steps`` value (same seed, same n)."""
    if not cfg.sampling_steps:
        return []
    base = dict(run.config.get("sampler") or {})
    if "num_steps" not in base:
        log(f"note: eval.sampling_steps ignored: {base.get('_target_')} has no num_steps")
        return []
    from seqdiff.eval.judge import generative_perplexity

    data, n, points = run.data, cfg.num_samples, []
    for k in cfg.sampling_steps:
        t0 = time.perf_counter()
        out = run.generate(n, data.seq_len, data.sample_condition(n, cfg.seed), seed=cfg.seed,
                           batch_size=cfg.sample_batch_size, sampler=run.build_sampler({**base, "num_steps": k}))
        res, _ = generative_perplexity(judge, out.tokens, run.domain)
        points.append({"steps": k, "gen_ppl": res.gen_ppl, "gen_ppl_ci95": list(res.gen_ppl_ci95),
                       "entropy_bits": res.mean_sequence_entropy_bits, "nfe_per_sample": float(out.nfe.double().mean()),
                       "seconds": time.perf_counter() - t0})
        log(f"  steps {k:>5}: gen-PPL {res.gen_ppl:.2f}, entropy {res.mean_sequence_entropy_bits:.3f} bits, "
            f"NFE {points[-1]['nfe_per_sample']:.0f}")
    return points


def stat_lines(stats: dict, skip: set[str] = frozenset()) -> list[str]:
    """One line per statistic a data source reports (scalars, or dicts of scalars)."""

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = []
    for key, value in stats.items():
        if key in skip:
            continue
        if isinstance(value, dict):
            if all(isinstance(v, (int, float, str)) for v in value.values()):
                lines.append(f"{key}: " + " ".join(f"{k}={fmt(v)}" for k, v in value.items()))
        elif isinstance(value, (int, float, str)):
            lines.append(f"{key}: {fmt(value)}")
    return lines
