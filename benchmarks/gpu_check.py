"""Everything seqdiff needs to prove on a GPU, in one device call (issue 17).

    bash benchmarks/gpu_prep.sh              # on the CPU machine: sources + wheels into .device/
    # then, on the lent GPU (carry .device):  bash benchmarks/gpu_check.sh
    python benchmarks/gpu_check.py --rehearse --out /tmp/gpu_rehearsal   # every step, tiny, on CPU

Steps (each a subprocess with its own time budget, so one failure or hang costs only its
budget; results are written to ``$OUT/gpu_results.json`` after every step):

1. ``mamba``: mamba-ssm built for sm_90 (by gpu_check.sh, in the background while steps 2,
   5 and 6 run), then ``pytest -m gpu`` (the CUDA parity tests of the selective scan and the
   Mamba blocks against the pure-PyTorch path).
2. ``throughput``: bf16 training tokens/s and MFU (dense bf16 peak 989 TFLOP/s), seqdiff
   DiT-small (768/12/12, L=1024) vs HF ``BertForMaskedLM`` of the same shape with SDPA, side by
   side in one process, eager and with ``torch.compile``.
3. ``caduceus``: Caduceus-PH at MDLM's DNA size (d=118, 4 layers, L=1024) and at the 131k
   checkpoint's shape (d=256, 16 layers, L=131,072, batch 1): tokens/s with mamba-ssm's
   kernels vs the pure-PyTorch scan on the same GPU (``SEQDIFF_MAMBA_KERNELS=0``), peak memory.
4. ``hg38``: ``experiment=dna_hg38_mdlm`` for 300 steps, bf16, on a synthetic genome FASTA +
   BED of HG38's layout written here; stopped by SIGTERM after its step-150 checkpoint and
   resumed; steps/s, loss falling, bits/base evaluated.
5. ``sampling``: cached ancestral sampling, 64 x 1024 tokens, T=1000, DiT-small (MDLM: 40.1 s
   on an A5000, cached), and the AR baseline's KV-cached decoding of the same shape.
6. ``torchrun``: single-rank NCCL DDP and FSDP smoke runs.

``python benchmarks/gpu_readme.py RESULTS.json`` prints the README table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEAK_BF16 = 989e12  # H100 / H200 dense bf16, FLOP/s


# ------------------------------------------------------------------------------ helpers
def sh(cmd: list[str], timeout: float, env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run ``cmd``; never raises. Returns rc, seconds, the tail of stdout/stderr."""
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd or ROOT)
        out = {"rc": r.returncode, "stdout": r.stdout[-4000:], "stderr": r.stderr[-4000:]}
    except subprocess.TimeoutExpired as e:
        out = {"rc": 124, "stdout": (e.stdout or b"")[-4000:].decode() if isinstance(e.stdout, bytes) else (e.stdout or "")[-4000:],
               "stderr": f"timed out after {timeout:.0f} s"}
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def step_self(name: str, args, timeout: float, env: dict | None = None) -> dict:
    """This script's ``--step NAME`` in a fresh process (its own CUDA context and env)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", name, "--out", str(args.out)]
    if args.rehearse:
        cmd.append("--rehearse")
    r = sh(cmd, timeout, env=env)
    res = last_json(r["stdout"]) or {}
    res.setdefault("rc", r["rc"])
    res["wall_s"] = r["seconds"]
    if r["rc"] != 0:
        res["error"] = (r["stderr"] or r["stdout"])[-1500:]
    return res


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------ step bodies (--step)
def body_env(args) -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        sync()
        t0 = time.perf_counter()
        for _ in range(10):
            a @ b
        sync()
        info["bf16_matmul_tflops"] = 10 * 2 * 8192**3 / (time.perf_counter() - t0) / 1e12
    try:
        import mamba_ssm  # noqa: F401

        info["mamba_ssm"] = getattr(mamba_ssm, "__version__", "installed")
    except Exception as e:  # not built (yet) or failed
        info["mamba_ssm"] = f"unavailable: {type(e).__name__}: {e}"[:300]
    return info


def body_caduceus(args) -> dict:
    """tokens/s (forward + backward, bf16 autocast) and peak memory of Caduceus-PH, in whichever
    scan mode the environment selects (SEQDIFF_MAMBA_KERNELS)."""
    import torch

    from seqdiff.backbones.caduceus import CaduceusPH
    from seqdiff.backbones.mamba import cuda_kernels
    from seqdiff.vocab import VocabSpec

    dev = device()
    vocab = VocabSpec(size=7, mask_id=5, pad_id=6, complement=(3, 2, 1, 0, 4, 5, 6))
    shapes = [("mdlm_dna", 118, 4, 1024, 32), ("131k", 256, 16, 131072, 1)]
    if args.rehearse:
        shapes = [("mdlm_dna", 16, 1, 64, 2), ("131k", 16, 2, 256, 1)]
    out = {"kernels": cuda_kernels()[0] is not None and dev.type == "cuda", "shapes": {}}
    for name, d, n, L, B in shapes:
        row: dict = {"d_model": d, "n_layers": n, "length": L, "batch": B}
        try:
            torch.manual_seed(0)
            model = CaduceusPH(vocab.size, vocab=vocab, d_model=d, n_layers=n, rc_augment=0.0, conjoin="never").to(dev)
            x = torch.randint(0, 4, (B, L), device=dev)
            amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()

            def step():
                with amp:
                    loss = model(x).float().logsumexp(-1).mean()
                loss.backward()

            step()
            sync()
            times = []
            budget = time.perf_counter() + (40 if not args.rehearse else 5)
            while len(times) < 5 and time.perf_counter() < budget:
                t0 = time.perf_counter()
                step()
                sync()
                times.append(time.perf_counter() - t0)
            med = sorted(times)[len(times) // 2]
            row.update(tokens_per_s=B * L / med, step_s=med, timed_steps=len(times))
            if dev.type == "cuda":
                row["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
        except Exception as e:  # OOM or a kernel failure: recorded, next shape
            row["error"] = f"{type(e).__name__}: {e}"[:500]
        out["shapes"][name] = row
        del_model = None  # noqa: F841
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return out


def body_sampling(args) -> dict:
    """Cached ancestral sampling (MDLM's benchmark shape) and KV-cached AR decoding."""
    import torch

    from seqdiff.backbones import DiT
    from seqdiff.processes import AutoregressiveProcess, MaskedDiffusion
    from seqdiff.samplers import AncestralSampler, AutoregressiveSampler
    from seqdiff.vocab import VocabSpec

    dev = device()
    V = 50258 if not args.rehearse else 64
    vocab = VocabSpec(size=V + 1, mask_id=V - 1, pad_id=V)
    n, L, T = (64, 1024, 1000) if not args.rehearse else (4, 32, 50)
    shape = dict(d_model=768, n_layers=12, n_heads=12) if not args.rehearse else dict(d_model=32, n_layers=1, n_heads=2)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    out = {"num_samples": n, "length": L, "num_steps": T}
    torch.manual_seed(0)
    mdlm = DiT(vocab.size, **shape).to(dev).eval()
    proc = MaskedDiffusion(vocab)
    sampler = AncestralSampler(vocab, proc.schedule, num_steps=T, cache=True)
    with torch.no_grad(), amp:
        sampler.sample(proc.denoiser(mdlm), 2, min(L, 64), generator=torch.Generator().manual_seed(1), device=dev)  # warm-up
        sync()
        t0 = time.perf_counter()
        res = sampler.sample(proc.denoiser(mdlm), n, L, generator=torch.Generator().manual_seed(0), device=dev)
        sync()
    out["mdlm_cached_s"] = time.perf_counter() - t0
    out["mdlm_nfe_per_sample"] = float(res.nfe.double().mean())
    out["mdlm_calls"] = res.calls
    del mdlm
    ar = DiT(vocab.size, causal=True, **shape).to(dev).eval()
    aproc = AutoregressiveProcess(vocab)
    asampler = AutoregressiveSampler(vocab)
    with torch.no_grad(), amp:
        asampler.sample(aproc.denoiser(ar), 2, 16, generator=torch.Generator().manual_seed(1), device=dev)
        sync()
        t0 = time.perf_counter()
        res = asampler.sample(aproc.denoiser(ar), n, L, generator=torch.Generator().manual_seed(0), device=dev)
        sync()
    out["ar_kv_cached_s"] = time.perf_counter() - t0
    out["ar_calls"] = res.calls
    out["mdlm_published_a5000_s"] = 40.1
    return out


BODIES = {"env": body_env, "caduceus": body_caduceus, "sampling": body_sampling}


# ------------------------------------------------------------------------------ synthetic HG38
def write_genome(d: Path, total_mb: float, seed: int = 0) -> tuple[Path, Path]:
    """A genome FASTA of HG38's texture (soft-masked runs, N gaps) and a Basenji-style BED of
    131,072-bp rows labelled train/valid/test by chromosome."""
    import numpy as np

    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    fa, bed = d / "genome.fa", d / "regions.bed"
    n_chrom = 8
    length = int(total_mb * 1e6 / n_chrom)
    row = 131_072 if length >= 4 * 131_072 else max(1024, length // 8)
    lut = np.frombuffer(b"ACGTacgt", dtype=np.uint8)
    rows = []
    with open(fa, "wb") as f:
        for c in range(n_chrom):
            name = f"chr{c + 1}"
            base = rng.integers(0, 4, length, dtype=np.uint8)
            soft = np.repeat(rng.random(length // 1000 + 1) < 0.5, 1000)[:length]
            seq = lut[base + 4 * soft]
            gap = min(5000, length // 400)
            for s in range(0, length, length // 20 + 1):  # N gaps, about 1% of the sequence
                seq[s : s + gap] = ord("N")
            f.write(f">{name}\n".encode())
            for i in range(0, length, 60):
                f.write(seq[i : i + 60].tobytes() + b"\n")
            split = "test" if c == n_chrom - 1 else ("valid" if c == n_chrom - 2 else "train")
            rows += [(name, s, s + row, split) for s in range(0, length - row + 1, row)]
    bed.write_text("".join(f"{c}\t{s}\t{e}\t{sp}\n" for c, s, e, sp in rows))
    return fa, bed


def run_hg38(args, env: dict) -> dict:
    """300 bf16 steps of MDLM's DNA recipe, SIGTERM after the step-150 checkpoint, resumed."""
    data = Path(args.work) / "hg38"
    t0 = time.perf_counter()
    fa, bed = write_genome(data, 0.5 if args.rehearse else 200.0)
    out: dict = {"genome_write_s": time.perf_counter() - t0, "genome_mb": fa.stat().st_size / 1e6}
    run = Path(args.work) / "hg38_run"
    steps, half = (8, 4) if args.rehearse else (300, 150)
    cmd = [sys.executable, "-m", "seqdiff", "train", "experiment=dna_hg38_mdlm", f"data.fasta={fa}", f"data.bed={bed}",
           f"run_dir={run}", f"trainer.steps={steps}", f"trainer.ckpt_every={half}", "trainer.precision=bf16",
           "trainer.log_every=10", "trainer.eval_every=0", "trainer.progress=false", "trainer.warmup=30",
           "eval.max_sequences=256", "eval.num_samples=8", "eval.draws=2", f"data.index_dir={data}"]
    if args.rehearse:
        cmd += ["trainer.batch_size=2", "trainer.grad_accum=1", "data.seq_len=128", "trainer.log_every=1",
                "trainer.precision=fp32", "eval.max_sequences=4", "eval.num_samples=2", "backbone.d_model=16",
                "backbone.n_layers=1"]
    ckpt = run / "checkpoints" / f"step-{half:08d}"
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = t0 + (150 if not args.rehearse else 300)
    while p.poll() is None and not ckpt.exists() and time.perf_counter() < deadline:
        time.sleep(0.5)
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)  # the trainer saves a checkpoint and exits
    first, _ = p.communicate(timeout=120)
    out["first_s"] = time.perf_counter() - t0
    out["first_tail"] = first[-1500:]
    r = sh(cmd, timeout=200 if not args.rehearse else 300, env=env)
    out["second_s"], out["second_rc"] = r["seconds"], r["rc"]
    out["second_tail"] = (r["stdout"] + r["stderr"])[-2000:]
    out["resumed"] = "resumed from step" in r["stdout"] + r["stderr"]
    recs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()] if (run / "metrics.jsonl").exists() else []
    losses = [x["loss"] for x in recs if isinstance(x.get("loss"), (int, float))]
    out["last_step"] = recs[-1]["step"] if recs else None
    if losses:
        k = max(1, len(losses) // 5)
        out["loss_first"], out["loss_last"] = sum(losses[:k]) / k, sum(losses[-k:]) / k
        out["loss_falling"] = out["loss_last"] < out["loss_first"]
    tps = [x["tokens_per_s"] for x in recs if "tokens_per_s" in x]
    if tps:
        out["tokens_per_s_median"] = sorted(tps)[len(tps) // 2]
        out["steps_per_s"] = out["tokens_per_s_median"] / ((2 if args.rehearse else 256 * 4) * (128 if args.rehearse else 1024))
    ev = run / "eval.json"
    if ev.exists():
        rep = json.loads(ev.read_text())
        lik = rep.get("likelihood_bound") or rep.get("likelihood") or {}
        out["bits_per_base"] = lik.get("bits_per_token")
        out["bits_ci95"] = lik.get("bits_ci95")
    out["rc"] = 0 if (r["rc"] == 0 and out["resumed"]) else (r["rc"] or 1)
    return out


def run_torchrun(args, env: dict) -> dict:
    exe = Path(sys.executable).parent / "torchrun"
    base = [str(exe) if exe.exists() else "torchrun", "--standalone", "--nproc_per_node=1", "-m", "seqdiff", "train",
            "trainer.steps=20", "trainer.progress=false", "eval.num_samples=4", "eval.max_sequences=64", "trainer.eval_every=0"]
    if args.rehearse:
        base += ["trainer.steps=3", "backbone.d_model=16", "backbone.n_layers=1", "backbone.n_heads=2", "trainer.batch_size=4"]
    out = {}
    for name, extra in (("ddp", []), ("fsdp", ["trainer.parallel=fsdp"])):
        r = sh(base + [f"run_dir={Path(args.work) / ('torchrun_' + name)}", *extra], timeout=150, env=env)
        out[name] = {"rc": r["rc"], "seconds": r["seconds"], "tail": (r["stdout"] + r["stderr"])[-800:]}
    out["rc"] = max(v["rc"] for v in out.values())
    return out


def run_throughput(args, env: dict) -> dict:
    cmd = [sys.executable, "benchmarks/train_throughput.py", "--width", "768", "--layers", "12", "--heads", "12",
           "--length", "1024", "--batch", "16", "--steps", "15", "--warmup", "3"]
    if args.rehearse:
        cmd = [sys.executable, "benchmarks/train_throughput.py", "--width", "32", "--layers", "1", "--heads", "2",
               "--length", "64", "--batch", "2", "--steps", "2", "--warmup", "1", "--vocab", "64"]
    out = {}
    for name, extra in (("eager", []), ("compile", ["--compile"])):
        r = sh(cmd + extra, timeout=(180 if name == "eager" else 240) if not args.rehearse else 600, env=env)
        out[name] = last_json(r["stdout"]) or {"rc": r["rc"], "error": (r["stderr"] or r["stdout"])[-1500:]}
    out["rc"] = 0 if all("ratio" in v for v in out.values()) else 1
    return out


def run_mamba_tests(args, env: dict) -> dict:
    r = sh([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests/ops/test_selective_scan.py", "tests/backbones/test_mamba.py",
            "-p", "no:cacheprovider", "-rs"], timeout=240, env=env)
    return {"rc": r["rc"], "seconds": r["seconds"], "tail": r["stdout"][-2500:]}


# ------------------------------------------------------------------------------ orchestration
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/gpu_check"))
    ap.add_argument("--work", default="/tmp/gpu_check_work")
    ap.add_argument("--rehearse", action="store_true", help="tiny sizes on any device (CPU rehearsal)")
    ap.add_argument("--step", choices=sorted(BODIES), help="(internal) run one step's body in this process")
    ap.add_argument("--mamba-build-done", default=None, help="file that gpu_check.sh creates when the build ends")
    ap.add_argument("--budget", type=float, default=530.0, help="seconds for all steps together")
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if args.step:
        print(json.dumps(BODIES[args.step](args), default=str))
        return
    t_start = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "SEQDIFF_CACHE_DIR": str(Path(args.work) / "cache")}
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "rehearsal": args.rehearse, "steps": {}}
    path = Path(args.out) / "gpu_results.json"

    def record(name: str, res: dict) -> None:
        results["steps"][name] = res
        results["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        path.write_text(json.dumps(results, indent=1, default=str))
        status = "ok" if res.get("rc", 0) == 0 and "error" not in res else "FAILED"
        print(f"[{results['elapsed_s']:6.1f} s] {name}: {status}", flush=True)

    record("env", step_self("env", args, 60, env))
    record("throughput", run_throughput(args, env))
    record("sampling", step_self("sampling", args, 150, env))
    record("torchrun", run_torchrun(args, env))
    if args.mamba_build_done:  # wait for gpu_check.sh's background build (at most 4 more minutes)
        flag = Path(args.mamba_build_done)
        while not flag.exists() and time.perf_counter() - t_start < 330:
            time.sleep(2)
        results["mamba_build"] = flag.read_text().strip() if flag.exists() else "still building at the deadline"
    record("env_after_build", step_self("env", args, 60, env))
    record("mamba_tests", run_mamba_tests(args, env))
    record("caduceus_kernels", step_self("caduceus", args, 120, env))
    record("caduceus_pure_scan", step_self("caduceus", args, 120, {**env, "SEQDIFF_MAMBA_KERNELS": "0"}))
    if args.rehearse or time.perf_counter() - t_start < args.budget - 60:
        record("hg38", run_hg38(args, env))
    else:
        record("hg38", {"rc": 1, "error": "skipped: out of time budget"})
    ok = sum(1 for r in results["steps"].values() if r.get("rc", 0) == 0 and "error" not in r)
    print(f"{ok}/{len(results['steps'])} steps ok in {time.perf_counter() - t_start:.0f} s; results: {path}")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if not isinstance(vv, str) or len(vv) < 80}
                      for k, v in results["steps"].items()}, default=str)[:6000])


if __name__ == "__main__":
    main()
