"""Where the model trains: the device, its precision, and the ranks it is spread over.

One process: the model on one device. Several ranks (``torchrun``) with
``trainer.parallel=ddp``: every rank holds the whole model, wrapped in DDP, whose
all-reduce averages the gradients. With ``trainer.parallel=fsdp``: parameters, gradients
and Adam moments are sharded over the ranks (FSDP2, :func:`~seqdiff.train.distributed.shard_model`);
rank 0 keeps an unsharded CPU replica that checkpoints are written from (so their layout is
the single-process one) and that is evaluated after training.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from seqdiff.errors import CheckpointError, ConfigError
from seqdiff.io.checkpoint import Checkpoint
from seqdiff.train.distributed import (
    fsdp_available,
    full_model_state,
    full_optimizer_state,
    full_tensors,
    load_sharded_model,
    shard_model,
    shard_optimizer_state,
)
from seqdiff.train.distributed import info as dist_info
from seqdiff.train.ema import EMA
from seqdiff.train.optim import clip_gradients


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA for ``auto`` and ``bf16``, on other devices for ``bf16`` only;
    otherwise fp32 (no context)."""
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


class Placement:
    """The model placed on this rank's device and wrapped for its world.

    Attributes:
        model: the module whose parameters the optimizer and the EMA hold (FSDP: sharded
            in place); ``train_model``: what the forward pass of training calls (the DDP
            wrapper, ``torch.compile`` of it, or ``model`` itself).
        replica: FSDP only, rank 0 only: the unsharded CPU copy checkpoints are written from.
    """

    def __init__(self, model: nn.Module, *, device: str = "auto", parallel: str = "ddp", compile: bool = False) -> None:
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            # Adam's second moments (and the gradients of a zero-initialised head) go
            # subnormal early on; x86 handles subnormals ~100x slower, which made whole
            # CPU steps 2x slower in our profiles. Flushing them to zero changes nothing
            # measurable in training.
            torch.set_flush_denormal(True)
        dinfo = dist_info()
        self.rank, self.world_size = dinfo.rank, dinfo.world_size
        if self.world_size > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", dinfo.local_rank)
        self.fsdp = parallel == "fsdp" and self.world_size > 1
        self.replica: nn.Module | None = None
        self._full_ema: dict[str, Tensor] | None = None  # FSDP, rank 0: the EMA of the last save
        if self.fsdp:
            if not fsdp_available():
                raise ConfigError(f"trainer.parallel=fsdp needs torch.distributed.fsdp.fully_shard (torch {torch.__version__} lacks it)")
            if self.rank == 0:
                self.replica = copy.deepcopy(model).cpu()
        self.model = model.to(self.device)
        self.train_model: nn.Module = self.model
        if self.fsdp:
            self.model = self.train_model = shard_model(self.model, self.device.type)
        elif self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DDP(self.model, device_ids=ids)
        if compile:
            self.train_model = torch.compile(self.train_model)

    # ------------------------------------------------------------------ training step
    def gradient_sync(self, sync: bool):
        """The context of one micro-batch's forward pass: its backward pass all-reduces the
        gradients only when ``sync`` (the last micro-batch of a step; DDP's ``no_sync``,
        FSDP's ``set_requires_gradient_sync`` otherwise)."""
        if self.fsdp:
            self.model.set_requires_gradient_sync(sync)
            return nullcontext()
        return nullcontext() if sync else self.train_model.no_sync()

    def clip_gradients(self, max_norm: float | None) -> float:
        """The global gradient norm before clipping (see :func:`~seqdiff.train.optim.clip_gradients`)."""
        return clip_gradients(self.model.parameters(), max_norm, sharded=self.fsdp)

    def after_evaluation(self) -> None:
        """FSDP keeps the root's parameters gathered after a forward pass outside training."""
        if self.fsdp:
            self.model.reshard()

    # ------------------------------------------------------------------ checkpoints
    def load_weights(self, ckpt: Checkpoint) -> None:
        """The checkpoint's (full) training weights into this rank's model or shards."""
        if not self.fsdp:
            ckpt.load_model(self.model, ema=False)
            return
        try:  # every rank reads the full tensors and keeps its shard
            load_sharded_model(self.model, ckpt.model_tensors())
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(f"{ckpt.path / 'model.safetensors'}: weights do not fit the configured backbone ({e})") from None

    def load_optimizer(self, optimizer: torch.optim.Optimizer, state: dict) -> None:
        """A full (single-process layout) optimizer state, cut to this rank's shards under FSDP."""
        optimizer.load_state_dict(shard_optimizer_state(optimizer, state) if self.fsdp else state)

    def gather(self, ema: EMA | None, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, dict | None, dict] | None:
        """What a checkpoint holds, in the single-process layout: ``(model, EMA tensors,
        optimizer state)`` on rank 0, ``None`` on the other ranks. Under FSDP every rank must
        call it (the gathers are collectives); rank 0 loads the full weights into its replica."""
        if not self.fsdp:
            if self.rank != 0:
                return None
            return self.model, (ema.shadow if ema is not None else None), optimizer.state_dict()
        model_state = full_model_state(self.model)
        full_ema = full_tensors(ema.shadow) if ema is not None else None
        opt_state = full_optimizer_state(optimizer)
        if self.rank != 0:
            return None
        assert self.replica is not None
        self.replica.load_state_dict(model_state)
        self._full_ema = full_ema
        return self.replica, full_ema, opt_state

    def final_model(self, ema: EMA | None) -> nn.Module:
        """The model to evaluate after training (rank 0): with the EMA weights when the run
        keeps an EMA; under FSDP the unsharded replica holding the last checkpoint's weights."""
        if not self.fsdp:
            if ema is not None:
                ema.copy_to(self.model)
            return self.model
        assert self.replica is not None, "final_model() is for rank 0"
        if self._full_ema is not None:
            with torch.no_grad():
                for n, p in self.replica.named_parameters():
                    if n in self._full_ema:
                        p.copy_(self._full_ema[n])
        return self.replica.to(self.device)
