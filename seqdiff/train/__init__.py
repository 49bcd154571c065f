"""Training loop, EMA, learning-rate schedule and atomic checkpoints."""

from seqdiff.io.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from seqdiff.train.ema import EMA
from seqdiff.train.trainer import Trainer, TrainerConfig, TrainResult

__all__ = ["EMA", "Checkpoint", "TrainResult", "Trainer", "TrainerConfig", "load_checkpoint", "save_checkpoint"]
