"""A run assembled from its resolved configuration: domain, backbone, process, sampler, data.

The configuration is a plain dict (Hydra composes it in the CLI; a checkpoint stores
it in ``config.json``), so the same function rebuilds a run at training time and when
:func:`load` reopens a checkpoint.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from seqdiff.backbones.base import Backbone
from seqdiff.errors import CheckpointError, ConfigError
from seqdiff.samplers.base import Condition, SampleOutput, Sampler
from seqdiff.samplers.keywords import KeywordCondition, keyword_variants
from seqdiff.io.checkpoint import ARTIFACTS, Checkpoint, load_checkpoint
from seqdiff.utils.instantiate import TRUSTED_PREFIXES, instantiate, locate
from seqdiff.utils.seeding import derive_seed, generator
from seqdiff.vocab import VocabSpec

MODEL_SECTIONS = ("domain", "backbone", "process")


@dataclass
class Run:
    """Everything needed to train, sample and evaluate one run.

    ``data`` is built on first access, so sampling from a checkpoint never touches
    the training corpus.
    """

    config: dict
    domain: Any
    model: Backbone
    process: Any
    trusted: tuple[str, ...] | None = None
    checkpoint: Checkpoint | None = None
    weights: str | None = None
    _sampler_cfg: dict = field(default_factory=dict)

    @property
    def vocab(self) -> VocabSpec:
        return self.domain.vocab

    @cached_property
    def data(self) -> Any:
        if "data" not in self.config or self.config["data"] is None:
            raise ConfigError("data: this run has no data section")
        return instantiate(self.config["data"], section="data", trusted=self.trusted, domain=self.domain)

    def build_sampler(self, cfg: dict | None = None) -> Sampler:
        """The configured sampler (or ``cfg``), given this run's vocabulary and schedule."""
        cfg = dict(cfg if cfg is not None else self.config.get("sampler") or {})
        if "_target_" not in cfg:
            raise ConfigError("sampler: missing _target_")
        fn = locate(cfg["_target_"], section="sampler", trusted=self.trusted)
        extra: dict[str, Any] = {"vocab": self.vocab}
        params = inspect.signature(fn).parameters
        if "schedule" in params and "schedule" not in cfg:
            extra["schedule"] = getattr(self.process, "schedule", None)
        if "block_length" in params and cfg.get("block_length") is None:
            cfg["block_length"] = self.default_length()  # semi-AR windows are the trained length
        sampler = instantiate(cfg, section="sampler", trusted=self.trusted, **extra)
        if not isinstance(sampler, Sampler):
            raise ConfigError(f"sampler: {cfg['_target_']} is not a seqdiff.samplers.Sampler")
        kinds, kind = tuple(sampler.process_kinds), self.process.kind  # a declared capability, not a class name
        if kind not in kinds:
            raise ConfigError(
                f"sampler: {type(sampler).__name__} cannot sample {'an' if kind[:1] in 'aeiou' else 'a'} {kind} process "
                f"(it declares process_kinds={list(kinds)}; "
                f"use sampler={'autoregressive' if kind == 'autoregressive' else 'ancestral'})"
            )
        return sampler

    @torch.no_grad()
    def generate(
        self,
        num_samples: int,
        length: int | None = None,
        condition: Condition | None = None,
        *,
        sampler: Sampler | None = None,
        seed: int = 0,
        batch_size: int | None = None,
        device: torch.device | str | None = None,
    ) -> SampleOutput:
        """Draw ``num_samples`` sequences (batched), optionally under a fixed-token condition."""
        sampler = sampler or self.build_sampler()
        length = length or (condition.length if condition is not None else self.default_length())
        device = device or next(self.model.parameters()).device
        batch_size = batch_size or num_samples
        was_training = self.model.training
        self.model.eval()
        outs = []
        denoiser = self.process.denoiser(self.model)
        try:
            for i, start in enumerate(range(0, num_samples, batch_size)):
                n = min(batch_size, num_samples - start)
                cond = _rows(condition, start, n)
                gen = generator(seed, i, 3, device=device)
                if isinstance(cond, KeywordCondition):
                    # Keywords are placed by this model (one call per keyword), per batch,
                    # from their own stream so the sampler's draws do not depend on placement.
                    try:
                        cond = cond.resolve(denoiser, n, vocab=self.vocab, device=device,
                                            generator=generator(seed, i, 5, device=device))
                    except ValueError as e:  # e.g. no room left: a user-facing one-liner
                        raise ConfigError(f"condition.{e}") from None
                outs.append(sampler.sample(denoiser, n, length, cond, generator=gen, device=device))
        finally:
            self.model.train(was_training)
        trace = {}
        for key, first in outs[0].trace.items():  # per-step diagnostics: [steps, batch] -> join batches
            if isinstance(first, torch.Tensor) and all(isinstance(o.trace.get(key), torch.Tensor) for o in outs):
                trace[key] = torch.cat([o.trace[key] for o in outs], dim=-1)
        return SampleOutput(
            tokens=torch.cat([o.tokens for o in outs]),
            nfe=torch.cat([o.nfe for o in outs]),
            calls=sum(o.calls for o in outs),
            steps=max(o.steps for o in outs),
            trace=trace,
        )

    def generate_with_keywords(self, keywords: list[str], num_samples: int, length: int | None = None, *,
                               placement: str = "model", **kw) -> SampleOutput:
        """Samples that contain every keyword (hard constraints, placed by the model):
        ``run.generate_with_keywords(["cat", "dog"], 8, 64, sampler=run.build_sampler(cfg))``."""
        length = length or self.default_length()
        words = [keyword_variants(self.domain, w, where=f"keywords[{i}]") for i, w in enumerate(keywords)]
        base = Condition.unconditional(length)
        cond = KeywordCondition(base.tokens, base.fixed, keywords=words, placement=placement)
        return self.generate(num_samples, length, cond, **kw)

    def default_length(self) -> int:
        data_cfg = self.config.get("data") or {}
        if "seq_len" in data_cfg:
            return int(data_cfg["seq_len"])
        raise ConfigError("sampling: no length given and the data config has no seq_len")


