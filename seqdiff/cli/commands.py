"""The ``train``, ``sample`` and ``eval`` commands on a composed configuration."""

from __future__ import annotations

import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from seqdiff.cli.condition import condition_from_config, with_keywords
from seqdiff.cli.init_from import prepare_init
from seqdiff.cli.length import check_length
from seqdiff.cli.main import config_dir
from seqdiff.cli.protocols import apply_protocol
from seqdiff.cli.reopen import checkpoint_choices, recorded_choices, user_overrides
from seqdiff.cli.validate import check_arguments
from seqdiff.data import PairedSource
from seqdiff.errors import ConfigError, SeqdiffError
from seqdiff.eval.report import EvalConfig, evaluate_run
from seqdiff.run import Run, build_run, load
from seqdiff.run_config import reconfigure, reopened_config
from seqdiff.io.checkpoint import list_checkpoints
from seqdiff.train.distributed import barrier, broadcast_object, init_distributed, shutdown
from seqdiff.train.config import TrainerConfig
from seqdiff.train.parallel import resolve_device
from seqdiff.utils.io import atomic_write_json, atomic_write_text

RUN_SECTIONS = ("seed", "domain", "data", "backbone", "process", "sampler", "trainer", "label")


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


def _choices() -> dict[str, str]:
    """Hydra's group choices of this composition (``{"data": "fasta", ...}``)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return recorded_choices(HydraConfig.get().runtime.choices)
    except ValueError:  # not under Hydra
        return {}


def eval_config(cfg: DictConfig) -> EvalConfig:
    """The composed ``eval`` section (and ``sample_batch_size``) as the report's typed config."""
    return EvalConfig.from_dict(_plain(cfg.eval), sample_batch_size=cfg.sample_batch_size)


