"""Range checks of the numeric arguments of ``seqdiff train / sample / eval``: one table.

:data:`RANGES` maps each key's full dotted name to the values it accepts;
:func:`check_arguments` walks the composed configuration and reports the first bad
value as one line, ``<key>: expected <range>, got <value>`` (exit status 2). A key the
composed sections do not have (another backbone, another data source) is skipped, and
the same name means the same thing in every config group that has it. Constructors keep
their own checks for the Python API; this table is what the CLI says first, by full key
name. Relations between keys (``condition.motif_at`` against the length, a length
against the model: :mod:`seqdiff.cli.length`) are checked where both are known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from seqdiff.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Integers or numbers between ``low`` and ``high`` (closed unless ``*_open``);
    ``null`` says what null means when it is allowed; ``words`` are accepted strings;
    ``each``: a list whose every element is in range; ``boolean``: true or false only."""

    integer: bool = True
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    null: str | None = None
    words: tuple[str, ...] = ()
    finite: bool = True
    each: bool = False
    boolean: bool = False

    def describe(self) -> str:
        if self.boolean:
            return "true or false"
        what = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            what += f" in {'(' if self.low_open else '['}{_fmt(self.low)}, {_fmt(self.high)}{')' if self.high_open else ']'}"
        elif self.low is not None:
            what += f" {'>' if self.low_open else '>='} {_fmt(self.low)}"
        elif self.high is not None:
            what += f" {'<' if self.high_open else '<='} {_fmt(self.high)}"
        for w in self.words:
            what += f" or {w}"
        if self.null is not None:
            what += f" or null ({self.null})"
        return what

    def accepts(self, value: Any) -> bool:
        if self.boolean:
            return isinstance(value, bool)
        if value is None:
            return self.null is not None
        if isinstance(value, str):
            return value in self.words
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if math.isnan(value) or (self.finite and math.isinf(value)):
            return False
        if self.integer and not float(value).is_integer():
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True


def ints(low: float | None = None, high: float | None = None, **kw: Any) -> Range:
    return Range(True, low, high, **kw)


def number(low: float | None = None, high: float | None = None, **kw: Any) -> Range:
    return Range(False, low, high, **kw)


FLAG = Range(boolean=True)
COUNT, STEPS = ints(1), ints(0)
SEED = ints(0)
PROBABILITY = number(0, 1)
FRACTION = number(0, 1, low_open=True)  # a share that must select something
POSITIVE = number(0, low_open=True)

