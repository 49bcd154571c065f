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
from seqdiff.data import DataSource
from seqdiff.domains import Domain
from seqdiff.ens_reference import reference_loader
from seqdiff.errors import CheckpointError, ConfigError
from seqdiff.labels import LabelSpec
from seqdiff.processes.base import Process
from seqdiff.samplers.base import Condition, SampleOutput, Sampler, SamplingContext
from seqdiff.samplers.guidance import GuidedDenoiser
from seqdiff.samplers.keywords import KeywordCondition, keyword_variants
from seqdiff.io.checkpoint import ARTIFACTS, Checkpoint, load_checkpoint
from seqdiff.utils.instantiate import TRUSTED_PREFIXES, instantiate, locate
from seqdiff.utils.seeding import derive_seed, generator
from seqdiff.vocab import VocabSpec

MODEL_SECTIONS = ("domain", "backbone", "process")
#: each section's contract: ``section: (class, its dotted name)``, named in the build errors
CONTRACTS: dict[str, tuple[type, str]] = {
    "domain": (Domain, "seqdiff.domains.Domain"),
    "backbone": (Backbone, "seqdiff.backbones.Backbone"),
    "process": (Process, "seqdiff.processes.Process"),
    "data": (DataSource, "seqdiff.data.DataSource"),
    "sampler": (Sampler, "seqdiff.samplers.Sampler"),
}


def check_contract(section: str, obj: Any, target: Any = None) -> None:
    """One-line :class:`ConfigError` unless ``obj`` implements ``section``'s contract."""
    cls, name = CONTRACTS[section]
    if not isinstance(obj, cls):
        what = target if isinstance(target, str) else f"{type(obj).__module__}.{type(obj).__qualname__}"
        raise ConfigError(f"{section}: {what} does not implement {name} (subclass it; see docs/extending.md)")


