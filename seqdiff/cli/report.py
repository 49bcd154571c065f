"""The evaluation report of ``seqdiff train`` and ``seqdiff eval``: held-out likelihood with
its CI, the source's exact reference where known, baseline ratio, samples with their
statistics, judge gen-PPL and diversity, the sampling-steps sweep and plots."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from seqdiff.errors import ConfigError, SeqdiffError
from seqdiff.eval.likelihood import evaluate_likelihood, ratio_ci
from seqdiff.eval.plots import summary_table
from seqdiff.eval.samples import per_sequence_entropy_bits, unigram_entropy_bits
from seqdiff.run import Run, load
from seqdiff.utils.io import atomic_write_text


def evaluate_and_report(exp: Run, cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    ev = cfg.eval
    device = next(exp.model.parameters()).device
    data = exp.data
    estimator = _estimator(exp.process, ev.estimator)

    def score(est):
        return evaluate_likelihood(
            exp.model,
            exp.process,
            data.eval_batches(ev.split, int(ev.batch_size), int(ev.max_sequences) if ev.max_sequences else None),
            draws=int(ev.draws),
            seed=int(ev.seed),
            estimator=est,
            device=device,
        )

    t0 = time.perf_counter()
    res, per_seq, _ = score(estimator)
    report: dict[str, Any] = {
        "checkpoint": str(exp.checkpoint.path) if exp.checkpoint else None,
        "split": ev.split,
        "likelihood": res.to_dict(),
    }
    # MDLM's eps-truncated figure (eval.estimator=time) is reported with the bound beside
    # it; every ratio below uses the bound.
    bound, bound_seq = res, per_seq
    if not res.bound:
        bound, bound_seq, _ = score(None)
        report["likelihood_bound"] = bound.to_dict()
    report["eval_seconds"] = time.perf_counter() - t0
    if hasattr(data, "eval_units"):
        # e.g. characters per window for text: the same NELBO in bits per character
        name, counts = data.eval_units(ev.split, int(ev.max_sequences) if ev.max_sequences else None)
        r_nats, ci_nats = ratio_ci(bound_seq, counts.double())
        report[f"bits_per_{name}"] = {"value": r_nats / math.log(2), "ci95": ci_nats / math.log(2)}
        report[f"nats_per_{name}"] = {"value": r_nats, "ci95": ci_nats}
        print(f"held-out ({ev.split}) {r_nats / math.log(2):.4f} ± {ci_nats / math.log(2):.4f} bits/{name} "
              f"({r_nats:.4f} ± {ci_nats:.4f} nats/{name})")
    ref = data.reference() if hasattr(data, "reference") else {}
    report["reference"] = ref
    unit = getattr(data, "unit", "token")
    report["unit"] = unit
    print(f"held-out ({ev.split}) {res.summary(unit)}")
    if bound is not res:
        print(f"held-out ({ev.split}) {bound.summary(unit)}")
    if "counting" in ref:  # e.g. text: which inserted BOS/EOS tokens the perplexity counts
        print(f"counted: {ref['counting']}")
    if ev.get("baseline"):
        report["baseline"] = _baseline_ratio(exp, cfg, bound_seq, device)
    if "entropy_rate_bits" in ref:
        h, hw = ref["entropy_rate_bits"], ref.get("window_entropy_bits")
        print(f"true entropy rate of the source:  {h:.4f} bits/token")
        if hw is not None:
            print(f"exact entropy of a {data.seq_len}-token window: {hw:.4f} bits/token (first tokens have no context)")
            report["nelbo_over_window_entropy"] = bound.bits_per_token / hw
        report["nelbo_over_entropy_rate"] = bound.bits_per_token / h
        print(f"ratio {bound.kind} / entropy rate: {bound.bits_per_token / h:.4f}")
    n = int(ev.num_samples)
    if n > 0:
        t0 = time.perf_counter()
        out = exp.generate(n, data.seq_len, _length_condition(data, n, int(ev.seed)), seed=int(ev.seed),
                           batch_size=int(cfg.sample_batch_size))
        sample_s = time.perf_counter() - t0
        stats: dict[str, Any] = {
            "num_samples": n,
            "seconds": sample_s,
            "nfe_per_sample": float(out.nfe.double().mean()),
            "unigram_entropy_bits": unigram_entropy_bits(out.tokens, out.tokens != exp.vocab.pad_id),
            "mean_sequence_entropy_bits": float(per_sequence_entropy_bits(out.tokens).mean()),
        }
        real, real_valid = next(iter(data.eval_batches(ev.split, n, n)))[:2]  # (x0, valid[, fixed])
        stats["data_unigram_entropy_bits"] = unigram_entropy_bits(real, real_valid)
        domain_stats = data.score_samples(out.tokens) if hasattr(data, "score_samples") else {}
        stats.update(domain_stats)
        report["samples"] = stats
        line = f"samples ({n}): unigram entropy {stats['unigram_entropy_bits']:.3f} bits (data {stats['data_unigram_entropy_bits']:.3f})"
        if "sample_true_nll_bits" in stats and math.isfinite(stats["sample_true_nll_bits"]):
            line += f", NLL under the true source {stats['sample_true_nll_bits']:.4f} bits/token"
        print(line)
        for text in _stat_lines(domain_stats, skip={"sample_true_nll_bits"}):
            print("  " + text)
        for row in out.tokens[:4]:
            print("  " + exp.domain.decode(row))
        judge = _load_judge(ev, device)
        if judge is not None:
            stats.update(_judge_samples(exp, ev, judge, out.tokens, data))
            report["sweep"] = _sampling_sweep(exp, cfg, judge, data)
    if ev.get("report") == "plots":
        report["plots"] = _plots(exp, ev, run_dir, report)
    elif ev.get("report") not in (None, "", "none"):
        raise ConfigError(f"eval.report must be null or plots, got {ev.report!r}")
    table = summary_table(report)
    print(table)
    try:
        atomic_write_text(run_dir / "eval.md", table + "\n")
    except OSError:
        pass
    print(f"results: {run_dir / 'eval.json'}")
    return report


def _estimator(process, requested: str | None) -> str | None:
    """``eval.estimator`` checked against the process (a masked process only)."""
    if getattr(process, "kind", "") != "masked":
        return None
    try:
        return process.eval_estimator(requested)
    except ValueError as e:
        raise ConfigError(f"eval.estimator={requested}: {e}") from None


# --------------------------------------------------------------------------- eval extras
def data_condition(exp: Run, n: int, seed: int):
    """Padded data (text in pad mode, whole records) conditions unconditional samples on
    lengths drawn from the data. Sampling must not need the corpus, so if the data cannot
    be opened here (moved files), samples are full length and a note says so."""
    try:
        return _length_condition(exp.data, n, seed)
    except (SeqdiffError, OSError) as e:
        print(f"note: sampling at full length; the run's data is not readable here ({e})", file=sys.stderr)
        return None


def _length_condition(data: Any, n: int, seed: int):
    """What the data source conditions unconditional samples on (e.g. padded text: a row
    length drawn from the data and its leading [BOS]); None for most sources."""
    return data.sample_condition(n, seed) if hasattr(data, "sample_condition") else None


def _baseline_ratio(exp: Run, cfg: DictConfig, per_seq: torch.Tensor, device) -> dict[str, Any]:
    """Score another run (e.g. the matched AR model) on the same rows; the paired ratio."""
    ev = cfg.eval
    base = load(ev.baseline, device=device)
    diff = exp.vocab.describe_difference(base.vocab)
    if diff and (exp.vocab.size != base.vocab.size or exp.vocab.tokens != base.vocab.tokens):  # same ids, same text
        raise ConfigError(f"eval.baseline: {ev.baseline} has a different vocabulary ({diff}); the ratio needs the same tokens")
    # the baseline's bound too (MDLM's truncated "time" figure is never a ratio's term)
    est = _estimator(base.process, None if ev.estimator == "time" else ev.estimator)
    res, base_seq, _ = evaluate_likelihood(
        base.model, base.process,
        exp.data.eval_batches(ev.split, int(ev.batch_size), int(ev.max_sequences) if ev.max_sequences else None),
        draws=int(ev.draws), seed=int(ev.seed), estimator=est, device=device,
    )
    # sum(ours) / sum(baseline) over the same sequences; delta-method CI of paired sums
    r, ci = ratio_ci(per_seq, base_seq)
    out: dict[str, Any] = {"checkpoint": str(base.checkpoint.path), "process": base.process.kind,
                           "likelihood": res.to_dict(), "ratio": r, "ratio_ci95": ci}
    if hasattr(exp.data, "eval_units"):
        name, counts = exp.data.eval_units(ev.split, int(ev.max_sequences) if ev.max_sequences else None)
        b, bci = ratio_ci(base_seq, counts.double())
        out[f"nats_per_{name}"] = {"value": b, "ci95": bci}
    print(f"baseline ({base.process.kind}, {base.checkpoint.path}): {res.summary(getattr(exp.data, 'unit', 'token'))}")
    print(f"ratio ours / baseline: {r:.4f} ± {ci:.4f} (nats, paired over {res.num_sequences} sequences, 95% CI)")
    return out


def _load_judge(ev: DictConfig, device):
    if not ev.get("judge"):
        return None
    from seqdiff.eval.judge import load_judge

    return load_judge(str(ev.judge), device=device, batch_size=int(ev.get("judge_batch_size") or 16))


def _judge_samples(exp: Run, ev: DictConfig, judge, tokens: torch.Tensor, data: Any) -> dict[str, Any]:
    """gen-PPL with entropy beside it; Vendi and MAUVE on the judge's features."""
    from seqdiff.eval.judge import generative_perplexity

    res, judged = generative_perplexity(judge, tokens, exp.domain)
    out: dict[str, Any] = {"judge": res.to_dict()}
    print(f"samples: {res.summary()}")
    if not ev.get("diversity", True):
        return out
    from seqdiff.eval.diversity import mauve_score, vendi_score

    keep = [t for t in judged if t]
    real = next(iter(data.eval_batches(ev.split, len(tokens), len(tokens))))[0]
    real_lists = [t for t in judge.tokenize(real, exp.domain)[0] if t]
    try:
        f_gen, f_real = judge.features(keep), judge.features(real_lists)
        out["vendi"] = vendi_score(f_gen)
        out["data_vendi"] = vendi_score(f_real)
        out["mauve"] = mauve_score(f_real, f_gen)
        out["mauve_n"] = [len(f_real), len(f_gen)]
        print(f"samples: Vendi {out['vendi']:.2f} (data {out['data_vendi']:.2f}), MAUVE {out['mauve']:.3f} "
              f"({len(f_gen)} vs {len(f_real)} real; noisy below a few hundred)")
    except ConfigError as e:  # optional packages missing: say so once, keep the rest
        print(f"note: {e}")
    return out


