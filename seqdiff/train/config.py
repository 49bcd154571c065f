"""The trainer's settings (``configs/trainer/*.yaml``) and their validation.

Every problem is one :class:`~seqdiff.errors.ConfigError` line naming the key
(``trainer: lr must be > 0``); the ranges are the CLI's (``seqdiff/cli/validate.py``), so a
config built in Python is held to the same rules as one given on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from seqdiff.errors import ConfigError
from seqdiff.utils.instantiate import check_types


@dataclass
class TrainerConfig:
    """Optimisation and bookkeeping settings (``configs/trainer/*.yaml``)."""

    steps: int = 2000
    batch_size: int = 64
    grad_accum: int = 1
    lr: float = 3e-3
    warmup: int = 100
    lr_decay: str = "cosine"
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.98)
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    ema: float = 0.999
    precision: str = "auto"
    device: str = "auto"
    num_threads: int | None = None
    log_every: int = 50
    eval_every: int = 500
    eval_sequences: int = 128
    ckpt_every: int = 1000
    keep_last: int = 2
    max_time: float | None = None
    on_nan: str = "stop"
    max_nan_skips: int = 10
    progress: bool = True
    compile: bool = False
    tensorboard: bool = True
    resume: str = "auto"
    parallel: str = "ddp"  # with several ranks (torchrun): ddp (replicated) | fsdp (sharded, FSDP2)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        for ok, msg in self._checks():
            if not ok:
                raise ConfigError(f"trainer: {msg}")

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (self.steps >= 0, "steps must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.warmup >= 0, "warmup must be >= 0"),
            (0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio must be in [0, 1]"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (len(self.betas) == 2 and all(0.0 <= b < 1.0 for b in self.betas), "betas must be two numbers in [0, 1)"),
            (self.adam_eps > 0, "adam_eps must be > 0"),
            (0.0 <= self.ema < 1.0, "ema must be in [0, 1) (0 disables)"),
            (self.precision in ("auto", "fp32", "bf16"), "precision must be auto, fp32 or bf16"),
            (self.num_threads is None or self.num_threads >= 1, "num_threads must be >= 1 (or null: torch's default)"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.eval_every >= 0, "eval_every must be >= 0 (0: no validation during training)"),
            (self.eval_sequences >= 1, "eval_sequences must be >= 1"),
            (self.ckpt_every >= 0, "ckpt_every must be >= 0 (0: only the final checkpoint)"),
            (self.keep_last >= 0, "keep_last must be >= 0 (0 keeps every checkpoint)"),
            (self.max_time is None or self.max_time > 0, "max_time must be > 0 (or null: no limit)"),
            (self.on_nan in ("stop", "skip"), "on_nan must be stop or skip"),
            (self.max_nan_skips >= 0, "max_nan_skips must be >= 0"),
            (self.resume in ("auto", "never", "required"), "resume must be auto, never or required"),
            (self.lr_decay in ("constant", "cosine", "linear"), "lr_decay must be constant, cosine or linear"),
            (self.parallel in ("ddp", "fsdp"), "parallel must be ddp or fsdp"),
        ]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"trainer: unknown keys {unknown}; valid keys: {sorted(known)}")
        d = dict(d)
        check_types(cls, d, section="trainer")
        return cls(**d)
