"""``seqdiff train ... init_from=RUN``: a new run that starts from another run's weights.

The typical source is an imported public checkpoint (``seqdiff import``; MDLM's DNA recipe
fine-tunes an MLM-pretrained Caduceus), but any seqdiff run works. What carries over:

- the **weights**: RUN's EMA weights when ``init_from_ema=true`` and RUN has them, else its
  raw weights (an import has only raw ones). They are loaded into the new model before the
  Trainer is built, so the EMA starts from them; the optimizer, schedule and step start fresh;
- the **backbone**: RUN's backbone section replaces the configured one (the weights only fit
  RUN's architecture, and a key such as Caduceus' ``swap_halves`` changes the function without
  changing any shape); ``backbone.KEY=VALUE`` on the command line still applies on top;
- nothing else: domain, data, process, sampler and trainer are this run's. The vocabularies must
  be identical (ids, specials, complement).

A resumed run (``run_dir`` already holds a valid checkpoint and ``trainer.resume`` is not
``never``) does not load RUN again: it continues from its own checkpoint like any run, with the
same backbone section (so the resume check sees the config it saved). ``init_from`` is recorded
in the run config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from seqdiff.errors import CheckpointError, ConfigError
from seqdiff.io.checkpoint import latest_valid_checkpoint, load_checkpoint
from seqdiff.utils.instantiate import instantiate


def prepare_init(cfg: DictConfig, run_config: dict, run_dir: Path, tcfg: Any, overrides: list[str],
                 say: Callable[[str], None]) -> Callable[[Any], None] | None:
    """Rewrite ``run_config['backbone']`` for ``init_from``; returns the weight loader to call on
    the built experiment, or None (no init_from, or a resume)."""
    source = cfg.get("init_from")
    if not source:
        return None
    ckpt = load_checkpoint(source)
    user = [o.lstrip("+~") for o in overrides]
    if any(o.split("=")[0] == "backbone" for o in user):
        raise ConfigError(f"init_from={source}: the backbone comes from that run; drop backbone=... "
                          "(backbone.KEY=VALUE overrides still apply)")
    backbone = dict(ckpt.config.get("backbone") or {})
    if not backbone:
        raise CheckpointError(f"{ckpt.path}/config.json: no backbone section to initialise from")
    for o in user:
        key = o.split("=")[0]
        if key.startswith("backbone."):
            leaf = key[len("backbone."):]
            if "." in leaf or leaf not in backbone:
                raise ConfigError(f"{key}: {ckpt.path}'s backbone ({backbone.get('_target_')}) has no key {leaf!r}")
            value = OmegaConf.select(cfg, key)
            backbone[leaf] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    # The vocabularies must match before RUN's backbone is built on this run's one.
    vocab = instantiate(run_config["domain"], section="domain").vocab
    diff = vocab.describe_difference(ckpt.vocab)
    if diff:
        raise CheckpointError(f"init_from={source}: its vocabulary differs from this run's ({diff})")
    run_config["backbone"] = backbone
    use_ema = bool(cfg.get("init_from_ema", True))
    run_config["init_from"] = {"run": str(ckpt.path), "step": ckpt.step, "ema": use_ema}
    if tcfg.resume != "never" and latest_valid_checkpoint(run_dir / "checkpoints")[0] is not None:
        say(f"init_from: not applied, resuming {run_dir} from its own checkpoint")
        return None

    def load_weights(exp: Any) -> None:
        which = ckpt.load_model(exp.model, ema=use_ema)
        say(f"init_from: {ckpt.path} ({which} weights, step {ckpt.step}); backbone {backbone.get('_target_')}; "
            "new optimizer and schedule")

    return load_weights
