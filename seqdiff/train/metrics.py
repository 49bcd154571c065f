"""What the trainer logs, under which names, and where it goes.

Every ``log_every`` steps (and at the last) one record::

    step, loss (nats/token), train_<objective>_bits_per_token, lr, grad_norm,
    tokens_per_s, elapsed_s[, skipped][, valid_bits_per_token]

goes to ``RUN/metrics.jsonl`` (one JSON object a line, a non-finite number written as
``null``) and to TensorBoard (``RUN/tensorboard``, when the package is installed; one
scalar tag per finite number). A step whose update was skipped (``on_nan=skip``) keeps
its line, with ``skipped`` saying why. The progress bar shows the loss of every step.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

LN2 = math.log(2)


def train_metric_name(process) -> str:
    """The name the training loss is logged under, in bits/token: a likelihood's name
    (``train_nelbo_...``, ``train_nll_...``) only when the process declares it is one,
    e.g. ``train_ens_objective_bits_per_token`` for ENS, ``train_truncated_nelbo_...``
    for MDLM's eps-truncated time estimator."""
    return f"train_{process.objective}_bits_per_token"  # declared by every Process


def finite_or_none(record: dict) -> dict:
    """``record`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}


def step_record(step: int, *, loss: float, objective: str, lr: float, grad_norm: float, tokens_per_s: float,
                elapsed_s: float, skipped: str | None = None) -> dict:
    """One step's record: ``loss`` in nats/token, also under ``objective`` (see
    :func:`train_metric_name`) in bits/token; ``skipped``: why the update was dropped."""
    rec = {
        "step": step,
        "loss": loss,
        objective: loss / LN2,
        "lr": lr,
        "grad_norm": grad_norm,
        "tokens_per_s": tokens_per_s,
        "elapsed_s": elapsed_s,
    }
    rec = finite_or_none(rec)
    if skipped is not None:
        rec["skipped"] = skipped
    return rec


class Throughput:
    """Tokens per second between two records, and seconds since the start."""

    def __init__(self) -> None:
        self.start = self._since = time.perf_counter()
        self._tokens = 0

    def add(self, tokens: int) -> None:
        self._tokens += tokens

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def take(self) -> tuple[float, float]:
        """``(tokens_per_s, elapsed_s)`` now; the next rate counts from here."""
        now = time.perf_counter()
        rate = self._tokens / max(now - self._since, 1e-9)
        self._tokens, self._since = 0, now
        return rate, now - self.start


class JsonlSink:
    """Appends each record to ``path`` as one line of strict JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(finite_or_none(record), allow_nan=False) + "\n")

    def close(self) -> None:
        pass


class TensorBoardSink:
    """One scalar per finite number of a record (tag = its name), at the record's step."""

    def __init__(self, writer) -> None:
        self.writer = writer

    @classmethod
    def open(cls, log_dir: Path) -> "TensorBoardSink | None":
        """``None`` when tensorboard is not installed (it is optional)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:
            return None
        return cls(SummaryWriter(log_dir=str(log_dir)))

    def write(self, record: dict) -> None:
        for k, v in record.items():
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                self.writer.add_scalar(k, v, record["step"])

    def close(self) -> None:
        self.writer.close()


class MetricSinks:
    """The sinks of a run (none on ranks other than 0), written and closed together."""

    def __init__(self, sinks: list) -> None:
        self.sinks = sinks

    @classmethod
    def open(cls, run_dir: Path, *, tensorboard: bool) -> "MetricSinks":
        sinks: list = [JsonlSink(run_dir / "metrics.jsonl")]
        tb = TensorBoardSink.open(run_dir / "tensorboard") if tensorboard else None
        return cls(sinks + ([tb] if tb is not None else []))

    def write(self, record: dict) -> None:
        for s in self.sinks:
            s.write(record)

    def close(self) -> None:
        for s in self.sinks:
            s.close()

    def __enter__(self) -> "MetricSinks":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ProgressBar:
    """A tqdm bar over the steps showing the last loss; does nothing when disabled."""

    def __init__(self, enabled: bool, total: int, initial: int) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True, smoothing=0.05)

    def update(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
