"""Selective scan on CPU: seqdiff's chunked PyTorch scan vs the best public pure-PyTorch one.

The public baseline is mambapy's Blelloch parallel scan (``mambapy.pscan.pscan``, with a
hand-written backward; ``pip install mambapy``, benchmark-only). If it is not installed,
the baseline is a plain sequential loop (time-major buffers, one ``addcmul`` per step),
the simplest exact alternative. Every method computes the same thing,
``y = scan(u, softplus(delta + bias), A, B, C) + D u``, forward and backward with respect
to all of ``u, delta, A, B, C, D``, from inputs already in its own native layout (ours and
mamba-ssm: ``[b, e, l]``; mambapy: ``(b, l, e)``), on S4D-real ``A = -(1..N)``.

Accuracy: relative max error of the output and of every gradient against a float64
double-loop / float64 autograd reference. Timing: median of ``--repeats`` runs after
``--warmup``, methods interleaved so background load hits all of them alike.

    .venv/bin/python benchmarks/ssm_scan.py                 # B=4, E=256, N=16, L=1024, 2 threads

The last line printed is JSON; ``ratio`` = baseline median / ours (>= 1: ours is faster).
With CUDA and mamba-ssm present, the CUDA kernel and our scan on CUDA are timed too.

Run it on a quiet machine (the JSON records the load average): our scan is thousands
of small ops, and with 2 intra-op threads, when other processes hold the cores, every
fork/join can wait a scheduler tick -- measured 2-12 s instead of 0.10 s. mambapy (~100
large ops) and the sequential loop (per-step ops too small to be split) suffer less.
``--scan-threads 1`` runs our scan on one thread (``seqdiff.ops.selective_scan.CPU_THREADS``)
whatever ``--threads`` is: immune to that, ~2x slower on a quiet machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import seqdiff.ops.selective_scan as scan_module  # noqa: E402
from seqdiff.ops import selective_scan_fn, selective_scan_ref  # noqa: E402

NAMES = ("u", "delta", "A", "B", "C", "D")


def make_inputs(b: int, e: int, n: int, L: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "u": torch.randn(b, e, L, generator=g),
        "delta": torch.randn(b, e, L, generator=g) * 0.5 - 1.0,  # softplus -> Delta ~ 0.1-0.6
        "A": -torch.arange(1, n + 1, dtype=torch.float32).repeat(e, 1),
        "B": torch.randn(b, n, L, generator=g),
        "C": torch.randn(b, n, L, generator=g),
        "D": torch.randn(e, generator=g),
        "bias": 0.1 * torch.rand(e, generator=g),
    }


def ours(t, layout=False):
    if layout:
        return t
    return selective_scan_fn(t["u"], t["delta"], t["A"], t["B"], t["C"], t["D"], delta_bias=t["bias"], delta_softplus=True)


def mambapy_scan(t, layout=False):
    """mambapy's ``MambaBlock.selective_scan``, on (b, l, e) tensors."""
    if layout:
        tr = lambda x: x.transpose(1, 2).contiguous()  # noqa: E731
        return {**t, "u": tr(t["u"]), "delta": tr(t["delta"]), "B": tr(t["B"]), "C": tr(t["C"])}
    from mambapy.pscan import pscan

    delta = F.softplus(t["delta"] + t["bias"])
    dA = torch.exp(delta.unsqueeze(-1) * t["A"])
    BX = delta.unsqueeze(-1) * t["B"].unsqueeze(2) * t["u"].unsqueeze(-1)
    hs = pscan(dA, BX)
    return (hs @ t["C"].unsqueeze(-1)).squeeze(3) + t["D"] * t["u"]


def sequential(t, layout=False):
    """Time-major buffers, one addcmul per step; autograd through the loop."""
    if layout:
        return t
    delta = F.softplus(t["delta"] + t["bias"].unsqueeze(-1))
    dA = torch.exp(torch.einsum("bel,en->lben", delta, t["A"])).unbind(0)
    dBu = torch.einsum("bel,bnl,bel->lben", delta, t["B"], t["u"]).unbind(0)
    h, hs = torch.zeros_like(dBu[0]), []
    for a, x in zip(dA, dBu):
        h = torch.addcmul(x, a, h)
        hs.append(h)
    y = torch.einsum("lben,bnl->bel", torch.stack(hs), t["C"])
    return y + t["D"].unsqueeze(-1) * t["u"]


