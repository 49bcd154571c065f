"""What stops a run besides its last step: a signal, and a non-finite loss or gradient.

``SIGINT`` / ``SIGTERM`` (Ctrl-C, a scheduler's pre-emption) do not kill the run: the
loop finishes its step, writes a checkpoint and returns, stopped early with the signal's
name. A non-finite loss or gradient norm never reaches the weights (the update is not
applied); ``on_nan=stop`` then ends the run with an error that says which checkpoint is
intact, ``on_nan=skip`` counts the step as done without its update and stops once more
than ``max_nan_skips`` steps have been skipped.
"""

from __future__ import annotations

import math
import signal
import threading
from pathlib import Path
from typing import Callable

from seqdiff.errors import TrainingError


class StopSignals:
    """While entered, SIGINT and SIGTERM set :attr:`received` (the signal's name) instead of
    interrupting; the previous handlers come back on exit. Signal handlers can only be set
    from the main thread; elsewhere (a run inside a worker thread) nothing is installed."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict = {}

    def _handle(self, signum, _frame) -> None:
        self.received = signal.Signals(signum).name

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous = {}


def non_finite(loss: float, grad_norm: float) -> str | None:
    """Why a step's update must not be applied (``"non-finite loss"`` / ``"non-finite gradient
    norm"``), or ``None`` for a good step."""
    if not math.isfinite(loss):
        return "non-finite loss"
    if not math.isfinite(grad_norm):
        return "non-finite gradient norm"
    return None


def intact(ckpt_root: Path) -> str:
    """Which checkpoint a stopped run leaves to resume from, as the error says it."""
    latest = ckpt_root / "latest"
    if latest.exists():
        return f"last good checkpoint: {ckpt_root / latest.read_text().strip()}"
    return "no checkpoint was written yet"


class NanPolicy:
    """``on_nan`` applied to one bad step (see the module docstring); :attr:`skips` counts the
    steps skipped so far (saved in checkpoints, so the limit holds across resumes)."""

    def __init__(self, on_nan: str, max_skips: int, *, ckpt_root: Path, log: Callable[[str], None] = print) -> None:
        if on_nan not in ("stop", "skip"):
            raise ValueError(f"on_nan must be stop or skip, got {on_nan!r}")
        self.on_nan, self.max_skips = on_nan, max_skips
        self.ckpt_root, self.log = ckpt_root, log
        self.skips = 0

    def __call__(self, reason: str, step: int, loss: float, grad_norm: float) -> None:
        """Raise :class:`TrainingError` (``stop``, or too many skips) or count a skip."""
        what = f"{reason} at step {step}"
        if self.on_nan == "stop":
            raise TrainingError(f"{what} (loss={loss}, grad_norm={grad_norm}); stopped, {intact(self.ckpt_root)}")
        self.skips += 1
        self.log(f"warning: {what}; step skipped ({self.skips}/{self.max_skips})")
        if self.skips > self.max_skips:
            raise TrainingError(f"{what}: more than {self.max_skips} skipped steps; stopped, {intact(self.ckpt_root)}")
