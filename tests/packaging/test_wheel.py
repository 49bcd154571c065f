"""The wheel works outside a clone: built with ``pip wheel``, installed with ``pip install
torch==2.13.0 <wheel>`` into a fresh venv, and run from an empty directory: ``seqdiff --help``,
a 3-step ``seqdiff train``, and the recipes' registered commands. Every module and config it
uses must come from the venv, none from this repository (issue 12, section 3).

Slow (a fresh venv with torch and transformers); the packages it installs come from pip's
configured index and wheel cache (no model or data is downloaded).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["trainer.steps=3", "trainer.batch_size=4", "trainer.progress=false", "trainer.eval_every=3",
        "trainer.log_every=3", "trainer.tensorboard=false", "backbone.d_model=16", "backbone.n_layers=1",
        "backbone.n_heads=2", "data.seq_len=16", "data.train_tokens=2048", "data.valid_tokens=256",
        "data.test_tokens=256", "data.record_length=256", "eval.max_sequences=4", "eval.num_samples=2",
        "sampler.num_steps=4"]


def run(cmd: list, *, cwd: Path, env: dict | None = None, timeout: float = 1200) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.slow
def test_the_wheel_installs_in_a_fresh_venv_and_runs_outside_any_clone(tmp_path):
    times = {}
    start = t0 = time.perf_counter()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", ROOT], cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("seqdiff-*.whl")
    times["build"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    py, exe = venv / "bin" / "python", venv / "bin" / "seqdiff"
    run([py, "-m", "pip", "install", "-q", "torch==2.13.0", wheel], cwd=tmp_path, timeout=1800)
    times["install"] = time.perf_counter() - t0

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "SEQDIFF_CACHE_DIR": str(tmp_path / "cache")}
    t0 = time.perf_counter()
    usage = run([exe, "--help"], cwd=empty, env=env).stdout
    site = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=empty, env=env).stdout.strip())
    assert f"config groups (in {site / 'seqdiff' / 'configs'})" in usage, usage
    assert "download" in usage and "tokenizer" in usage  # the recipes' registered commands
    run([exe, "download", "--help"], cwd=empty, env=env)

    r = run([exe, "train", "run_dir=runs/tiny", *TINY], cwd=empty, env=env)
    times["train"] = time.perf_counter() - t0
    run_dir = empty / "runs" / "tiny"
    assert (run_dir / "checkpoints" / "latest").exists() and (run_dir / "eval.json").is_file(), r.stdout[-2000:]
    assert json.loads((run_dir / "eval.json").read_text())
    steps = sorted(p.name for p in (run_dir / "checkpoints").glob("step-*"))
    assert steps and steps[-1].endswith("3"), steps

    where = ("import json, seqdiff, seqdiff_recipes, seqdiff.configs; from seqdiff.cli.main import config_dir;"
             "r = seqdiff.load('runs/tiny');"
             "print(json.dumps([seqdiff.__file__, seqdiff_recipes.__file__, list(seqdiff.configs.__path__)[0],"
             " str(config_dir()), type(r.domain).__module__, r.model.num_parameters()]))")
    core, recipes, configs, config_dir, domain_module, params = json.loads(run([py, "-c", where], cwd=empty, env=env).stdout)
    for path in (core, recipes, configs, config_dir):
        assert Path(path).resolve().is_relative_to(site.resolve()), path
        assert not Path(path).resolve().is_relative_to(ROOT), path
    assert domain_module.startswith("seqdiff_recipes.") and params > 0
    print(f"wheel build {times['build']:.0f} s, fresh venv + install {times['install']:.0f} s, "
          f"--help + 3-step train from an empty directory {times['train']:.0f} s, "
          f"all {time.perf_counter() - start:.0f} s")
