"""The ``train``, ``sample`` and ``eval`` commands on a composed configuration."""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from seqdiff.cli.condition import condition_from_config, with_keywords
from seqdiff.errors import CheckpointError, ConfigError, SeqdiffError
from seqdiff.eval.likelihood import evaluate_likelihood, ratio_ci
from seqdiff.eval.samples import per_sequence_entropy_bits, unigram_entropy_bits
from seqdiff.experiment import MODEL_SECTIONS, Experiment, build_experiment, load
from seqdiff.train.checkpoint import list_checkpoints
from seqdiff.train.distributed import barrier, broadcast_object, init_distributed, shutdown
from seqdiff.train.trainer import Trainer, TrainerConfig, resolve_device
from seqdiff.utils.instantiate import instantiate
from seqdiff.eval.plots import summary_table
from seqdiff.utils.io import atomic_write_json, atomic_write_text

RUN_SECTIONS = ("seed", "domain", "data", "backbone", "process", "sampler", "trainer")


def dispatch(cfg: DictConfig) -> int:
    command = cfg.command
    try:
        if command == "train":
            train(cfg)
        elif command == "sample":
            sample(cfg)
        elif command == "eval":
            evaluate(cfg)
        else:
            raise ConfigError(f"unknown command {command!r}")
    except SeqdiffError as e:
        if cfg.get("debug"):
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    return 0


def _plain(cfg: DictConfig, keys: tuple[str, ...] | None = None) -> dict:
    d = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(d, dict)
    return {k: d[k] for k in keys if k in d} if keys else d


def _set_threads(trainer_cfg: dict) -> None:
    n = trainer_cfg.get("num_threads")
    if n:
        torch.set_num_threads(int(n))


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


# --------------------------------------------------------------------------- train
def train(cfg: DictConfig) -> None:
    run_config = _plain(cfg, RUN_SECTIONS)
    run_config["overrides"] = [o for o in _overrides() if not o.startswith(("command=", "hydra."))]
    _set_threads(run_config["trainer"])
    dist = init_distributed(run_config["trainer"].get("device", "auto"))
    run_dir = _run_dir(cfg)
    if dist.enabled:  # run_dir may hold a timestamp: every rank uses rank 0's
        own, run_dir = run_dir, Path(broadcast_object(str(run_dir)))
        if own != run_dir and dist.is_main is False:
            shutil.rmtree(own, ignore_errors=True)  # the empty directory Hydra made for this rank
    say = print if dist.is_main else (lambda *a, **k: None)
    # Hydra made run_dir (and .hydra/ in it) before anything was validated: if this run
    # fails before it writes a checkpoint, take the directory away again rather than leave
    # a run that cannot be sampled, evaluated or resumed.
    fresh = dist.is_main and _only_hydra_files(run_dir)
    try:
        _train(cfg, run_config, dist, run_dir, say)
    except BaseException:
        if fresh and not list_checkpoints(run_dir / "checkpoints"):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _run_dir(cfg: DictConfig) -> Path:
    """``run_dir``; in a multirun (``-m``) each job's own directory, ``run_dir/<job number>``
    (``hydra.sweep``), so that jobs never share (and resume from) one run directory."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        hc = HydraConfig.get()
    except ValueError:  # not under Hydra (tests calling train() directly)
        return Path(cfg.run_dir)
    if hc.mode == RunMode.MULTIRUN and hc.runtime.output_dir:
        return Path(hc.runtime.output_dir)
    return Path(cfg.run_dir)


def _only_hydra_files(run_dir: Path) -> bool:
    """True for a directory holding nothing but Hydra's ``.hydra/`` (or nothing)."""
    if not run_dir.is_dir():
        return False
    return all(p.name == ".hydra" and p.is_dir() for p in run_dir.iterdir())


def _train(cfg: DictConfig, run_config: dict, dist, run_dir: Path, say) -> None:
    tcfg = TrainerConfig.from_dict(run_config["trainer"])  # cheap: before the data is read
    exp = build_experiment(run_config)
    say(f"run directory: {run_dir}")
    say(
        f"model: {type(exp.model).__name__} {exp.model.num_parameters():,} parameters | "
        f"process: {exp.process.kind} | domain: {getattr(exp.domain, 'name', type(exp.domain).__name__)} "
        f"(vocab {exp.vocab.size}) | device: {resolve_device(tcfg.device)}"
        + (f" | {dist.world_size} ranks" if dist.enabled else "")
    )
    trainer = Trainer(
        exp.model, exp.process, exp.data, tcfg, run_dir=run_dir, vocab=exp.vocab, run_config=run_config,
        seed=int(cfg.seed), artifacts=exp.domain, log=say,
    )
    result = trainer.fit()  # on error torchrun tears every rank down
    if dist.enabled:
        # Leave the group together (a rank tearing gloo down while a peer still talks to it
        # aborts in C++); rank 0 then evaluates on its own.
        barrier()
        shutdown()
    msg = f"trained {result.step} steps in {result.seconds:.1f} s"
    if result.stopped_early:
        msg += f" (stopped early: {result.stopped_early})"
    say(msg)
    if not dist.is_main:
        return
    exp.model = trainer.final_model()  # EMA weights; under FSDP the gathered, unsharded model
    exp.model.eval()
    report = _evaluate_and_report(exp, cfg, run_dir)
    report["train"] = {"steps": result.step, "seconds": result.seconds, "stopped_early": result.stopped_early,
                       "world_size": dist.world_size}
    atomic_write_json(run_dir / "eval.json", report)


