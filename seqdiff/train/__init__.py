"""Training: the loop (``trainer``) and what it calls, one module each: ``config``,
``parallel`` (device, DDP/FSDP), ``optim``, ``lr``, ``ema``, ``resume``, ``metrics``, ``guards``."""

from seqdiff.io.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from seqdiff.train.ema import EMA
from seqdiff.train.trainer import Trainer, TrainerConfig, TrainResult

__all__ = ["EMA", "Checkpoint", "TrainResult", "Trainer", "TrainerConfig", "load_checkpoint", "save_checkpoint"]
