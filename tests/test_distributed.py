"""Data parallelism: 2 gloo processes == 1 process with the same global batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

COMMON = [
    "trainer.steps=4",
    "trainer.progress=false",
    "trainer.tensorboard=false",
    "trainer.eval_every=0",
    "trainer.log_every=2",
    "trainer.ckpt_every=2",
    "trainer.ema=0.9",
    "backbone.d_model=16",
    "backbone.n_layers=1",
    "backbone.n_heads=2",
    "backbone.dropout=0.0",
    "data.seq_len=32",
    "data.train_tokens=8192",
    "data.valid_tokens=1024",
    "data.test_tokens=1024",
    "data.record_length=512",
    "eval.max_sequences=4",
    "eval.num_samples=0",
]


def torchrun() -> str | None:
    exe = Path(sys.executable).parent / "torchrun"
    return str(exe) if exe.exists() else shutil.which("torchrun")


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["time", "count"])
def test_two_gloo_ranks_match_one_process(tmp_path, estimator):
    if torchrun() is None:
        pytest.skip("torchrun not found")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = tmp_path / "one"
    two = tmp_path / "two"
    r1 = subprocess.run([sys.executable, "-m", "seqdiff", "train", f"run_dir={one}", "trainer.batch_size=8",
                         f"process.estimator={estimator}", *COMMON], capture_output=True, text=True, env=env, timeout=300)
    assert r1.returncode == 0, r1.stderr
    r2 = subprocess.run([torchrun(), "--standalone", "--nproc_per_node=2", "-m", "seqdiff", "train", f"run_dir={two}",
                         "trainer.batch_size=4", f"process.estimator={estimator}", *COMMON],
                        capture_output=True, text=True, env=env, timeout=300)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "2 ranks" in r2.stdout
    for name in ("model", "ema"):
        a = load_file(one / "checkpoints" / "step-00000004" / f"{name}.safetensors")
        b = load_file(two / "checkpoints" / "step-00000004" / f"{name}.safetensors")
        assert a.keys() == b.keys()
        for k in a:
            assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6), (name, k, (a[k] - b[k]).abs().max())
    # the logged losses agree too (the 2-rank run reduces them over ranks)
    import json

    la = [json.loads(l)["loss"] for l in (one / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(l)["loss"] for l in (two / "metrics.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, rel=1e-5)
    assert (two / "eval.json").exists() and not any(p.name.startswith(".tmp") for p in (two / "checkpoints").iterdir())
