"""A plain PyTorch training loop with exact resume.

Every source of randomness in step ``s`` is seeded from ``(seed, s)``: the batch (the
data source's contract), the masks and times (a generator passed to the process) and
dropout (the global RNG, reseeded per step). Resuming therefore needs only the
weights, the EMA, the optimizer moments and the step counter, and a resumed run is
bitwise identical to an uninterrupted one on the same device.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import Tensor, nn

from seqdiff.errors import CheckpointError, ConfigError, TrainingError
from seqdiff.eval.likelihood import evaluate_likelihood
from seqdiff.io.checkpoint import latest_valid_checkpoint, save_checkpoint
from seqdiff.train.distributed import (
    all_reduce_sum,
    barrier,
    fsdp_available,
    full_model_state,
    full_optimizer_state,
    full_tensor,
    full_tensors,
    load_sharded_model,
    shard_model,
    shard_optimizer_state,
)
from seqdiff.train.distributed import info as dist_info
from seqdiff.train.ema import EMA
from seqdiff.train.lr import lr_at
from seqdiff.utils.instantiate import check_types
from seqdiff.utils.io import atomic_write_text
from seqdiff.utils.seeding import derive_seed, generator
from seqdiff.vocab import VocabSpec


class TrainData(Protocol):
    seq_len: int

    def train_batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> tuple[Tensor, ...]:
        """``(x0, valid)`` or ``(x0, valid, fixed)``: ``fixed`` marks condition tokens
        (always visible, never masked or scored)."""

    def eval_batches(self, split: str = "valid", batch_size: int = 64, max_sequences: int | None = None): ...


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
        checks = [
            (self.steps >= 0, "steps must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0.0 <= self.ema < 1.0, "ema must be in [0, 1) (0 disables)"),
            (self.precision in ("auto", "fp32", "bf16"), "precision must be auto, fp32 or bf16"),
            (self.on_nan in ("stop", "skip"), "on_nan must be stop or skip"),
            (self.resume in ("auto", "never", "required"), "resume must be auto, never or required"),
            (self.lr_decay in ("constant", "cosine", "linear"), "lr_decay must be constant, cosine or linear"),
            (self.parallel in ("ddp", "fsdp"), "parallel must be ddp or fsdp"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"trainer: {msg}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"trainer: unknown keys {unknown}; valid keys: {sorted(known)}")
        d = dict(d)
        check_types(cls, d, section="trainer")
        return cls(**d)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
    """

    def __init__(
        self,
        model: nn.Module,
        process,
        data: TrainData,
        config: TrainerConfig,
        *,
        run_dir: str | os.PathLike,
        vocab: VocabSpec,
        run_config: dict | None = None,
        seed: int = 0,
        log: Callable[[str], None] = print,
        artifacts: Any = None,
    ) -> None:
        self.config = config
        self.artifacts = artifacts
        self.process = process
        self.data = data
        self.vocab = vocab
        self.run_dir = Path(run_dir)
        self.run_config = run_config or {}
        self.seed = seed
        self.log = log
        self.device = resolve_device(config.device)
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
        # FSDP (trainer.parallel=fsdp under torchrun): parameters, gradients and Adam moments
        # are sharded over the ranks; rank 0 keeps an unsharded CPU replica that checkpoints
        # are written from (so their layout is the single-process one) and that is evaluated
        # after training.
        self.fsdp = config.parallel == "fsdp" and self.world_size > 1
        self.replica: nn.Module | None = None
        self._full_ema: dict[str, Tensor] | None = None
        if self.fsdp:
            if not fsdp_available():
                raise ConfigError(f"trainer.parallel=fsdp needs torch.distributed.fsdp.fully_shard (torch {torch.__version__} lacks it)")
            if self.rank == 0:
                import copy

                self.replica = copy.deepcopy(model).cpu()
        self.model = model.to(self.device)
        self.train_model: nn.Module = self.model
        if self.fsdp:
            self.model = self.train_model = shard_model(self.model, self.device.type)
        elif self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DDP(self.model, device_ids=ids)
        if config.compile:
            self.train_model = torch.compile(self.train_model)
        self.ema = EMA(self.model, config.ema) if config.ema > 0 else None
        self.optimizer = self._build_optimizer()
        self.step = 0
        self.nan_skips = 0
        self._stop_signal: str | None = None

    # ------------------------------------------------------------------ setup
    def _build_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        decay, no_decay = [], []
        for n, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            (decay if p.dim() >= 2 and "embed" not in n else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        kw: dict[str, Any] = {"lr": c.lr, "betas": c.betas, "eps": c.adam_eps}
        if self.device.type == "cuda":
            kw["fused"] = True
        return torch.optim.AdamW(groups, **kw)

    @property
    def ckpt_root(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    def autocast(self):
        p = self.config.precision
        if self.device.type == "cuda" and p in ("auto", "bf16"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if p == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    # ------------------------------------------------------------------ resume
    def maybe_resume(self) -> int | None:
        if self.config.resume == "never":
            return None
        if self.ckpt_root.is_dir() and self.rank == 0:  # leftovers of a save that was killed
            for tmp in self.ckpt_root.glob(".tmp-step-*"):
                shutil.rmtree(tmp, ignore_errors=True)
        ckpt, problems = latest_valid_checkpoint(self.ckpt_root)
        for p in problems:
            self.log(f"warning: skipping unusable checkpoint: {p}")
        if ckpt is None:
            if self.config.resume == "required":
                raise CheckpointError(f"{self.ckpt_root}: resume=required but no valid checkpoint found")
            return None
        diff = self.vocab.describe_difference(ckpt.vocab)
        if diff:
            raise CheckpointError(f"{ckpt.path}/config.json: vocabulary differs from the config ({diff})")
        saved = {k: ckpt.config.get(k) for k in ("domain", "backbone", "process")}
        now = {k: self.run_config.get(k) for k in saved}
        for k in saved:
            if saved[k] is not None and now[k] is not None and saved[k] != now[k]:
                raise CheckpointError(
                    f"{ckpt.path}/config.json: cannot resume, '{k}' config differs from this run's "
                    f"(saved {json.dumps(saved[k], sort_keys=True)[:200]})"
                )
        if self.fsdp:  # every rank reads the full tensors and keeps its shard
            try:
                load_sharded_model(self.model, ckpt.model_tensors())
            except (RuntimeError, KeyError) as e:
                raise CheckpointError(f"{ckpt.path / 'model.safetensors'}: weights do not fit the configured backbone ({e})") from None
        else:
            ckpt.load_model(self.model, ema=False)
        if self.ema is not None:
            if not (ckpt.path / "ema.safetensors").exists():
                raise CheckpointError(f"{ckpt.path}: no ema.safetensors but this run uses EMA")
            self.ema.load(ckpt.tensors("ema"), ckpt.state("trainer_state")["ema"])
        opt_state = ckpt.state("optimizer")
        self.optimizer.load_state_dict(shard_optimizer_state(self.optimizer, opt_state) if self.fsdp else opt_state)
        state = ckpt.state("trainer_state")
        self.step = int(state["step"])
        self.nan_skips = int(state.get("nan_skips", 0))
        self._truncate_metrics(self.step)
        return self.step

    def _truncate_metrics(self, step: int) -> None:
        """Drop metric lines logged after the checkpoint we resume from."""
        if not self.metrics_path.exists():
            return
        keep = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        atomic_write_text(self.metrics_path, "".join(l + "\n" for l in keep))

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> Path | None:
        """Rank 0 writes; every rank waits until the checkpoint is complete. Under FSDP every
        rank first takes part in gathering the full weights, EMA and optimizer moments."""
        if self.fsdp:
            model_state = full_model_state(self.model)
            ema = full_tensors(self.ema.shadow) if self.ema is not None else None
            optimizer = full_optimizer_state(self.optimizer)
            path = None
            if self.rank == 0:
                assert self.replica is not None
                self.replica.load_state_dict(model_state)
                self._full_ema = ema
                path = self._save(self.replica, ema, optimizer)
        else:
            path = self._save(self.model, self.ema.shadow if self.ema is not None else None,
                              self.optimizer.state_dict()) if self.rank == 0 else None
        barrier()
        return path

    def final_model(self) -> nn.Module:
        """The model to evaluate after :meth:`fit` (rank 0): with the EMA weights when the run
        keeps an EMA; under FSDP the unsharded replica holding the last checkpoint's weights."""
        if not self.fsdp:
            if self.ema is not None:
                self.ema.copy_to(self.model)
            return self.model
        assert self.replica is not None, "final_model() is for rank 0"
        if self._full_ema is not None:
            with torch.no_grad():
                for n, p in self.replica.named_parameters():
                    if n in self._full_ema:
                        p.copy_(self._full_ema[n])
        return self.replica.to(self.device)

    def _save(self, model: nn.Module, ema: dict[str, Tensor] | None, optimizer_state: dict) -> Path:
        states = {
            "optimizer": optimizer_state,
            "trainer_state": {
                "step": self.step,
                "nan_skips": self.nan_skips,
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "trainer": asdict(self.config),
            },
        }
        return save_checkpoint(
            self.ckpt_root,
            self.step,
            model=model,
            config=self.run_config,
            vocab=self.vocab,
            ema=ema,
            states=states,
            meta={"process": self.process.describe()},
            keep_last=self.config.keep_last,
            artifacts=self.artifacts,
        )

    # ------------------------------------------------------------------ loop
    def _write_metrics(self, record: dict, tb) -> None:
        if self.rank != 0:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    tb.add_scalar(k, v, record["step"])

    def _handle_signal(self, signum, _frame) -> None:
        self._stop_signal = signal.Signals(signum).name

    def validate(self, max_sequences: int | None = None) -> float:
        """Held-out NELBO (bits/token) on the first windows of the validation split: the
        exact bound (``count`` in continuous time, the T-step bound for ``num_steps > 0``;
        the NLL for AR), whatever the training objective."""
        ctx = self.ema.swapped_in(self.model) if self.ema is not None else nullcontext()
        est = None  # evaluate_likelihood's default: the bound
        with ctx:
            res, _, _ = evaluate_likelihood(
                self.model,
                self.process,
                self.data.eval_batches("valid", self.config.batch_size, max_sequences or self.config.eval_sequences),
                draws=1,
                seed=self.seed,
                estimator=est,
                device=self.device,
            )
            if self.fsdp:  # FSDP keeps the root's parameters gathered after a forward pass
                self.model.reshard()
        return res.bits_per_token

    def fit(self) -> TrainResult:
        c = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.maybe_resume()
        if resumed is not None:
            self.log(f"resumed from step {resumed} ({self.ckpt_root})")
        tb = _tensorboard(self.run_dir) if c.tensorboard and self.rank == 0 else None
        old_handlers = {s: signal.signal(s, self._handle_signal) for s in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {}
        bar = _progress(c.progress and self.rank == 0, c.steps, self.step)
        t0 = time.perf_counter()
        tokens_since, t_log = 0, time.perf_counter()
        last_loss, stopped, history = math.nan, None, []
        self.model.train()
        try:
            while self.step < c.steps:
                if self._stop_signal:
                    stopped = self._stop_signal
                    break
                if c.max_time is not None and time.perf_counter() - t0 > c.max_time:
                    stopped = "max_time"
                    break
                loss_val, gnorm, ntok = self._train_step()
                tokens_since += ntok
                skipped = not (math.isfinite(loss_val) and math.isfinite(gnorm))
                if skipped:  # on_nan=stop raises; skip counts the step (no update) and goes on
                    self._on_non_finite(loss_val, gnorm)
                else:
                    last_loss = loss_val
                    self.step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_val:.4f}", refresh=False)
                if self.step % c.log_every == 0 or self.step == c.steps:
                    now = time.perf_counter()
                    rec = {
                        "step": self.step,
                        "loss": loss_val,
                        train_metric_name(self.process): loss_val / math.log(2),
                        "lr": self.optimizer.param_groups[0]["lr"],
                        "grad_norm": gnorm,
                        "tokens_per_s": tokens_since / max(now - t_log, 1e-9),
                        "elapsed_s": now - t0,
                    }
                    tokens_since, t_log = 0, now
                    if skipped:  # the step's line is kept: it says the update was skipped, and why
                        rec = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in rec.items()}
                        rec["skipped"] = "non-finite loss" if not math.isfinite(loss_val) else "non-finite gradient norm"
                    # FSDP: every rank runs the (sharded) forward passes of validation
                    if c.eval_every and (self.step % c.eval_every == 0 or self.step == c.steps) and (self.rank == 0 or self.fsdp):
                        rec["valid_bits_per_token"] = self.validate()
                    self._write_metrics(rec, tb)
                    history.append(rec)
                if c.ckpt_every and self.step % c.ckpt_every == 0 and self.step != c.steps:
                    self.save()
        finally:
            for s, h in old_handlers.items():
                signal.signal(s, h)
            if bar is not None:
                bar.close()
            if tb is not None:
                tb.close()
        self.save()
        return TrainResult(
            step=self.step,
            seconds=time.perf_counter() - t0,
            last_loss=last_loss,
            resumed_from=resumed,
            stopped_early=stopped,
            nan_skips=self.nan_skips,
            history=history,
        )

    def _train_step(self) -> tuple[float, float, int]:
        """One optimiser step over ``grad_accum`` micro-batches on every rank.

        Each micro-batch loss is its NELBO sum over the token count of the whole global
        batch (all micro-batches on all ranks, found with one all-reduce), times the
        world size that DDP's gradient averaging divides by. The update is then exactly
        that of one process holding the global batch, padded rows included.
        """
        c = self.config
        lr = lr_at(self.step, base_lr=c.lr, warmup=c.warmup, total=c.steps, decay=c.lr_decay, min_ratio=c.min_lr_ratio)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        torch.manual_seed(derive_seed(self.seed, self.step, self.rank, 1))  # dropout
        micro = [
            self.data.train_batch(self.step * c.grad_accum + m, c.batch_size, rank=self.rank, world_size=self.world_size)
            for m in range(c.grad_accum)
        ]
        micro = [(b[0], b[1], b[2] if len(b) > 2 else None) for b in micro]  # (x0, valid[, fixed])
        local_tokens = sum(int((v & ~f).sum()) if f is not None else int(v.sum()) for _, v, f in micro)
        stats = torch.tensor([float(local_tokens), 0.0], dtype=torch.float64)
        total_tokens = float(all_reduce_sum(stats.clone())[0]) if self.world_size > 1 else float(local_tokens)
        global_rows = c.batch_size * c.grad_accum * self.world_size
        loss_sum = 0.0
        for m, (x0, valid, fixed) in enumerate(micro):
            x0, valid = x0.to(self.device, non_blocking=True), valid.to(self.device, non_blocking=True)
            kw = {} if fixed is None else {"fixed": fixed.to(self.device, non_blocking=True)}
            gen = generator(self.seed, self.step, 2)
            offset = (m * self.world_size + self.rank) * c.batch_size
            sync = self.world_size == 1 or m == c.grad_accum - 1
            if self.fsdp:
                self.model.set_requires_gradient_sync(sync)
            with self.autocast(), (nullcontext() if sync or self.fsdp else self.train_model.no_sync()):
                out = self.process.loss(self.train_model, x0, valid, generator=gen, offset=offset, total=global_rows, **kw)
                n_local = float(out.num_tokens.sum())
                scaled = out.loss * (n_local * self.world_size / max(total_tokens, 1.0))
            scaled.backward()
            loss_sum += float(out.loss.detach()) * n_local  # NaN/inf here stops or skips the step
        if self.world_size > 1:
            stats[1] = loss_sum
            loss_sum = float(all_reduce_sum(stats)[1])
        total_loss = loss_sum / max(total_tokens, 1.0)
        if self.fsdp:  # the norm of the sharded gradients (a DTensor): gathered to a number
            gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip if c.grad_clip and c.grad_clip > 0 else math.inf)
            gnorm = float(full_tensor(gn))
        elif c.grad_clip and c.grad_clip > 0:
            gnorm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip))
        else:  # no clipping: the norm is only logged (0 when no parameter received a gradient)
            norms = [p.grad.norm() for p in self.model.parameters() if p.grad is not None]
            gnorm = float(torch.norm(torch.stack(norms))) if norms else 0.0
        if math.isfinite(total_loss) and math.isfinite(gnorm):
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.model)
        self.optimizer.zero_grad(set_to_none=True)
        return total_loss, gnorm, local_tokens * self.world_size

    def _on_non_finite(self, loss_val: float, gnorm: float) -> None:
        what = f"non-finite {'loss' if not math.isfinite(loss_val) else 'gradient norm'} at step {self.step}"
        last = self.ckpt_root / (self.ckpt_root / "latest").read_text().strip() if (self.ckpt_root / "latest").exists() else None
        intact = f"last good checkpoint: {last}" if last else "no checkpoint was written yet"
        if self.config.on_nan == "stop":
            raise TrainingError(f"{what} (loss={loss_val}, grad_norm={gnorm}); stopped, {intact}")
        self.nan_skips += 1
        self.log(f"warning: {what}; step skipped ({self.nan_skips}/{self.config.max_nan_skips})")
        if self.nan_skips > self.config.max_nan_skips:
            raise TrainingError(f"{what}: more than {self.config.max_nan_skips} skipped steps; stopped, {intact}")
        self.step += 1  # the batch of this step is skipped, not retried forever


def train_metric_name(process) -> str:
    """The name the training loss is logged under, in bits/token: a likelihood's name
    (``train_nelbo_...``, ``train_nll_...``) only when the process declares it is one,
    e.g. ``train_ens_objective_bits_per_token`` for ENS, ``train_truncated_nelbo_...``
    for MDLM's eps-truncated time estimator."""
    return f"train_{process.objective}_bits_per_token"  # declared by every Process


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _progress(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True, smoothing=0.05)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
