"""Cached (first-hitting) vs uncached ancestral sampling: wall-clock and backbone calls.

MDLM's benchmark setting: one sequence at a time (batch 1), log-linear schedule, no
time conditioning. Without caching the backbone runs at all T steps; with exact caching
only at steps where some token is revealed, so the ideal speedup is
T / E[#distinct reveal steps] = T / (T (1 - (1 - 1/T)^L)): 4.4x at L=256, T=1000 and
5.4x at L=1024, T=5000. MDLM's own cache reached 2.8x at L=1024, T=5000 (40.1 s vs
113.8 s for 64 samples on an A5000).

    python benchmarks/sampler_cache.py                      # both settings, CPU, DiT 128x4
    python benchmarks/sampler_cache.py --quick              # L=256, T=1000 only

Each setting runs the two samplers alternately (``--repeats`` times each, same seeds)
and reports median wall-clock, backbone evaluations, the speedup and its fraction of
the ideal. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from seqdiff.backbones import DiT
from seqdiff.processes import MaskedDiffusion
from seqdiff.samplers import AncestralSampler
from seqdiff.vocab import VocabSpec


def ideal_speedup(L: int, T: int) -> float:
    return 1.0 / (1.0 - (1.0 - 1.0 / T) ** L)


def run_setting(model, proc, vocab, L: int, T: int, repeats: int, device) -> dict:
    denoiser = proc.denoiser(model)
    times = {True: [], False: []}
    nfe = {True: [], False: []}
    for r in range(repeats):
        for cache in (False, True):
            s = AncestralSampler(vocab, proc.schedule, num_steps=T, cache=cache)
            gen = torch.Generator(device=device).manual_seed(r)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = s.sample(denoiser, 1, L, generator=gen, device=device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[cache].append(time.perf_counter() - t0)
            nfe[cache].append(int(out.nfe[0]))
            assert not (out.tokens == vocab.mask_id).any()
    tc, tu = statistics.median(times[True]), statistics.median(times[False])
    ideal = ideal_speedup(L, T)
    return {
        "L": L,
        "T": T,
        "uncached_s": tu,
        "cached_s": tc,
        "uncached_nfe": statistics.median(nfe[False]),
        "cached_nfe": statistics.median(nfe[True]),
        "speedup": tu / tc,
        "nfe_speedup": statistics.median(nfe[False]) / statistics.median(nfe[True]),
        "ideal_speedup": ideal,
        "fraction_of_ideal": (tu / tc) / ideal,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="only L=256, T=1000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    vocab = VocabSpec(size=7, mask_id=5, pad_id=6)
    model = DiT(7, d_model=args.width, n_layers=args.layers, n_heads=4).to(device).eval()
    with torch.no_grad():  # a non-trivial (random) denoiser; the head starts at zero otherwise
        model.out.weight.normal_(0, 0.02)
    proc = MaskedDiffusion(vocab)
    settings = [(256, 1000)] + ([] if args.quick else [(1024, 5000)])
    results = []
    for L, T in settings:
        reps = args.repeats if L <= 256 else max(1, args.repeats // 3)
        res = run_setting(model, proc, vocab, L, T, reps, device)
        results.append(res)
        print(
            f"L={L} T={T}: uncached {res['uncached_s']:.2f} s ({res['uncached_nfe']} calls) | cached "
            f"{res['cached_s']:.2f} s ({res['cached_nfe']} calls) | speedup {res['speedup']:.2f}x of ideal "
            f"{res['ideal_speedup']:.2f}x ({100 * res['fraction_of_ideal']:.0f}%)",
            flush=True,
        )
    print(json.dumps({"device": str(device), "model": f"DiT {args.width}x{args.layers}", "results": results}))


if __name__ == "__main__":
    main()
