"""Backbones side by side on DNA: training-step and sampling throughput.

DiT, BiMamba, Caduceus-PS, Caduceus-PH (masked diffusion, MDLM loss, ancestral sampler)
and the two autoregressive baselines, the causal DiT (``ar_transformer``) and AR Mamba
(next-token loss, left-to-right decoding with a KV cache / recurrent state), all built
from their ``configs/backbone`` YAMLs with the DNA domain, as ``seqdiff train`` does.

Sizes (``--size mdlm``, the default) are matched at MDLM's DNA-table scale, ~0.46M
parameters: Caduceus/BiMamba d=118 x 4 layers, AR Mamba d=128 x 4, DiT / causal DiT
d=112 x 3. ``--size config`` keeps each YAML's own (CPU-sized) defaults.

- train: tokens/s of one full training step (process loss, backward, AdamW step),
  median of ``--steps`` after ``--warmup``;
- sample: tokens/s generating ``--sample-batch`` sequences of length L (MDLM:
  ``--sample-steps`` ancestral steps; AR: L incremental decoding steps), with the
  network evaluations per sample (NFE).

On CUDA (bf16 autocast, as the trainer) every Mamba-based model runs twice when
mamba-ssm is installed: through its CUDA kernels (``scan: mamba_ssm``) and through
seqdiff's PyTorch scan on the same module (``scan: pytorch``).

    python benchmarks/backbones.py                                  # CPU: L=1024 and 256, batch 2
    python benchmarks/backbones.py --lengths 256 --steps 2 --sample-steps 16
    python benchmarks/backbones.py --device cuda --batch 16

One JSON line per (model, L, scan path), then a Markdown table. Timings on a machine
shared with other work are noisy (the JSON records the load average); there ``--threads 1``
is steadier, since with more threads every small op of the scan waits on a fork/join.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import seqdiff.backbones.mamba as mamba_module  # noqa: E402
from seqdiff.cli.main import config_dir  # noqa: E402
from seqdiff.run import build_run  # noqa: E402

MODELS = ("dit", "bimamba", "caduceus_ps", "caduceus_ph", "ar_transformer", "ar_mamba")
# MDLM's DNA table compares models of ~0.47M parameters (Caduceus d=118 x 4, Mamba d=128 x 4).
MDLM_SIZES = {
    "dit": {"d_model": 112, "n_layers": 3, "n_heads": 4, "cond_dim": 112},
    "ar_transformer": {"d_model": 112, "n_layers": 3, "n_heads": 4, "cond_dim": 112},
    "bimamba": {"d_model": 118, "n_layers": 4},
    "caduceus_ps": {"d_model": 118, "n_layers": 4},
    "caduceus_ph": {"d_model": 118, "n_layers": 4},
    "ar_mamba": {"d_model": 128, "n_layers": 4},
}
AR = {"ar_transformer", "ar_mamba"}


def build(name: str, size: str):
    overrides = [f"backbone={name}", "domain=dna"]
    if name in AR:
        overrides += ["process=ar", "sampler=autoregressive"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    d = OmegaConf.to_container(cfg, resolve=True)
    if size == "mdlm":
        d["backbone"].update(MDLM_SIZES[name])
    return build_run(d)


@contextlib.contextmanager
def pytorch_scan():
    """Make the Mamba mixers ignore mamba-ssm / causal-conv1d: seqdiff's own CUDA-capable ops."""
    saved = mamba_module.cuda_kernels
    mamba_module.cuda_kernels = lambda: (None, None)
    try:
        yield
    finally:
        mamba_module.cuda_kernels = saved


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def measure(exp, L: int, args, device: torch.device) -> dict:
    model, process = exp.model, exp.process
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (args.batch, L), generator=g).to(device)  # A/C/G/T ids
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step() -> None:
        with amp:
            out = process.loss(model, x, generator=g)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    model.train()
    for _ in range(args.warmup):
        train_step()
    step_s = statistics.median(timed(train_step, device) for _ in range(args.steps))

    if process.kind == "autoregressive":
        sampler = exp.build_sampler({"_target_": "seqdiff.samplers.AutoregressiveSampler"})
    else:
        sampler = exp.build_sampler({"_target_": "seqdiff.samplers.AncestralSampler", "num_steps": args.sample_steps})
    with amp:
        exp.generate(args.sample_batch, 16, sampler=sampler, device=device)  # warm-up: kernels, caches
        out = {}
        sample_s = timed(lambda: out.update(s=exp.generate(args.sample_batch, L, sampler=sampler, seed=1, device=device)), device)
    return {
        "train_tokens_per_s": args.batch * L / step_s,
        "train_step_ms": 1e3 * step_s,
        "sample_tokens_per_s": args.sample_batch * L / sample_s,
        "sample_s": sample_s,
        "nfe_per_sample": float(out["s"].nfe.double().mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--lengths", nargs="+", type=int, default=[1024, 256])
    ap.add_argument("--size", choices=["mdlm", "config"], default="mdlm")
    ap.add_argument("--batch", type=int, default=2, help="training batch (sequences)")
    ap.add_argument("--steps", type=int, default=3, help="timed training steps (median)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--sample-batch", type=int, default=2)
    ap.add_argument("--sample-steps", type=int, default=64, help="MDLM ancestral steps (AR models always take L)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.set_flush_denormal(True)  # as the trainer does (decays of the SSM scan underflow otherwise)
    has_kernel = device.type == "cuda" and mamba_module.cuda_kernels()[0] is not None
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"

    rows = []
    for L in args.lengths:
        for name in args.models:
            exp = build(name, args.size)
            exp.model.to(device)
            uses_scan = any(isinstance(m, mamba_module.Mamba) for m in exp.model.modules())
            paths = (["mamba_ssm", "pytorch"] if has_kernel else ["pytorch"]) if uses_scan else [None]
            for path in paths:
                load = os.getloadavg()[0]
                with pytorch_scan() if path == "pytorch" and device.type == "cuda" else contextlib.nullcontext():
                    res = measure(exp, L, args, device)
                row = {
                    "benchmark": "backbones", "model": name, "L": L, "scan": path, "device": dev_name,
                    "params": exp.model.num_parameters(), "batch": args.batch, "sample_batch": args.sample_batch,
                    "sample_steps": L if name in AR else args.sample_steps,
                    **{k: round(v, 3) for k, v in res.items()},
                    "loadavg_1m": [round(load, 2), round(os.getloadavg()[0], 2)], "torch": torch.__version__,
                }
                print(json.dumps(row), flush=True)
                rows.append(row)

    print(f"\n{dev_name}, training batch {args.batch}, sampling batch {args.sample_batch}\n")
    print("| model | L | scan | params | train tokens/s | train step ms | sample tokens/s | NFE/sample |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['L']} | {r['scan'] or '-'} | {r['params']:,} | {r['train_tokens_per_s']:,.0f} | "
              f"{r['train_step_ms']:,.0f} | {r['sample_tokens_per_s']:,.0f} | {r['nfe_per_sample']:.0f} |")


if __name__ == "__main__":
    main()
