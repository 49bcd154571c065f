"""Kill -9 a training run at several random steps, resume each time, and get bitwise
the same parameters and metrics as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

ARGS = [
    "trainer.steps=24",
    "trainer.batch_size=8",
    "trainer.progress=false",
    "trainer.tensorboard=false",
    "trainer.log_every=1",
    "trainer.eval_every=4",
    "trainer.eval_sequences=8",
    "trainer.ckpt_every=3",
    "backbone.d_model=16",
    "backbone.n_layers=1",
    "backbone.n_heads=2",
    "backbone.dropout=0.1",
    "data.seq_len=32",
    "data.train_tokens=8192",
    "data.valid_tokens=1024",
    "data.test_tokens=1024",
    "data.record_length=512",
    "eval.max_sequences=4",
    "eval.num_samples=0",
]
VOLATILE = {"tokens_per_s", "elapsed_s"}


def train(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "seqdiff", "train", f"run_dir={run_dir}", *ARGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def last_step(run_dir: Path) -> int:
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    steps = [json.loads(l)["step"] for l in lines if l.endswith("}")]
    return max(steps, default=0)


def metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


@pytest.mark.slow
def test_sigkill_and_resume_is_bitwise_identical(tmp_path):
    ref = tmp_path / "ref"
    p = train(ref)
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]

    run = tmp_path / "killed"
    rng = random.Random(7)
    kills = sorted(rng.sample(range(2, 22), 3))
    for k in kills:
        p = train(run)
        deadline = time.time() + 240
        while last_step(run) < k and p.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert p.poll() is None, "the run finished before it could be killed"
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        assert last_step(run) < 24
    p = train(run)
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]

    assert metrics(run) == metrics(ref)
    final = "step-00000024"
    for name in ("model", "ema"):
        a = load_file(ref / "checkpoints" / final / f"{name}.safetensors")
        b = load_file(run / "checkpoints" / final / f"{name}.safetensors")
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), name
    assert not list((run / "checkpoints").glob(".tmp-*"))