@dataclass
class Run:
    """Everything needed to train, sample and evaluate one run.

    ``data`` is built on first access, so sampling from a checkpoint never touches
    the training corpus.
    """

    config: dict
    domain: Domain
    model: Backbone
    process: Process
    trusted: tuple[str, ...] | None = None
    checkpoint: Checkpoint | None = None
    weights: str | None = None
    _sampler_cfg: dict = field(default_factory=dict)

    @property
    def vocab(self) -> VocabSpec:
        return self.domain.vocab

    @property
    def labels(self) -> LabelSpec | None:
        """The label vocabulary the model was trained with (``label.vocab``), or None."""
        return label_spec(self.config)

    @property
    def label_dropout(self) -> float:
        """``label.dropout``: the probability a training row's labels become "no label"."""
        return float((self.config.get("label") or {}).get("dropout") or 0.0)

    @cached_property
    def data(self) -> DataSource:
        if "data" not in self.config or self.config["data"] is None:
            raise ConfigError("data: this run has no data section")
        data = instantiate(self.config["data"], section="data", trusted=self.trusted, domain=self.domain)
        check_contract("data", data, self.config["data"].get("_target_"))
        return data

    def sampling_context(self) -> SamplingContext:
        """What this run tells a sampler (:meth:`Sampler.context_defaults`)."""
        seq_len = (self.config.get("data") or {}).get("seq_len")
        return SamplingContext(vocab=self.vocab, schedule=self.process.schedule,
                               trained_length=None if seq_len is None else int(seq_len), process_kind=self.process.kind)

    def build_sampler(self, cfg: dict | None = None) -> Sampler:
        """The configured sampler (or ``cfg``) with this run's vocabulary, and, for the keys the
        config leaves unset, what the sampler class asks of the run
        (:meth:`Sampler.context_defaults`: the process's schedule, the trained length)."""
        cfg = dict(cfg if cfg is not None else self.config.get("sampler") or {})
        if "_target_" not in cfg:
            raise ConfigError("sampler: missing _target_")
        cls = locate(cfg["_target_"], section="sampler", trusted=self.trusted)
        if not (isinstance(cls, type) and issubclass(cls, Sampler)):
            raise ConfigError(f"sampler: {cfg['_target_']} does not implement seqdiff.samplers.Sampler "
                              "(subclass it; see docs/extending.md)")
        defaults = {k: v for k, v in cls.context_defaults(self.sampling_context()).items() if cfg.get(k) is None}
        sampler = instantiate(cfg, section="sampler", trusted=self.trusted, vocab=self.vocab, **defaults)
        check_contract("sampler", sampler, cfg["_target_"])
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
        label: Any = None,
        guidance: float | None = None,
    ) -> SampleOutput:
        """Draw ``num_samples`` sequences (batched), optionally under a fixed-token condition.

        ``label`` (or ``condition.label``): the label every sample is drawn under, a name,
        ``{field: name}`` or ids ``[F]`` (:mod:`seqdiff.labels`); ``guidance``: the
        classifier-free guidance scale :math:`w` (:mod:`seqdiff.samplers.guidance`; None or 0:
        the conditional model itself). A run trained without labels refuses both; a labelled
        run sampled without a label draws from its unconditional ("no label") model."""
        sampler = sampler or self.build_sampler()
        length = length or (condition.length if condition is not None else self.default_length())
        device = device or next(self.model.parameters()).device
        batch_size = batch_size or num_samples
        was_training = self.model.training
        self.model.eval()
        outs = []
        denoiser = self.denoiser(label if label is not None else getattr(condition, "label", None), guidance)
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

    def denoiser(self, label: Any = None, guidance: float | None = None):
        """The sampler-facing denoiser: unconditional (``label`` None), conditional on
        ``label``, or guided at scale ``guidance`` (one-line ``ConfigError`` for an unknown
        label, listing the known ones)."""
        if label is None:
            if guidance:
                raise ConfigError("guidance.scale: guidance needs a label (condition.label=NAME)")
            return self.process.denoiser(self.model)
        spec = self.labels
        if spec is None:
            raise ConfigError("condition.label: this run was trained without labels")
        if isinstance(label, torch.Tensor):
            ids = spec.check(label.reshape(1, -1), where="condition.label")[0]
        else:
            try:
                ids = spec.encode(label, where="condition.label")
            except ValueError as e:
                raise ConfigError(str(e)) from None
        process, model = self.process, self.model
        if not guidance:
            return process.denoiser(model, label=ids)

        def labelled(x_t, rate, valid, positions, y):
            return process.denoiser(model, label=y)(x_t, rate, valid, positions)

        try:
            return GuidedDenoiser(labelled, ids, spec.null(), float(guidance), self.vocab)
        except ValueError as e:
            raise ConfigError(f"guidance.scale: {e}") from None

    def generate_with_keywords(self, keywords: list[str], num_samples: int, length: int | None = None, *,
                               placement: str = "model", **kw) -> SampleOutput:
        """Samples that contain every keyword (hard constraints, placed by the model):
        ``run.generate_with_keywords(["cat", "dog"], 8, 64, sampler=run.build_sampler(cfg))``."""
        length = length or self.default_length()
        words = [keyword_variants(self.domain, w, where=f"keywords[{i}]") for i, w in enumerate(keywords)]
        given = Condition.unconditional(length)
        cond = KeywordCondition(given.tokens, given.fixed, keywords=words, placement=placement)
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


def label_spec(config: dict) -> LabelSpec | None:
    """The run's label vocabulary (``label.vocab``: field -> names), or None (no labels)."""
    vocab = (config.get("label") or {}).get("vocab")
    if not vocab:
        return None
    try:
        return LabelSpec.of(vocab)
    except ValueError as e:
        raise ConfigError(f"label.vocab: {e}") from None


