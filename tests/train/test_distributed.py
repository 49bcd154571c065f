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
@pytest.mark.parametrize("process", [["process.estimator=time"], ["process.estimator=count"],
                                     # ENS with self entropies: group dealing and tie-breaking
                                     # noise are drawn for the global batch too
                                     ["process=mdlm_ens", "process.ens_groups=3", "process.ens_temperature=0.5"]],
                         ids=["time", "count", "ens"])
def test_two_gloo_ranks_match_one_process(tmp_path, process):
    if torchrun() is None:
        pytest.skip("torchrun not found")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = tmp_path / "one"
    two = tmp_path / "two"
    r1 = subprocess.run([sys.executable, "-m", "seqdiff", "train", f"run_dir={one}", "trainer.batch_size=8",
                         *process, *COMMON], capture_output=True, text=True, env=env, timeout=300)
    assert r1.returncode == 0, r1.stderr
    r2 = subprocess.run([torchrun(), "--standalone", "--nproc_per_node=2", "-m", "seqdiff", "train", f"run_dir={two}",
                         "trainer.batch_size=4", *process, *COMMON],
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


@pytest.mark.slow
def test_fsdp_two_gloo_ranks_match_one_process_and_resume(tmp_path):
    """trainer.parallel=fsdp (FSDP2 fully_shard, CPU/gloo): 2 ranks == 1 process; the
    checkpoints are gathered to the single-process layout (same files, same tensor names,
    the same optimizer.json); a sharded resume from step 2 reaches the same step-4 weights."""
    if torchrun() is None:
        pytest.skip("torchrun not found")
    from seqdiff.train.distributed import fsdp_available

    if not fsdp_available():
        pytest.skip(f"torch {torch.__version__} has no torch.distributed.fsdp.fully_shard")
    import json

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # lr_decay=constant: the schedule does not depend on trainer.steps, so a run stopped at
    # step 2 and resumed to step 4 follows the uninterrupted run exactly; 2 layers: the
    # blocks are sharded separately from the root.
    common = [*COMMON, "trainer.lr_decay=constant", "backbone.n_layers=2", "trainer.eval_every=2", "trainer.eval_sequences=8",
              "eval.num_samples=2"]
    one, two = tmp_path / "one", tmp_path / "fsdp"
    r1 = subprocess.run([sys.executable, "-m", "seqdiff", "train", f"run_dir={one}", "trainer.batch_size=8", *common],
                        capture_output=True, text=True, env=env, timeout=300)
    assert r1.returncode == 0, r1.stderr[-3000:]
    fsdp = [torchrun(), "--standalone", "--nproc_per_node=2", "-m", "seqdiff", "train", f"run_dir={two}",
            "trainer.batch_size=4", "trainer.parallel=fsdp", *common]
    r2 = subprocess.run([*fsdp, "trainer.steps=2"], capture_output=True, text=True, env=env, timeout=300)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "2 ranks" in r2.stdout
    r3 = subprocess.run([*fsdp, "trainer.steps=4"], capture_output=True, text=True, env=env, timeout=300)
    assert r3.returncode == 0, r3.stderr[-3000:]
    assert "resumed from step 2" in r3.stdout
    a_dir, b_dir = one / "checkpoints" / "step-00000004", two / "checkpoints" / "step-00000004"
    assert sorted(p.name for p in a_dir.iterdir()) == sorted(p.name for p in b_dir.iterdir())
    for name in ("model", "ema", "optimizer"):
        a = load_file(a_dir / f"{name}.safetensors")
        b = load_file(b_dir / f"{name}.safetensors")
        assert a.keys() == b.keys(), name
        for k in a:
            assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype, (name, k)
            assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6), (name, k, (a[k] - b[k]).abs().max())
    assert (a_dir / "optimizer.json").read_text() == (b_dir / "optimizer.json").read_text()
    la = [json.loads(l)["loss"] for l in (one / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(l)["loss"] for l in (two / "metrics.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, rel=1e-5)
    # rank 0 evaluated the gathered (unsharded) EMA model: the same NELBO as the 1-process run
    ea, eb = (json.loads((d / "eval.json").read_text()) for d in (one, two))
    assert eb["train"]["world_size"] == 2
    assert eb["likelihood"]["bits_per_token"] == pytest.approx(ea["likelihood"]["bits_per_token"], rel=1e-4)
    # and the checkpoint loads on one process like any other
    from seqdiff import load

    exp = load(two)
    assert exp.checkpoint.step == 4 and exp.weights == "ema"
