"""DNA loader throughput vs the model's consumption: is training ever data-bound?

Generates a multi-Mb random FASTA (8 records, soft-masked stretches, N runs) in a temp
dir, builds ``seqdiff_recipes.dna.FastaData`` on it and measures ``train_batch`` at the
quickstart's shape (batch 64 x L=64) and at MDLM's DNA shape (L=1024), plus evaluation
tiling: windows/s and bases/s, one process, no workers. Each ``--fasta PATH`` is
measured the same way after being **copied to a temp dir** (pyfaidx writes its .fai
next to the FASTA; shared data is never indexed in place).

The model's consumption is the quickstart's training tokens/s: read from a
``metrics.jsonl`` (``--metrics``) or measured here with a short
``seqdiff train trainer.steps=100`` in a subprocess (so its memory is not ours).
Headroom = loader bases/s at the quickstart shape / model tokens/s; the goal is >= 50.

    python benchmarks/dna_loader.py
    python benchmarks/dna_loader.py --fasta /work/shared/data/dna/hg38_chrM.fa
    python benchmarks/dna_loader.py --metrics runs/quickstart/metrics.jsonl --mb 64

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqdiff_recipes.dna import DNADomain, FastaData  # noqa: E402
from seqdiff.errors import DataError  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_fasta(path: Path, megabases: float, records: int = 8, seed: int = 0) -> Path:
    """Vectorised: i.i.d. bases with a GC bias, lower-case stretches, N runs, 60 columns."""
    rng = np.random.default_rng(seed)
    n = int(megabases * 1e6) // records
    with open(path, "wb") as f:
        for r in range(records):
            seq = np.frombuffer(b"ACGT", np.uint8)[rng.choice(4, n, p=[0.29, 0.21, 0.21, 0.29])].copy()
            for s in rng.integers(0, n - 500, size=n // 5000):
                seq[s : s + int(rng.integers(50, 400))] |= 32  # soft-masked (lower case)
            for s in rng.integers(0, n - 5000, size=3):
                seq[s : s + int(rng.integers(100, 5000))] = ord("N")
            f.write(f">chr{r + 1} random\n".encode())
            full = (n // 60) * 60
            lines = np.concatenate([seq[:full].reshape(-1, 60), np.full((full // 60, 1), 10, np.uint8)], 1)
            f.write(lines.tobytes())
            if n > full:
                f.write(seq[full:].tobytes() + b"\n")
    return path


def time_train(data: FastaData, batch: int, steps: int, repeats: int) -> dict:
    data.train_batch(0, batch)  # warm (file cache, allocations)
    rates = []
    step = 1
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            data.train_batch(step, batch)
            step += 1
        rates.append(steps * batch / (time.perf_counter() - t0))
    w = statistics.median(rates)
    return {"batch": batch, "seq_len": data.seq_len, "windows_per_s": w, "bases_per_s": w * data.seq_len}


def time_eval(data: FastaData, batch: int, max_sequences: int) -> dict:
    t0 = time.perf_counter()
    n = sum(b.x0.shape[0] for b in data.eval_batches("valid", batch, max_sequences))
    dt = time.perf_counter() - t0
    return {"windows": n, "windows_per_s": n / dt, "bases_per_s": n * data.seq_len / dt}


def measure(fasta: Path, label: str, args) -> dict:
    rss0 = rss_mb()
    t0 = time.perf_counter()
    data = FastaData(DNADomain(), fasta, seq_len=64, seed=0, index_dir=fasta.parent / "cache")
    open_s = time.perf_counter() - t0  # index build + one validation scan (cached afterwards)
    t0 = time.perf_counter()
    FastaData(DNADomain(), fasta, seq_len=64, seed=0, index_dir=fasta.parent / "cache")
    reopen_s = time.perf_counter() - t0
    out = {
        "genome": label,
        "bases": sum(data.fasta.lengths.values()),
        "records": len(data.fasta.names),
        "first_open_s": open_s,
        "reopen_s": reopen_s,
        "quickstart_shape": time_train(data, 64, args.steps, args.repeats),
    }
    try:
        big = FastaData(DNADomain(), fasta, seq_len=1024, seed=0, index_dir=fasta.parent / "cache")
        out["mdlm_dna_shape"] = time_train(big, 64, max(5, args.steps // 4), args.repeats)
    except DataError as e:  # e.g. chrM's 5% held-out pieces are shorter than 1024
        out["mdlm_dna_shape"] = f"skipped: {e}"
    out["eval_tiling"] = time_eval(data, 64, 2048)
    out["rss_growth_mb"] = rss_mb() - rss0
    return out


def model_tokens_per_s(args, tmp: Path) -> tuple[float, float, str]:
    if args.metrics:
        path = Path(args.metrics)
        source = str(path)
    else:
        run = tmp / "quickstart"
        cmd = [
            sys.executable, "-m", "seqdiff", "train", f"run_dir={run}", f"trainer.steps={args.model_steps}",
            "trainer.log_every=10", "trainer.progress=false", "trainer.tensorboard=false",
            "trainer.eval_every=100000", "trainer.ckpt_every=100000", "eval.num_samples=0", "eval.max_sequences=8",
        ]
        print(f"measuring the quickstart's consumption: {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit("quickstart run failed")
        path = run / "metrics.jsonl"
        source = f"seqdiff train trainer.steps={args.model_steps} (quickstart config)"
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rates = [r["tokens_per_s"] for r in recs if "tokens_per_s" in r][1:] or [r["tokens_per_s"] for r in recs if "tokens_per_s" in r]
    # The median of the logged intervals (first one dropped: start-up), and the max, since
    # headroom must hold against the model's fastest pace, not its average.
    return statistics.median(rates), max(rates), source


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=float, default=16.0, help="size of the generated FASTA in megabases")
    p.add_argument("--fasta", action="append", default=[], help="also measure this FASTA (copied to a temp dir first)")
    p.add_argument("--metrics", default=None, help="quickstart metrics.jsonl to read tokens_per_s from (skips the model run)")
    p.add_argument("--model-steps", type=int, default=100)
    p.add_argument("--steps", type=int, default=100, help="train_batch calls per timing repeat")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="seqdiff-dna-bench-") as tmpdir:
        tmp = Path(tmpdir)
        os.environ["SEQDIFF_CACHE_DIR"] = str(tmp / "cache")
        gen = tmp / "random"
        gen.mkdir()
        t0 = time.perf_counter()
        fa = random_fasta(gen / "random.fa", args.mb)
        print(f"generated {fa.stat().st_size / 1e6:.1f} MB FASTA in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        results = [measure(fa, f"random {args.mb:g} Mb", args)]
        for i, src in enumerate(args.fasta):
            d = tmp / f"copy{i}"
            d.mkdir()
            dst = d / Path(src).name
            shutil.copyfile(src, dst)  # never index the original in place
            results.append(measure(dst, str(src), args))
        peak = peak_rss_mb()
        tok_med, tok_max, source = model_tokens_per_s(args, tmp)

    loader = results[0]["quickstart_shape"]["bases_per_s"]
    for r in results:
        q = r["quickstart_shape"]
        line = f"{r['genome']}: {r['bases']:,} bases in {r['records']} records, open {r['first_open_s']:.2f} s (again {r['reopen_s']:.3f} s)"
        line += f"\n  train 64x64:   {q['windows_per_s']:,.0f} windows/s  {q['bases_per_s'] / 1e6:.2f} M bases/s"
        if isinstance(r.get("mdlm_dna_shape"), dict):
            m = r["mdlm_dna_shape"]
            line += f"\n  train 64x1024: {m['windows_per_s']:,.0f} windows/s  {m['bases_per_s'] / 1e6:.2f} M bases/s"
        e = r["eval_tiling"]
        line += f"\n  eval tiling:   {e['windows_per_s']:,.0f} windows/s  ({e['windows']} windows)   RSS growth {r['rss_growth_mb']:.1f} MB"
        print(line)
    print(f"model (quickstart) consumes {tok_med:,.0f} tokens/s median, {tok_max:,.0f} max  [{source}]")
    print(f"headroom: {loader / tok_med:.0f}x median, {loader / tok_max:.0f}x worst case (goal >= 50x); peak RSS of this process {peak:.0f} MB")
    print(
        json.dumps(
            {
                "loader_bases_per_s": loader,
                "loader_windows_per_s": results[0]["quickstart_shape"]["windows_per_s"],
                "model_tokens_per_s_median": tok_med,
                "model_tokens_per_s_max": tok_max,
                "headroom_median": loader / tok_med,
                "headroom_worst": loader / tok_max,
                "goal": 50,
                "peak_rss_mb": peak,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
