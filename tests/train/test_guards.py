"""Signals and the NaN/inf policy alone: stop raises saying what is intact, skip counts
and stops after max_nan_skips; SIGINT/SIGTERM become a request to stop."""

from __future__ import annotations

import math
import os
import signal
import threading

import pytest

from seqdiff.errors import TrainingError
from seqdiff.train.guards import NanPolicy, StopSignals, intact, non_finite


def test_non_finite_says_which_number():
    assert non_finite(1.0, 2.0) is None
    assert non_finite(math.nan, 2.0) == "non-finite loss"
    assert non_finite(math.inf, math.nan) == "non-finite loss"  # the loss is named first
    assert non_finite(1.0, math.inf) == "non-finite gradient norm"
    assert non_finite(-math.inf, 0.0) == "non-finite loss"


def test_stop_raises_with_what_is_intact(tmp_path):
    root = tmp_path / "checkpoints"
    logs = []
    policy = NanPolicy("stop", 10, ckpt_root=root, log=logs.append)
    with pytest.raises(TrainingError, match=r"^non-finite loss at step 6 \(loss=nan, grad_norm=1.5\); stopped, "
                                            r"no checkpoint was written yet$"):
        policy("non-finite loss", 6, math.nan, 1.5)
    root.mkdir()
    (root / "latest").write_text("step-00000004\n")
    with pytest.raises(TrainingError, match=r"non-finite gradient norm at step 7 .*; stopped, last good checkpoint: "
                                            + str(root / "step-00000004").replace("\\", "\\\\") + "$"):
        policy("non-finite gradient norm", 7, 0.5, math.inf)
    assert policy.skips == 0 and logs == []
    assert intact(root) == f"last good checkpoint: {root / 'step-00000004'}"


def test_skip_counts_and_stops_after_max_nan_skips(tmp_path):
    logs = []
    policy = NanPolicy("skip", 2, ckpt_root=tmp_path, log=logs.append)
    policy("non-finite loss", 3, math.nan, 1.0)
    policy("non-finite gradient norm", 5, 1.0, math.nan)
    assert policy.skips == 2
    assert logs == ["warning: non-finite loss at step 3; step skipped (1/2)",
                    "warning: non-finite gradient norm at step 5; step skipped (2/2)"]
    with pytest.raises(TrainingError, match=r"^non-finite loss at step 9: more than 2 skipped steps; stopped, "
                                            r"no checkpoint was written yet$"):
        policy("non-finite loss", 9, math.inf, 1.0)
    assert policy.skips == 3


def test_skip_limit_counts_skips_restored_from_a_checkpoint(tmp_path):
    policy = NanPolicy("skip", 3, ckpt_root=tmp_path, log=lambda s: None)
    policy.skips = 3  # as resume restores it
    with pytest.raises(TrainingError, match="more than 3 skipped steps"):
        policy("non-finite loss", 12, math.nan, 1.0)
    with pytest.raises(TrainingError, match="more than 0 skipped steps"):
        NanPolicy("skip", 0, ckpt_root=tmp_path, log=lambda s: None)("non-finite loss", 1, math.nan, 1.0)


def test_an_unknown_policy_is_refused(tmp_path):
    with pytest.raises(ValueError, match="on_nan must be stop or skip"):
        NanPolicy("ignore", 1, ckpt_root=tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_is_a_request_to_stop_and_the_old_handler_comes_back(sig):
    before = signal.getsignal(sig)
    guard = StopSignals()
    with guard:
        assert signal.getsignal(sig) != before
        os.kill(os.getpid(), sig)  # delivered to this (main) thread before kill returns
        assert guard.received == sig.name
    assert signal.getsignal(sig) == before


def test_outside_the_main_thread_nothing_is_installed():
    before = {s: signal.getsignal(s) for s in StopSignals.SIGNALS}
    seen = {}

    def run():
        with StopSignals() as guard:
            seen.update({s: signal.getsignal(s) for s in StopSignals.SIGNALS})
            seen["received"] = guard.received

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen.pop("received") is None and seen == before