def _sampling_sweep(exp: Run, cfg: DictConfig, judge, data: Any) -> list[dict[str, Any]]:
    """gen-PPL and entropy for each ``eval.sampling_steps`` value (same seed, same n)."""
    ev = cfg.eval
    steps = list(ev.get("sampling_steps") or [])
    if not steps:
        return []
    base = dict(exp.config.get("sampler") or {})
    if "num_steps" not in base:
        print(f"note: eval.sampling_steps ignored: {base.get('_target_')} has no num_steps")
        return []
    from seqdiff.eval.judge import generative_perplexity

    n, points = int(ev.num_samples), []
    for k in steps:
        t0 = time.perf_counter()
        out = exp.generate(n, data.seq_len, _length_condition(data, n, int(ev.seed)), seed=int(ev.seed),
                           batch_size=int(cfg.sample_batch_size), sampler=exp.build_sampler({**base, "num_steps": int(k)}))
        res, _ = generative_perplexity(judge, out.tokens, exp.domain)
        points.append({"steps": int(k), "gen_ppl": res.gen_ppl, "gen_ppl_ci95": list(res.gen_ppl_ci95),
                       "entropy_bits": res.mean_sequence_entropy_bits, "nfe_per_sample": float(out.nfe.double().mean()),
                       "seconds": time.perf_counter() - t0})
        print(f"  steps {int(k):>5}: gen-PPL {res.gen_ppl:.2f}, entropy {res.mean_sequence_entropy_bits:.3f} bits, "
              f"NFE {points[-1]['nfe_per_sample']:.0f}")
    return points


def _plots(exp: Run, ev: DictConfig, run_dir: Path, report: dict[str, Any]) -> list[str]:
    from seqdiff.eval.plots import plot_loss_curves, plot_sampling_sweep

    runs = {exp.process.kind: run_dir}
    if "baseline" in report:
        ck = Path(report["baseline"]["checkpoint"])
        runs[f"baseline ({report['baseline']['process']})"] = ck.parent.parent if ck.parent.name == "checkpoints" else ck
    made = [str(plot_loss_curves(runs, run_dir / "loss_curves.png"))]
    if report.get("sweep"):
        made.append(str(plot_sampling_sweep(report["sweep"], run_dir / "sampling_sweep.png")))
    print("plots: " + ", ".join(made))
    return made


def _stat_lines(stats: dict, skip: set[str] = frozenset()) -> list[str]:
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