# --------------------------------------------------------------------------- sample / eval
def _experiment_from_checkpoint(cfg: DictConfig) -> Experiment:
    if not cfg.checkpoint:
        raise ConfigError(f"{cfg.command}: give checkpoint=RUN_DIR (a run directory or a checkpoint directory)")
    device = resolve_device(cfg.trainer.device)
    exp = load(cfg.checkpoint, ema=bool(cfg.ema), device=device)
    user = [o.lstrip("+~") for o in _overrides()]
    for section in ("domain", "backbone"):
        touched = [o for o in user if o.split("=")[0].split(".")[0] == section]
        if touched:
            raise ConfigError(f"{cfg.command}: cannot override {touched[0]!r}: the checkpoint fixes the {section}")
    composed = _plain(cfg)
    new_cfg = dict(exp.config)
    new_cfg["sampler"] = composed["sampler"]
    if any(o.split("=")[0].split(".")[0] == "data" for o in user):
        new_cfg["data"] = composed["data"]
        exp.__dict__.pop("data", None)
    # Evaluation-side process settings (num_steps, estimator, t_min, schedule) may change.
    proc_keys = [o.split("=")[0][len("process") + 1 :] for o in user if o.startswith(("process.", "process/"))]
    if proc_keys:
        if any(k.split(".")[0].split("/")[0] == "time_conditioning" for k in proc_keys):
            raise ConfigError(f"{cfg.command}: time_conditioning is fixed by the checkpoint")
        proc = OmegaConf.create(exp.config["process"])
        for key in proc_keys:
            key = key.split("/")[0] if "/" in key else key
            OmegaConf.update(proc, key, OmegaConf.select(cfg.process, key), merge=False)
        new_cfg["process"] = OmegaConf.to_container(proc, resolve=True)
        exp.process = instantiate(new_cfg["process"], section="process", trusted=exp.trusted, vocab=exp.vocab)
    exp.config = new_cfg
    _set_threads(composed["trainer"])
    return exp


def sample(cfg: DictConfig) -> None:
    exp = _experiment_from_checkpoint(cfg)
    num = int(cfg.num_samples)
    sources = _sources(cfg.condition)
    decode = exp.domain.decode
    if sources:  # a pair run: each source num_samples times, its target generated
        data = exp.data
        if not hasattr(data, "source_condition"):
            raise ConfigError("condition.source: this run was not trained on pairs (data=text_pairs)")
        tl = cfg.condition.get("target_length")
        condition = data.source_condition(sources, num, target_length=None if tl is None else int(tl), seed=int(cfg.seed))
        num, decode = condition.tokens.shape[0], data.decode_target
    else:
        condition = condition_from_config(exp.domain, cfg.condition, cfg.length or exp.default_length())
        if condition is None and not cfg.length:
            condition = _data_condition(exp, num, int(cfg.seed))
    length = condition.length if condition is not None else (cfg.length or exp.default_length())
    condition = with_keywords(exp.domain, cfg.condition, condition, length)
    t0 = time.perf_counter()
    out = exp.generate(num, length, condition, seed=int(cfg.seed), batch_size=int(cfg.sample_batch_size))
    dt = time.perf_counter() - t0
    texts = [decode(row) for row in out.tokens]
    for i, s in enumerate(texts):
        print(f">sample_{i}\n{s}")
    print(
        f"# {len(texts)} samples of length {length} in {dt:.2f} s | backbone evaluations per sample "
        f"{out.nfe.double().mean():.1f} | checkpoint {exp.checkpoint.path} ({exp.weights} weights)",
        file=sys.stderr,
    )
    if cfg.out:
        from seqdiff.utils.io import atomic_write_text

        atomic_write_text(cfg.out, "".join(f">sample_{i}\n{s}\n" for i, s in enumerate(texts)))


