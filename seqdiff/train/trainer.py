"""A plain PyTorch training loop with exact resume.

Every source of randomness in step ``s`` is seeded from ``(seed, s)``: the batch (the
data source's contract), the masks and times (a generator passed to the process) and
dropout (the global RNG, reseeded per step). Resuming therefore needs only the
weights, the EMA, the optimizer moments and the step counter, and a resumed run is
bitwise identical to an uninterrupted one on the same device.

The loop is this file; what it calls is one module each: settings (:mod:`.config`),
device and ranks (:mod:`.parallel`), optimiser groups and clipping (:mod:`.optim`), the
learning-rate schedule (:mod:`.lr`), the EMA (:mod:`.ema`), the resume policy
(:mod:`.resume`), metric sinks (:mod:`.metrics`), signals and the NaN policy (:mod:`.guards`).
"""

from __future__ import annotations

import math
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from seqdiff.data import DataSource
from seqdiff.eval.likelihood import evaluate_likelihood
from seqdiff.io.checkpoint import save_checkpoint
from seqdiff.labels import drop_labels
from seqdiff.train.config import TrainerConfig
from seqdiff.train.distributed import all_reduce_sum, barrier
from seqdiff.train.ema import EMA
from seqdiff.train.guards import NanPolicy, StopSignals, non_finite
from seqdiff.train.lr import lr_at
from seqdiff.train.metrics import MetricSinks, ProgressBar, Throughput, step_record, train_metric_name
from seqdiff.train.optim import build_optimizer, set_lr
from seqdiff.train.parallel import Placement, autocast, resolve_device
from seqdiff.train.resume import (check_compatible, checkpoint_states, latest_checkpoint, remove_killed_saves, restore,
                                  truncate_metrics)
from seqdiff.utils.seeding import derive_seed, generator
from seqdiff.vocab import VocabSpec

__all__ = ["Trainer", "TrainerConfig", "TrainResult", "resolve_device", "train_metric_name"]


@dataclass
class TrainResult:
    step: int
    seconds: float
    last_loss: float
    resumed_from: int | None = None
    stopped_early: str | None = None
    nan_skips: int = 0
    history: list[dict] = field(default_factory=list)