RANGES: dict[str, Range] = {
    # ---- top level (configs/config.yaml): sample and eval
    "seed": SEED,
    "trust_code": FLAG,  # an opt-in to run a checkpoint's code: never a string that happens to be truthy
    "ema": FLAG,
    "num_samples": COUNT,
    "length": ints(1, null="data.seq_len"),
    "sample_batch_size": COUNT,
    "condition.motif_at": ints(null="no motif"),  # against the length: seqdiff.cli.condition
    "condition.target_length": ints(1, null="drawn from the training targets"),
    "condition.placement_temperature": number(0, null="1.0"),
    "label.dropout": number(0, 1, high_open=True),
    "guidance.scale": number(0),  # 0: the conditional model itself
    "eval.draws": COUNT,
    "eval.max_sequences": ints(1, null="all"),
    "eval.batch_size": COUNT,
    "eval.num_samples": ints(0),  # 0 skips the samples
    "eval.seed": SEED,
    "eval.judge_batch_size": COUNT,
    "eval.sampling_steps": ints(1, each=True),
    # ---- trainer (configs/trainer)
    "trainer.steps": STEPS,
    "trainer.batch_size": COUNT,
    "trainer.grad_accum": COUNT,
    "trainer.lr": POSITIVE,
    "trainer.warmup": STEPS,
    "trainer.min_lr_ratio": PROBABILITY,
    "trainer.weight_decay": number(0),
    "trainer.betas": number(0, 1, high_open=True, each=True),
    "trainer.adam_eps": POSITIVE,
    "trainer.grad_clip": number(null="no clipping"),  # <= 0: no clipping either
    "trainer.ema": number(0, 1, high_open=True),  # 0 disables
    "trainer.num_threads": ints(1, null="torch's default"),
    "trainer.log_every": COUNT,
    "trainer.eval_every": STEPS,  # 0: no validation during training
    "trainer.eval_sequences": COUNT,
    "trainer.ckpt_every": STEPS,  # 0: only the final checkpoint
    "trainer.keep_last": STEPS,  # 0 keeps every checkpoint
    "trainer.max_time": number(0, low_open=True, null="no limit"),
    "trainer.max_nan_skips": STEPS,
    # ---- data (configs/data)
    "data.seq_len": COUNT,
    "data.train_tokens": COUNT,
    "data.valid_tokens": COUNT,
    "data.test_tokens": COUNT,
    "data.record_length": COUNT,
    "data.order": STEPS,
    "data.concentration": POSITIVE,
    "data.motif_strength": PROBABILITY,
    "data.source_seed": SEED,
    "data.rc_augment": PROBABILITY,
    "data.max_n_fraction": PROBABILITY,
    "data.reference_windows": COUNT,
    "data.bed_split_column": ints(1, null="split by data.split_by"),
    "data.split_fractions": number(0, 1, each=True),
    "data.min_length": COUNT,
    "data.separators": COUNT,
    "data.max_source_tokens": ints(1, null="data.seq_len // 2"),
    "data.split_seed": SEED,
    "data.corpus.split_seed": SEED,
    "data.corpus.max_documents": ints(1, null="all"),
    "data.corpus.split_fractions": number(0, 1, each=True),
    "data.seed": SEED,
    # ---- backbone (configs/backbone)
    "backbone.d_model": COUNT,  # or null with a backbone.preset (FROM_PRESET below)
    "backbone.n_layers": COUNT,
    "backbone.n_heads": COUNT,
    "backbone.mlp_ratio": COUNT,
    "backbone.cond_dim": COUNT,
    "backbone.dropout": number(0, 1, high_open=True),
    "backbone.rope_base": POSITIVE,
    "backbone.d_state": COUNT,
    "backbone.d_conv": COUNT,
    "backbone.expand": COUNT,
    "backbone.dt_rank": ints(1, words=("auto",)),
    "backbone.norm_eps": POSITIVE,
    "backbone.pad_vocab_multiple": COUNT,
    "backbone.rc_augment": PROBABILITY,
    # ---- process (configs/process)
    "process.num_steps": STEPS,  # 0: continuous time
    "process.t_min": number(0, 1, high_open=True),
    "process.ens_temperature": number(0, finite=False),  # inf: uniform masking
    "process.ens_groups": COUNT,
    "process.schedule.eps": number(0, 1, high_open=True),
    # ---- sampler (configs/sampler)
    "sampler.num_steps": COUNT,
    "sampler.temperature": number(0),  # 0: argmax
    "sampler.top_p": FRACTION,
    "sampler.block_length": ints(1, null="the trained length"),
    "sampler.stride": ints(1, null="block_length // 2"),
    "sampler.refine_sweeps": STEPS,
    "sampler.refine_fraction": FRACTION,
    "sampler.renyi_alpha": POSITIVE,
    "sampler.tau": PROBABILITY,  # threshold: 1 reveals one token per step
    "sampler.gamma": number(0),  # entropy_bound: nats; 0 reveals one token per step
    "sampler.block_size": ints(1, null="one block"),  # threshold / entropy_bound semi-AR blocks
    "sampler.eta": number(0, null="the strategy's published default"),  # remdm: 0 is ancestral (<= 1 but for conf)
    "sampler.t_on": number(0, 1, low_open=True, high_open=True),
    "sampler.t_off": number(0, 1, low_open=True, high_open=True),
    "sampler.alpha_on": number(0, 1, low_open=True, high_open=True),
}


#: Shape keys a backbone with named sizes fills from its ``preset`` when they are null
#: (seqdiff/backbones/presets.py, e.g. ``backbone=dit_small``): null is accepted for them only
#: when ``backbone.preset`` names a size.
FROM_PRESET = ("backbone.d_model", "backbone.n_layers", "backbone.n_heads")


def check_arguments(cfg: Mapping[str, Any], *, skip: tuple[str, ...] = ()) -> None:
    """Raise a one-line :class:`ConfigError` for the first value of ``cfg`` (the composed
    configuration as plain containers) outside its key's range; keys under a section in
    ``skip`` are not checked (e.g. ``backbone`` at sample time: the checkpoint fixes it)."""
    preset = _lookup(cfg, "backbone.preset")[1]
    for key, rule in RANGES.items():
        if key.split(".")[0] in skip:
            continue
        found, value = _lookup(cfg, key)
        if not found:
            continue
        if value is None and key in FROM_PRESET:
            if preset is not None:
                continue
            raise ConfigError(f"{key}: expected {rule.describe()}, got None (null takes the size from "
                              "backbone.preset, which is not set)")
        check(key, value, rule)


def check(key: str, value: Any, rule: Range) -> Any:
    """``value`` if ``rule`` accepts it, else a :class:`ConfigError` naming ``key``."""
    if rule.each:
        if value is None and rule.null is not None:
            return value
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {_plural(rule.describe())}, got {value!r}")
        for i, v in enumerate(value):
            if not rule.accepts(v):
                raise ConfigError(f"{key}[{i}]: expected {rule.describe()}, got {v!r}")
        return value
    if not rule.accepts(value):
        raise ConfigError(f"{key}: expected {rule.describe()}, got {value!r}")
    return value


def _lookup(cfg: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _plural(what: str) -> str:
    return what.replace("an integer", "integers", 1).replace("a number", "numbers", 1)