def build_run(
    config: dict, *, trusted: tuple[str, ...] | None = None, artifacts_dir: str | os.PathLike | None = None,
    resolve_labels: bool = False,
) -> Run:
    """Instantiate domain, backbone and process from a resolved config dict.

    Each is checked against its contract (:data:`CONTRACTS`), the backbone against what the
    process needs (:meth:`Process.check_backbone`). ``artifacts_dir``: a checkpoint's
    ``artifacts/`` folder, passed to a domain that declares ``uses_artifacts`` (e.g. a
    trained tokenizer), which loads its files from there instead of the paths in the
    config, which may not exist on this machine.

    Labels: a run whose ``label.vocab`` is set is labelled (its backbone is built with
    ``label_sizes``). ``resolve_labels`` (training): the data is built first, and if it
    declares labels (:attr:`DataSource.labels`) their vocabulary is written into
    ``config["label"]["vocab"]``, which the checkpoint then stores. A labelled run on a
    backbone or process that takes no labels is a one-line :class:`ConfigError`.
    """
    for key in MODEL_SECTIONS:
        if not isinstance(config.get(key), dict):
            raise ConfigError(f"config: missing section '{key}'")
    domain_extra: dict[str, Any] = {}
    target = locate(config["domain"].get("_target_"), section="domain", trusted=trusted)
    if artifacts_dir is not None and isinstance(target, type) and issubclass(target, Domain) and target.uses_artifacts:
        domain_extra["artifacts_dir"] = str(artifacts_dir)
    domain = instantiate(config["domain"], section="domain", trusted=trusted, **domain_extra)
    check_contract("domain", domain, config["domain"].get("_target_"))
    if not isinstance(domain.vocab, VocabSpec):
        raise ConfigError("domain: the domain object must expose a VocabSpec as .vocab")
    vocab = domain.vocab
    data = _resolve_labels(config, domain, trusted) if resolve_labels else None
    labels = label_spec(config)
    backbone_extra: dict[str, Any] = {"vocab_size": vocab.size}
    target = locate(config["backbone"].get("_target_"), section="backbone", trusted=trusted)
    params = inspect.signature(target).parameters
    if "vocab" in params:  # e.g. Caduceus needs the complement map
        backbone_extra["vocab"] = vocab
    if labels is not None:
        if "label_sizes" not in params:
            raise ConfigError(f"backbone: {config['backbone'].get('_target_')} takes no labels, but the run has label "
                              f"fields {list(labels.field_names)} (labelled backbones: dit, dit_conv, bimamba, caduceus_ps, caduceus_ph)")
        backbone_extra["label_sizes"] = list(labels.sizes)
    # Weight initialisation depends only on the run seed, not on what ran before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(int(config.get("seed", 0)), 0x1217))
        model = instantiate(config["backbone"], section="backbone", trusted=trusted, **backbone_extra)
    check_contract("backbone", model, config["backbone"].get("_target_"))
    process = build_process(config["process"], vocab, model, trusted=trusted)
    if labels is not None and not process.takes_labels:
        raise ConfigError(f"process: the {process.kind} process takes no labels (use process=mdlm)")
    if labels is not None and getattr(process, "corruption", "uniform") == "ens":
        raise ConfigError("process.corruption: ENS corruption does not take labels yet (process.corruption=uniform)")
    run = Run(config=config, domain=domain, model=model, process=process, trusted=trusted)
    if data is not None:
        run.__dict__["data"] = data  # the cached property: built once, here
    return run


def _resolve_labels(config: dict, domain: Domain, trusted: tuple[str, ...] | None) -> DataSource | None:
    """Build the data (for training) and record its label vocabulary in ``config["label"]``."""
    if not isinstance(config.get("data"), dict):
        return None
    dropout = float((config.get("label") or {}).get("dropout") or 0.0)
    data = instantiate(config["data"], section="data", trusted=trusted, domain=domain)
    check_contract("data", data, config["data"].get("_target_"))
    spec = data.labels
    if spec is not None and not isinstance(spec, LabelSpec):
        raise ConfigError(f"data: {config['data'].get('_target_')}.labels must be a seqdiff.labels.LabelSpec or None")
    given = label_spec(config)
    if spec is None:
        if given is not None or dropout > 0:
            raise ConfigError(f"label: the data ({config['data'].get('_target_')}) has no labels; remove label.* "
                              "or give the data a label source (e.g. data.label_column=5)")
        return data
    if given is not None and given != spec:
        raise ConfigError(f"label.vocab: {given.to_dict()} differs from the data's labels {spec.to_dict()}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"label.dropout: expected a number in [0, 1), got {dropout}")
    config["label"] = {**(config.get("label") or {}), "dropout": dropout, "vocab": spec.to_dict()}
    return data


def build_process(cfg: dict, vocab: VocabSpec, model: Backbone, *, trusted: tuple[str, ...] | None = None) -> Process:
    """The ``process`` section, checked against its contract and ``model``, with the loader
    of its reference model (if it reads one) bound: loaded on first use, never here."""
    process = instantiate(cfg, section="process", trusted=trusted, vocab=vocab)
    check_contract("process", process, cfg.get("_target_"))
    process.check_backbone(model)
    if process.reference is not None:
        process.bind_reference(reference_loader(process.reference, vocab, load))
    return process


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
