"""TrainerConfig: every out-of-range value is one ConfigError line naming its key, the same
ranges the CLI enforces (seqdiff/cli/validate.py), for configs built in Python too."""

from __future__ import annotations

import pytest

from seqdiff.errors import ConfigError
from seqdiff.train import TrainerConfig

BAD = [
    ("steps", -1), ("batch_size", 0), ("grad_accum", 0), ("lr", 0.0), ("warmup", -1), ("min_lr_ratio", 1.5),
    ("min_lr_ratio", -0.1), ("weight_decay", -0.01), ("betas", (0.9, 1.0)), ("betas", (0.9,)), ("adam_eps", 0.0),
    ("ema", 1.0), ("precision", "fp16"), ("num_threads", 0), ("log_every", 0), ("eval_every", -1),
    ("eval_sequences", 0), ("ckpt_every", -5), ("keep_last", -1), ("max_time", 0.0), ("on_nan", "ignore"),
    ("max_nan_skips", -1), ("resume", "maybe"), ("lr_decay", "step"), ("parallel", "tp"),
]


@pytest.mark.parametrize("key,value", BAD, ids=[f"{k}={v}" for k, v in BAD])
def test_out_of_range_values_are_one_line_errors_naming_the_key(key, value):
    with pytest.raises(ConfigError) as e:
        TrainerConfig(**{key: value})
    msg = str(e.value)
    assert msg.startswith(f"trainer: {key} must ") and "\n" not in msg


def test_the_edges_of_the_ranges_are_accepted():
    TrainerConfig(steps=0, warmup=0, min_lr_ratio=0.0, weight_decay=0.0, betas=(0.0, 0.0), ema=0.0, eval_every=0,
                  ckpt_every=0, keep_last=0, max_nan_skips=0, num_threads=1, max_time=1e-3, grad_clip=0.0)
    TrainerConfig(min_lr_ratio=1.0, grad_clip=-1.0, num_threads=None, max_time=None)
    assert TrainerConfig(betas=[0.9, 0.95]).betas == (0.9, 0.95)


def test_from_dict_checks_keys_and_types():
    with pytest.raises(ConfigError, match=r"^trainer: unknown keys \['stepz'\]; valid keys: \["):
        TrainerConfig.from_dict({"stepz": 3})
    with pytest.raises(ConfigError, match=r"^trainer.lr: expected a number"):
        TrainerConfig.from_dict({"lr": "fast"})
    assert TrainerConfig.from_dict({"steps": 3.0}).steps == 3  # an integral float for an int