# --------------------------------------------------------------------------- train
def train(cfg: DictConfig) -> None:
    run_config = _plain(cfg, RUN_SECTIONS)
    run_config["overrides"] = [o for o in _overrides() if not o.startswith(("command=", "hydra."))]
    run_config["choices"] = _choices()  # sample/eval compose on these (seqdiff/cli/reopen.py)
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
    if dist.enabled:
        # Everything is written and the process group is destroyed, yet torch 2.13's gloo
        # can still abort ("terminate called without an active exception") while the
        # interpreter tears down its C++ threads; seen on rank 1 in CI. Skip that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


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
    check_arguments(_plain(cfg))  # every numeric key, by full name, before anything is built
    tcfg = TrainerConfig.from_dict(run_config["trainer"])  # cheap: before the data is read
    ev = eval_config(cfg)
    if ev.protocol:
        raise ConfigError("eval.protocol scores a finished run on another file: seqdiff eval checkpoint=RUN data=text "
                          "data.corpus.path=FILE eval.protocol=...")
    init = prepare_init(cfg, run_config, run_dir, tcfg, _overrides(), say)  # init_from=RUN (fresh runs only)
    exp = build_run(run_config, resolve_labels=True)  # a labelled source's vocabulary goes into run_config
    if init is not None:
        init(exp)
    say(f"run directory: {run_dir}")
    say(
        f"model: {type(exp.model).__name__} {exp.model.num_parameters():,} parameters | "
        f"process: {exp.process.kind} | domain: {exp.domain.name} "
        f"(vocab {exp.vocab.size}) | device: {resolve_device(tcfg.device)}"
        + (f" | {dist.world_size} ranks" if dist.enabled else "")
    )
    from seqdiff.train.trainer import Trainer  # lazy: sampling and evaluation never import the loop

    trainer = Trainer(
        exp.model, exp.process, exp.data, tcfg, run_dir=run_dir, vocab=exp.vocab, run_config=run_config,
        seed=int(cfg.seed), artifacts=exp.domain, log=say, label_dropout=exp.label_dropout,
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
    report = evaluate_run(exp, ev, run_dir=run_dir)
    report["train"] = {"steps": result.step, "seconds": result.seconds, "stopped_early": result.stopped_early,
                       "world_size": dist.world_size}
    print(f"results: {run_dir / 'eval.json'}")
    atomic_write_json(run_dir / "eval.json", report)


# --------------------------------------------------------------------------- sample / eval
def _experiment_from_checkpoint(cfg: DictConfig) -> Run:
    """The checkpoint's run with the user's overrides on top of its own configuration
    (:func:`seqdiff.run_config.reopened_config`: which sections a checkpoint fixes)."""
    # The checkpoint fixes domain and backbone (overriding them is refused below, by name).
    check_arguments(_plain(cfg), skip=("domain", "backbone"))
    if not cfg.checkpoint:
        raise ConfigError(f"{cfg.command}: give checkpoint=RUN_DIR (a run directory or a checkpoint directory)")
    device = resolve_device(cfg.trainer.device)
    exp = load(cfg.checkpoint, ema=bool(cfg.ema), device=device, trust_code=bool(cfg.trust_code))
    user = user_overrides(_overrides(), _groups_of_this_composition())
    if any(o.group and o.key == "experiment" for o in user):
        raise ConfigError(f"{cfg.command}: the checkpoint's configuration is the run's own; name single groups "
                          "or keys instead of experiment=... (e.g. data.fasta=FILE, sampler=eags)")
    composed = _plain(cfg)
    config = reopened_config(exp.config, composed, user, checkpoint_choices(exp.config, config_dir()),
                             command=cfg.command)
    reconfigure(exp, config)
    _set_threads(composed["trainer"])  # this machine's, like trainer.device above
    return exp


def _groups_of_this_composition() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    try:
        return [g for g in HydraConfig.get().runtime.choices if not str(g).startswith("hydra/")]
    except ValueError:
        return []


def data_condition(exp: Run, n: int, seed: int):
    """Padded data (text in pad mode, whole records) conditions unconditional samples on
    lengths drawn from the data. Sampling must not need the corpus, so if the data cannot
    be opened here (moved files), samples are full length and a note says so."""
    try:
        return exp.data.sample_condition(n, seed)
    except (SeqdiffError, OSError) as e:
        print(f"note: sampling at full length; the run's data is not readable here ({e})", file=sys.stderr)
        return None


def sample(cfg: DictConfig) -> None:
    exp = _experiment_from_checkpoint(cfg)
    num = int(cfg.num_samples)
    sources = _sources(cfg.condition)
    decode = exp.domain.decode
    if sources:  # a pair run: each source num_samples times, its target generated
        data = exp.data
        if not isinstance(data, PairedSource):
            raise ConfigError("condition.source: this run was not trained on pairs (data=text_pairs)")
        tl = cfg.condition.get("target_length")
        condition = data.source_condition(sources, num, target_length=None if tl is None else int(tl), seed=int(cfg.seed))
        num, decode = condition.tokens.shape[0], data.decode_target
    else:
        condition = condition_from_config(exp.domain, cfg.condition, cfg.length or exp.default_length())
        if condition is None and not cfg.length:
            condition = data_condition(exp, num, int(cfg.seed))
    length = condition.length if condition is not None else (cfg.length or exp.default_length())
    condition = with_keywords(exp.domain, cfg.condition, condition, length)
    sampler = exp.build_sampler()
    check_length(exp, sampler, length, min(num, int(cfg.sample_batch_size)))  # before any sampling
    t0 = time.perf_counter()
    label = cfg.condition.get("label")  # NAME, FIELD:NAME (several: quoted), or {field: name, ...}
    if isinstance(label, DictConfig):
        label = OmegaConf.to_container(label, resolve=True)
    scale = float((cfg.get("guidance") or {}).get("scale") or 0.0)
    exp.denoiser(label if label not in (None, "") else None, scale)  # an unknown label fails here, before sampling
    out = exp.generate(num, length, condition, sampler=sampler, seed=int(cfg.seed), batch_size=int(cfg.sample_batch_size),
                       label=label if label not in (None, "") else None, guidance=scale)
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
    user = user_overrides(_overrides(), _groups_of_this_composition())
    ev = apply_protocol(exp, eval_config(cfg), num_samples_given=any(o.key == "eval.num_samples" for o in user))
    report = evaluate_run(exp, ev, run_dir=run_dir)
    print(f"results: {run_dir / 'eval.json'}")
    try:
        atomic_write_json(run_dir / "eval.json", report)
    except OSError as e:
        print(f"warning: could not write {run_dir / 'eval.json'}: {e}", file=sys.stderr)