def cuda_kernel(t, layout=False):
    if layout:
        return t
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as kernel

    return kernel(t["u"], t["delta"], t["A"], t["B"], t["C"], t["D"], delta_bias=t["bias"], delta_softplus=True)


def to_bel(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return out if out.shape == like.shape else out.transpose(1, 2)


def reference(inputs: dict, dy: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """float64: the double-loop output, gradients by autograd through the sequential loop."""
    t64 = {k: v.double() for k, v in inputs.items()}
    out = selective_scan_ref(t64["u"], t64["delta"], t64["A"], t64["B"], t64["C"], t64["D"], delta_bias=t64["bias"], delta_softplus=True)
    leaves = {k: v.clone().requires_grad_(k in NAMES) for k, v in t64.items()}
    (sequential(leaves) * dy.double()).sum().backward()
    return out, {k: leaves[k].grad for k in NAMES}


def run_once(fn, native: dict, dy: torch.Tensor, device: str):
    leaves = {k: v.detach().clone().to(device).requires_grad_(k in NAMES) for k, v in native.items()}
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(leaves)
    out.backward(to_bel(dy.to(device), out) if out.shape != dy.shape else dy.to(device))
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out.detach(), {k: leaves[k].grad for k in NAMES}


def rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a.double().cpu() - ref).abs().max() / ref.abs().max().clamp(min=1e-30))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--dstate", type=int, default=16)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-sequential", action="store_true", help="skip the sequential-loop reference point")
    p.add_argument("--scan-threads", type=int, default=None, help="seqdiff's CPU_THREADS (default: use --threads)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    scan_module.CPU_THREADS = args.scan_threads
    inputs = make_inputs(args.batch, args.dim, args.dstate, args.length)
    dy = torch.randn(args.batch, args.dim, args.length, generator=torch.Generator().manual_seed(1))

    have_mambapy = importlib.util.find_spec("mambapy") is not None
    methods = {"seqdiff_chunked": (ours, "cpu")}
    baseline = "mambapy_pscan" if have_mambapy else "sequential_loop"
    if have_mambapy:
        methods["mambapy_pscan"] = (mambapy_scan, "cpu")
    if not args.no_sequential or not have_mambapy:
        methods["sequential_loop"] = (sequential, "cpu")
    if torch.cuda.is_available():
        methods["seqdiff_chunked_cuda"] = (ours, "cuda")
        if importlib.util.find_spec("mamba_ssm") is not None:
            methods["mamba_ssm_cuda_kernel"] = (cuda_kernel, "cuda")

    load_before = os.getloadavg()[0]
    ref_out, ref_grads = reference(inputs, dy)
    native = {name: fn(inputs, layout=True) for name, (fn, _) in methods.items()}
    dys = {name: (dy if native[name]["u"].shape == dy.shape else dy.transpose(1, 2).contiguous()) for name in methods}
    times: dict[str, list[float]] = {name: [] for name in methods}
    errors: dict[str, dict[str, float]] = {}
    for r in range(args.warmup + args.repeats):
        for name, (fn, device) in methods.items():
            dt, out, grads = run_once(fn, native[name], dys[name], device)
            if r >= args.warmup:
                times[name].append(dt)
            if r == 0:
                errors[name] = {"out": rel(to_bel(out, dy), ref_out)}
                for k in NAMES:
                    g = grads[k].double().cpu()
                    errors[name][f"d{k}"] = rel(g if g.shape == ref_grads[k].shape else g.transpose(1, 2), ref_grads[k])

    results = {}
    for name in methods:
        med = statistics.median(times[name])
        results[name] = {
            "median_s": round(med, 4),
            "times_s": [round(x, 4) for x in times[name]],
            "max_rel_err": max(errors[name].values()),
            "rel_err": {k: float(f"{v:.2e}") for k, v in errors[name].items()},
        }
        print(f"{name:24s} median {med:8.4f} s   max rel. error {results[name]['max_rel_err']:.2e}   runs {results[name]['times_s']}")
    record = {
        "benchmark": "ssm_scan_fwd_bwd",
        "shape": {"B": args.batch, "E": args.dim, "N": args.dstate, "L": args.length},
        "threads": args.threads,
        "seqdiff_scan_threads": scan_module.CPU_THREADS or args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_count": os.cpu_count(),
        "baseline": baseline,
        "baseline_note": None if have_mambapy else "mambapy not installed (pip install mambapy); compared with a sequential loop",
        "results": results,
        "ratio": round(results[baseline]["median_s"] / results["seqdiff_chunked"]["median_s"], 3),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