def _rows(condition: Condition | None, start: int, n: int) -> Condition | None:
    """Rows ``start .. start+n`` of a per-sample (2-D) condition; a shared one as is."""
    if condition is None or condition.tokens.dim() == 1:
        return condition
    sl = slice(start, start + n)
    valid = None if condition.valid is None else condition.valid[sl]
    if isinstance(condition, KeywordCondition):
        return dataclasses.replace(condition, tokens=condition.tokens[sl], fixed=condition.fixed[sl], valid=valid)
    return Condition(condition.tokens[sl], condition.fixed[sl], valid)


def build_run(
    config: dict, *, trusted: tuple[str, ...] | None = None, artifacts_dir: str | os.PathLike | None = None
) -> Run:
    """Instantiate domain, backbone and process from a resolved config dict.

    ``artifacts_dir``: a checkpoint's ``artifacts/`` folder; a domain whose constructor
    takes ``artifacts_dir`` (e.g. a tokenizer) loads its files from there instead of
    the paths in the config, which may not exist on this machine.
    """
    for key in MODEL_SECTIONS:
        if not isinstance(config.get(key), dict):
            raise ConfigError(f"config: missing section '{key}'")
    domain_extra: dict[str, Any] = {}
    if artifacts_dir is not None:
        target = locate(config["domain"].get("_target_"), section="domain", trusted=trusted)
        if "artifacts_dir" in inspect.signature(target).parameters:
            domain_extra["artifacts_dir"] = str(artifacts_dir)
    domain = instantiate(config["domain"], section="domain", trusted=trusted, **domain_extra)
    if not isinstance(getattr(domain, "vocab", None), VocabSpec):
        raise ConfigError("domain: the domain object must expose a VocabSpec as .vocab")
    vocab = domain.vocab
    backbone_extra: dict[str, Any] = {"vocab_size": vocab.size}
    target = locate(config["backbone"].get("_target_"), section="backbone", trusted=trusted)
    if "vocab" in inspect.signature(target).parameters:  # e.g. Caduceus needs the complement map
        backbone_extra["vocab"] = vocab
    # Weight initialisation depends only on the run seed, not on what ran before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(int(config.get("seed", 0)), 0x1217))
        model = instantiate(config["backbone"], section="backbone", trusted=trusted, **backbone_extra)
    if not isinstance(model, Backbone):
        raise ConfigError(f"backbone: {type(model).__name__} does not implement seqdiff.backbones.Backbone")
    process = instantiate(config["process"], section="process", trusted=trusted, vocab=vocab)
    if process.kind == "autoregressive" and not model.causal:
        raise ConfigError("backbone: the autoregressive process needs a causal backbone (backbone.causal=true)")
    if process.kind != "autoregressive" and model.causal:
        raise ConfigError("backbone: a causal backbone cannot be trained with the masked-diffusion process")
    if bool(getattr(process, "time_conditioning", False)) != bool(model.time_conditioning):
        raise ConfigError(
            f"process.time_conditioning={process.time_conditioning} but the backbone was built with "
            f"time_conditioning={model.time_conditioning}; set both the same"
        )
    return Run(config=config, domain=domain, model=model, process=process, trusted=trusted)