def _sources(cond: DictConfig) -> list[str]:
    """``condition.source`` (one text) or ``condition.source_file`` (one per line)."""
    src, path = cond.get("source"), cond.get("source_file")
    if src not in (None, "") and path not in (None, ""):
        raise ConfigError("condition: give condition.source or condition.source_file, not both")
    if src not in (None, ""):
        return [str(src)]
    if path in (None, ""):
        return []
    try:
        lines = [l for l in Path(path).expanduser().read_text(encoding="utf-8").splitlines() if l.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"condition.source_file: cannot read {path} ({e})") from None
    if not lines:
        raise ConfigError(f"condition.source_file: {path} has no non-empty lines")
    return lines


def evaluate(cfg: DictConfig) -> None:
    exp = _experiment_from_checkpoint(cfg)
    run_dir = exp.checkpoint.path.parent.parent if exp.checkpoint.path.parent.name == "checkpoints" else exp.checkpoint.path
    report = _evaluate_and_report(exp, cfg, run_dir)
    try:
        atomic_write_json(run_dir / "eval.json", report)
    except OSError as e:
        print(f"warning: could not write {run_dir / 'eval.json'}: {e}", file=sys.stderr)


def _evaluate_and_report(exp: Experiment, cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    ev = cfg.eval
    device = next(exp.model.parameters()).device
    data = exp.data
    t0 = time.perf_counter()
    res, per_seq, _ = evaluate_likelihood(
        exp.model,
        exp.process,
        data.eval_batches(ev.split, int(ev.batch_size), int(ev.max_sequences) if ev.max_sequences else None),
        draws=int(ev.draws),
        seed=int(ev.seed),
        estimator=ev.estimator,
        device=device,
    )
    eval_s = time.perf_counter() - t0
    report: dict[str, Any] = {
        "checkpoint": str(exp.checkpoint.path) if exp.checkpoint else None,
        "split": ev.split,
        "likelihood": res.to_dict(),
        "eval_seconds": eval_s,
    }
    if hasattr(data, "eval_units"):
        # e.g. characters per window for text: the same NELBO in bits per character
        name, counts = data.eval_units(ev.split, int(ev.max_sequences) if ev.max_sequences else None)
        r_nats, ci_nats = ratio_ci(per_seq, counts.double())
        report[f"bits_per_{name}"] = {"value": r_nats / math.log(2), "ci95": ci_nats / math.log(2)}
        report[f"nats_per_{name}"] = {"value": r_nats, "ci95": ci_nats}
        print(f"held-out ({ev.split}) {r_nats / math.log(2):.4f} ± {ci_nats / math.log(2):.4f} bits/{name} "
              f"({r_nats:.4f} ± {ci_nats:.4f} nats/{name})")
    ref = data.reference() if hasattr(data, "reference") else {}
    report["reference"] = ref
    unit = getattr(data, "unit", "token")
    report["unit"] = unit
    print(f"held-out ({ev.split}) {res.summary(unit)}")
    if "counting" in ref:  # e.g. text: which inserted BOS/EOS tokens the perplexity counts
        print(f"counted: {ref['counting']}")
    if ev.get("baseline"):
        report["baseline"] = _baseline_ratio(exp, cfg, per_seq, device)
    if "entropy_rate_bits" in ref:
        h, hw = ref["entropy_rate_bits"], ref.get("window_entropy_bits")
        print(f"true entropy rate of the source:  {h:.4f} bits/token")
        if hw is not None:
            print(f"exact entropy of a {data.seq_len}-token window: {hw:.4f} bits/token (first tokens have no context)")
            report["nelbo_over_window_entropy"] = res.bits_per_token / hw
        report["nelbo_over_entropy_rate"] = res.bits_per_token / h
        print(f"ratio NELBO / entropy rate: {res.bits_per_token / h:.4f}")
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


# --------------------------------------------------------------------------- eval extras
def _data_condition(exp: Experiment, n: int, seed: int):
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


def _baseline_ratio(exp: Experiment, cfg: DictConfig, per_seq: torch.Tensor, device) -> dict[str, Any]:
    """Score another run (e.g. the matched AR model) on the same rows; the paired ratio."""
    ev = cfg.eval
    base = load(ev.baseline, device=device)
    diff = exp.vocab.describe_difference(base.vocab)
    if diff and (exp.vocab.size != base.vocab.size or exp.vocab.tokens != base.vocab.tokens):  # same ids, same text
        raise ConfigError(f"eval.baseline: {ev.baseline} has a different vocabulary ({diff}); the ratio needs the same tokens")
    est = ev.estimator if getattr(base.process, "kind", "") == "masked" else None
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


def _judge_samples(exp: Experiment, ev: DictConfig, judge, tokens: torch.Tensor, data: Any) -> dict[str, Any]:
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


def _sampling_sweep(exp: Experiment, cfg: DictConfig, judge, data: Any) -> list[dict[str, Any]]:
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


def _plots(exp: Experiment, ev: DictConfig, run_dir: Path, report: dict[str, Any]) -> list[str]:
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
