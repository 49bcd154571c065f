"""The bad-input harness shared by tests/bad_inputs/: the real CLI in a warm forked
``python -m seqdiff`` (``forkrun.py``), tiny run settings, and the one-line error check."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository

# DNA runs on the synthetic Markov source (the default data) or a FASTA: tiny everything.
TINY = [
    "trainer.steps=2", "trainer.batch_size=4", "trainer.progress=false", "trainer.eval_every=0",
    "trainer.log_every=1", "trainer.tensorboard=false", "trainer.ckpt_every=0",
    "backbone.d_model=16", "backbone.n_layers=1", "backbone.n_heads=2",
    "data.seq_len=32", "eval.max_sequences=4", "eval.num_samples=0", "eval.draws=1",
]
MARKOV = ["data.train_tokens=4096", "data.valid_tokens=512", "data.test_tokens=512", "data.record_length=256"]
TEXT = ["experiment=text_char", *TINY]


@dataclass
class Case:
    argv: list[str]
    expect: str  # regex the error line must match (after "error: ")
    names: list[Path] = field(default_factory=list)  # paths the line must name
    run_dir: Path | None = None  # a run directory that must not be created
    out: Path | None = None  # an output file that must not be written
    debug_expect: str | None = None  # what --debug's output must contain (default: expect)
    code: int = 2


class WarmCLI:
    """``forkrun.py`` in a subprocess: ``run(argv, cwd)`` is ``python -m seqdiff *argv``."""

    def __init__(self, env: dict) -> None:
        self.env = env
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("forkrun.py"))], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
        assert self.proc.poll() is None, "forkrun.py died"
        self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "env": self.env}) + "\n")
        self.proc.stdin.flush()
        res = json.loads(self.proc.stdout.readline())
        return subprocess.CompletedProcess(argv, res["rc"], res["stdout"], res["stderr"])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def tree(d: Path) -> dict[str, int]:
    return {p.relative_to(d).as_posix(): p.stat().st_size for p in d.rglob("*") if p.is_file()}


def check_one_line(r: subprocess.CompletedProcess, c: Case, name: str) -> str:
    assert r.returncode == c.code, f"{name}: exit {r.returncode}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr, f"{name}: traceback without --debug\n{r.stderr[-3000:]}"
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"{name}: expected one stderr line, got {len(lines)}:\n{r.stderr[-3000:]}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert re.search(c.expect, line), f"{name}: {c.expect!r} not in {line!r}"
    for p in c.names:
        assert str(p) in line, f"{name}: {p} not named in {line!r}"
    return line
