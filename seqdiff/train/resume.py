"""The resume policy: which checkpoint a run continues from, whether it may, and what it restores.

A run continues from the newest checkpoint under ``RUN/checkpoints`` that verifies
(``trainer.resume=auto``; ``required`` refuses to start fresh, ``never`` ignores them):

1. leftovers of saves that were killed are removed (they were never a checkpoint);
2. a newer checkpoint that does not verify is skipped with a warning naming its problem;
3. a checkpoint whose vocabulary, or ``domain`` / ``backbone`` / ``process`` section, differs
   from this run's is refused, naming the section: the weights would mean something else;
4. weights, EMA, optimizer moments and the step counter are restored (everything else a
   step depends on is a function of the step, see :mod:`seqdiff.train.trainer`), and
   ``metrics.jsonl`` loses the lines logged after that step, which the run logs again.

What a checkpoint holds for this (:func:`checkpoint_states`) is written and read here.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from seqdiff.errors import CheckpointError
from seqdiff.io.checkpoint import Checkpoint, latest_valid_checkpoint
from seqdiff.train.config import TrainerConfig
from seqdiff.train.ema import EMA
from seqdiff.train.parallel import Placement
from seqdiff.utils.io import atomic_write_text
from seqdiff.vocab import VocabSpec

FIXED_SECTIONS = ("domain", "backbone", "process")  # what the weights mean; the rest may change on resume


def remove_killed_saves(root: Path) -> list[Path]:
    """Remove what a save killed midway leaves under ``root``: the temporary directory it was
    assembling (``.tmp-step-*``), and the old copy of a re-saved step (``.old-step-*``) once
    the new one is in place. Returns what was removed."""
    if not root.is_dir():
        return []
    gone = [p for p in root.glob(".tmp-step-*") if p.is_dir()]
    for old in root.glob(".old-step-*"):
        step_dir = old.name[len(".old-"):].rsplit("-", 1)[0]  # .old-step-00000012-<pid>
        if old.is_dir() and (root / step_dir / "manifest.json").exists():
            gone.append(old)
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone


def latest_checkpoint(root: Path, *, required: bool, log: Callable[[str], None]) -> Checkpoint | None:
    """The newest checkpoint under ``root`` that verifies, warning about each newer one that
    does not; ``None`` when there is none, unless ``required``."""
    ckpt, problems = latest_valid_checkpoint(root)
    for p in problems:
        log(f"warning: skipping unusable checkpoint: {p}")
    if ckpt is None and required:
        raise CheckpointError(f"{root}: resume=required but no valid checkpoint found")
    return ckpt


def check_compatible(ckpt: Checkpoint, vocab: VocabSpec, run_config: dict) -> None:
    """Refuse (one line, naming the section) a checkpoint of another vocabulary or another
    ``domain`` / ``backbone`` / ``process``. A section absent on either side is not compared."""
    diff = vocab.describe_difference(ckpt.vocab)
    if diff:
        raise CheckpointError(f"{ckpt.path}/config.json: vocabulary differs from the config ({diff})")
    for k in FIXED_SECTIONS:
        saved, now = ckpt.config.get(k), run_config.get(k)
        if saved is not None and now is not None and saved != now:
            raise CheckpointError(
                f"{ckpt.path}/config.json: cannot resume, '{k}' config differs from this run's "
                f"(saved {json.dumps(saved, sort_keys=True)[:200]})"
            )


def checkpoint_states(optimizer_state: dict, *, step: int, nan_skips: int, ema: EMA | None,
                      config: TrainerConfig) -> dict:
    """The resume states a checkpoint stores beside the weights (``optimizer.*``,
    ``trainer_state.*``)."""
    return {
        "optimizer": optimizer_state,
        "trainer_state": {
            "step": step,
            "nan_skips": nan_skips,
            "ema": ema.state_dict() if ema is not None else None,
            "trainer": asdict(config),
        },
    }


def restore(ckpt: Checkpoint, placement: Placement, ema: EMA | None, optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    """Load weights, EMA and optimizer moments; returns ``(step, nan_skips)``."""
    placement.load_weights(ckpt)
    state = ckpt.state("trainer_state")
    if ema is not None:
        if not (ckpt.path / "ema.safetensors").exists():
            raise CheckpointError(f"{ckpt.path}: no ema.safetensors but this run uses EMA")
        ema.load(ckpt.tensors("ema"), state["ema"])
    placement.load_optimizer(optimizer, ckpt.state("optimizer"))
    return int(state["step"]), int(state.get("nan_skips", 0))


def truncate_metrics(path: Path, step: int) -> int:
    """Drop the lines of ``metrics.jsonl`` logged after ``step`` (and a last line cut short by
    a kill); returns how many lines are kept."""
    if not path.exists():
        return 0
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue
    atomic_write_text(path, "".join(l + "\n" for l in keep))
    return len(keep)