def _targets(node: Any, key: str = "") -> list[tuple[str, Any]]:
    """Every ``_target_`` of a config, with its dotted key (``backbone._target_``)."""
    if isinstance(node, dict):
        return [hit for k, v in node.items() for hit in
                ([(f"{key}{k}", v)] if k == "_target_" else _targets(v, f"{key}{k}."))]
    if isinstance(node, list):
        return [hit for i, v in enumerate(node) for hit in _targets(v, f"{key[:-1]}[{i}].")]
    return []


def load(
    path: str | os.PathLike,
    *,
    ema: bool = True,
    device: torch.device | str | None = None,
    trust_code: bool = False,
    verify: bool = True,
) -> Run:
    """Open a checkpoint (or run directory) ready to sample and evaluate.

    ``trust_code``: a checkpoint names the classes it is built from (``_target_``), and
    importing a module runs it; by default only ``seqdiff.`` and ``recipes.`` targets are
    imported. Pass True for a checkpoint of your own package (e.g. a custom backbone).

    >>> run = seqdiff.load("runs/quickstart")                       # doctest: +SKIP
    >>> out = run.generate(8)                                        # doctest: +SKIP
    >>> print(run.domain.decode(out.tokens[0]))                      # doctest: +SKIP
    """
    ckpt = load_checkpoint(path, verify=verify)
    trusted = None if trust_code else TRUSTED_PREFIXES
    if trusted is not None:
        for key, target in _targets(ckpt.config):
            if not (isinstance(target, str) and target.startswith(trusted)):
                raise CheckpointError(
                    f"{ckpt.path}/config.json: {key} is {target!r}, outside {', '.join(trusted)}; importing it runs "
                    "its code: if you trust this checkpoint, pass trust_code=True (seqdiff sample/eval: trust_code=true)"
                )
    art = ckpt.path / ARTIFACTS
    exp = build_run(ckpt.config, trusted=trusted, artifacts_dir=art if art.is_dir() else None)
    diff = exp.vocab.describe_difference(ckpt.vocab)
    if diff:
        raise CheckpointError(f"{ckpt.path}/config.json: vocabulary differs from the one its domain builds ({diff})")
    exp.weights = ckpt.load_model(exp.model, ema=ema)
    exp.checkpoint = ckpt
    if device is not None:
        exp.model.to(device)
    exp.model.eval()
    return exp