class Trainer:
    """Trains ``model`` with ``process.loss`` on ``data``; checkpoints under ``run_dir``.

    Args:
        run_config: the resolved run configuration stored in every checkpoint (so
            ``seqdiff sample``/``eval`` and :func:`seqdiff.load` can rebuild the run).
        artifacts: saved inside every checkpoint (``save_artifacts(directory)``, e.g. a
            text domain's tokenizer files).
        label_dropout: for a labelled source (``data.labels``), the probability that a
            training row's labels are replaced by the no-label ids (classifier-free guidance
            needs the unconditional model too); drawn per row of the global batch from the
            stream ``(seed, step, 4)``, so resumed and multi-rank runs drop the same rows.
    """

    def __init__(
        self,
        model: nn.Module,
        process,
        data: DataSource,
        config: TrainerConfig,
        *,
        run_dir: str | os.PathLike,
        vocab: VocabSpec,
        run_config: dict | None = None,
        seed: int = 0,
        log: Callable[[str], None] = print,
        artifacts: Any = None,
        label_dropout: float = 0.0,
    ) -> None:
        self.config, self.process, self.data, self.vocab = config, process, data, vocab
        self.run_dir, self.run_config, self.seed, self.log = Path(run_dir), run_config or {}, seed, log
        self.artifacts = artifacts
        self.placement = Placement(model, device=config.device, parallel=config.parallel, compile=config.compile)
        self.device, self.rank, self.world_size = self.placement.device, self.placement.rank, self.placement.world_size
        self.model, self.train_model = self.placement.model, self.placement.train_model
        self.ema = EMA(self.model, config.ema) if config.ema > 0 else None
        self.optimizer = build_optimizer(self.model, lr=config.lr, betas=config.betas, eps=config.adam_eps,
                                         weight_decay=config.weight_decay, device=self.device)
        self.signals = StopSignals()
        self.nan_policy = NanPolicy(config.on_nan, config.max_nan_skips, ckpt_root=self.ckpt_root, log=log)
        self.step = 0
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"Trainer: label_dropout must be in [0, 1), got {label_dropout}")
        if label_dropout > 0 and data.labels is None:
            raise ValueError("Trainer: label_dropout > 0 but the data has no labels")
        self.label_dropout = float(label_dropout)

    @property
    def ckpt_root(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    @property
    def _stop_signal(self) -> str | None:  # a stop requested by hand (tests) reads as a signal
        return self.signals.received

    @_stop_signal.setter
    def _stop_signal(self, name: str | None) -> None:
        self.signals.received = name

    # ------------------------------------------------------------------ resume and save
    def maybe_resume(self) -> int | None:
        """Continue from the latest valid checkpoint (see :mod:`seqdiff.train.resume`);
        returns its step, or ``None`` for a fresh start."""
        if self.config.resume == "never":
            return None
        if self.rank == 0:
            remove_killed_saves(self.ckpt_root)
        ckpt = latest_checkpoint(self.ckpt_root, required=self.config.resume == "required", log=self.log)
        if ckpt is None:
            return None
        check_compatible(ckpt, self.vocab, self.run_config)
        self.step, self.nan_policy.skips = restore(ckpt, self.placement, self.ema, self.optimizer)
        if self.rank == 0:  # the only rank that writes metrics
            truncate_metrics(self.metrics_path, self.step)
        return self.step

    def save(self) -> Path | None:
        """Rank 0 writes; every rank waits until the checkpoint is complete. Under FSDP every
        rank first takes part in gathering the full weights, EMA and optimizer moments."""
        gathered = self.placement.gather(self.ema, self.optimizer)
        path = None
        if gathered is not None:
            model, ema, optimizer_state = gathered
            states = checkpoint_states(optimizer_state, step=self.step, nan_skips=self.nan_policy.skips,
                                       ema=self.ema, config=self.config)
            path = save_checkpoint(self.ckpt_root, self.step, model=model, config=self.run_config, vocab=self.vocab,
                                   ema=ema, states=states, meta={"process": self.process.describe(),
                                         **({"labels": self.data.labels.to_dict()} if self.data.labels else {})},
                                   keep_last=self.config.keep_last, artifacts=self.artifacts)
        barrier()
        return path

    def final_model(self) -> nn.Module:
        """The model to evaluate after :meth:`fit` (rank 0): with the EMA weights when the run
        keeps an EMA; under FSDP the unsharded replica holding the last checkpoint's weights."""
        return self.placement.final_model(self.ema)

    # ------------------------------------------------------------------ loop
    def _dropped(self, label, offset: int, total: int):
        """The batch's labels after label dropout (rows of the global batch, own stream)."""
        spec = self.data.labels
        if spec is None:
            raise ValueError("Trainer: a batch carries labels but the data source declares none (DataSource.labels)")
        label = spec.check(label, where="Batch.label").to(self.device)
        return drop_labels(label, spec.null(), self.label_dropout, generator=generator(self.seed, self.step, 4),
                           offset=offset, total=total)

    def validate(self, max_sequences: int | None = None) -> float:
        """Held-out NELBO (bits/token) on the first windows of the validation split: the
        exact bound (``count`` in continuous time, the T-step bound for ``num_steps > 0``;
        the NLL for AR), whatever the training objective."""
        c = self.config
        with self.ema.swapped_in(self.model) if self.ema is not None else nullcontext():
            batches = self.data.eval_batches("valid", c.batch_size, max_sequences or c.eval_sequences)
            res, _, _ = evaluate_likelihood(self.model, self.process, batches, draws=1, seed=self.seed,
                                            estimator=None, device=self.device)  # None: the bound
            self.placement.after_evaluation()
        return res.bits_per_token

    def fit(self) -> TrainResult:
        c = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.maybe_resume()
        if resumed is not None:
            self.log(f"resumed from step {resumed} ({self.ckpt_root})")
        main = self.rank == 0
        sinks = MetricSinks.open(self.run_dir, tensorboard=c.tensorboard) if main else MetricSinks([])
        objective = train_metric_name(self.process)
        meter = Throughput()
        last_loss, stopped, history = math.nan, None, []
        self.model.train()
        with self.signals, sinks, ProgressBar(c.progress and main, c.steps, self.step) as bar:
            while self.step < c.steps:
                stopped = self.signals.received or (
                    "max_time" if c.max_time is not None and meter.elapsed() > c.max_time else None)
                if stopped:
                    break
                loss, gnorm, ntok = self._train_step()
                meter.add(ntok)
                skipped = non_finite(loss, gnorm)
                if skipped:  # on_nan=stop raises; skip counts the step (no update) and goes on
                    self.nan_policy(skipped, self.step, loss, gnorm)
                else:
                    last_loss = loss
                self.step += 1  # a skipped batch is not retried
                bar.update(loss)
                if self.step % c.log_every == 0 or self.step == c.steps:
                    tokens_per_s, elapsed_s = meter.take()
                    rec = step_record(self.step, loss=loss, objective=objective, lr=self.optimizer.param_groups[0]["lr"],
                                      grad_norm=gnorm, tokens_per_s=tokens_per_s, elapsed_s=elapsed_s, skipped=skipped)
                    # FSDP: every rank runs the (sharded) forward passes of validation
                    if c.eval_every and (self.step % c.eval_every == 0 or self.step == c.steps) and (main or self.placement.fsdp):
                        rec["valid_bits_per_token"] = self.validate()
                    sinks.write(rec)
                    history.append(rec)
                if c.ckpt_every and self.step % c.ckpt_every == 0 and self.step != c.steps:
                    self.save()
        self.save()
        return TrainResult(step=self.step, seconds=meter.elapsed(), last_loss=last_loss, resumed_from=resumed,
                           stopped_early=stopped, nan_skips=self.nan_policy.skips, history=history)

    def _train_step(self) -> tuple[float, float, int]:
        """One optimiser step over ``grad_accum`` micro-batches on every rank; returns
        ``(loss per token, gradient norm, tokens)`` of the global batch.

        Each micro-batch loss is its NELBO sum over the token count of the whole global
        batch (all micro-batches on all ranks, found with one all-reduce), times the
        world size that DDP's gradient averaging divides by. The update is then exactly
        that of one process holding the global batch, padded rows included.
        """
        c, world = self.config, self.world_size
        set_lr(self.optimizer, lr_at(self.step, base_lr=c.lr, warmup=c.warmup, total=c.steps, decay=c.lr_decay,
                                     min_ratio=c.min_lr_ratio))
        torch.manual_seed(derive_seed(self.seed, self.step, self.rank, 1))  # dropout
        micro = [self.data.train_batch(self.step * c.grad_accum + m, c.batch_size, rank=self.rank, world_size=world)
                 for m in range(c.grad_accum)]
        labels = [getattr(b, "label", None) for b in micro]  # Batch.label [B, F] or None
        micro = [(b[0], b[1], b[2] if len(b) > 2 else None) for b in micro]  # (x0, valid[, fixed])
        local_tokens = sum(int((v & ~f).sum()) if f is not None else int(v.sum()) for _, v, f in micro)
        stats = torch.tensor([float(local_tokens), 0.0], dtype=torch.float64)
        total_tokens = float(all_reduce_sum(stats.clone())[0]) if world > 1 else float(local_tokens)
        global_rows = c.batch_size * c.grad_accum * world
        loss_sum = 0.0
        for m, (x0, valid, fixed) in enumerate(micro):
            x0, valid = x0.to(self.device, non_blocking=True), valid.to(self.device, non_blocking=True)
            kw = {} if fixed is None else {"fixed": fixed.to(self.device, non_blocking=True)}
            gen = generator(self.seed, self.step, 2)
            offset = (m * world + self.rank) * c.batch_size
            if labels[m] is not None:
                kw["label"] = self._dropped(labels[m], offset, global_rows)
            with autocast(self.device, c.precision), self.placement.gradient_sync(world == 1 or m == c.grad_accum - 1):
                out = self.process.loss(self.train_model, x0, valid, generator=gen, offset=offset, total=global_rows, **kw)
                n_local = float(out.num_tokens.sum())
                scaled = out.loss * (n_local * world / max(total_tokens, 1.0))
            scaled.backward()
            loss_sum += float(out.loss.detach()) * n_local  # NaN/inf here stops or skips the step
        if world > 1:
            stats[1] = loss_sum
            loss_sum = float(all_reduce_sum(stats)[1])
        total_loss = loss_sum / max(total_tokens, 1.0)
        gnorm = self.placement.clip_gradients(c.grad_clip)
        if non_finite(total_loss, gnorm) is None:
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.model)
        self.optimizer.zero_grad(set_to_none=True)
        return total_loss, gnorm, local_tokens * world
