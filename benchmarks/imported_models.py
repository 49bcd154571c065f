"""Imported public models on CPU: forward throughput, peak memory, and a cached ancestral sample.

Random weights in the public layouts, mapped through ``seqdiff.interop`` exactly as
``seqdiff import`` maps a real checkpoint (export of a random seqdiff model into the layout,
then import), so the measured modules are the imported ones:

- **mdlm-owt-shaped DiT** (12 x 768, 12 heads, vocabulary 50,258 + [PAD], tanh GELU, float32
  rotary table; 169.6M parameters): forward tokens/s at L=1024, batch 1 and 8, next to
  ``transformers``' ``BertForMaskedLM`` of the same width/depth/vocabulary (SDPA attention);
- **Caduceus-PH 131k-shaped** (d=256, 16 layers; 7.7M parameters): forward tokens/s at
  L=16,384, batch 1, plain (``conjoin: never``, the reference forward) and RC-conjoined (the
  imported default, ``conjoin: eval``: both strands);
- **a cached ancestral sample** of 1,024 tokens from the 169M DiT (MDLM's ``ddpm_cache``:
  ``--sample-steps`` grid steps, one network call per step that reveals something):
  seconds per sample and network calls, on ``--sample-threads`` (2) CPU threads.

Every measurement runs in its own spawned process, so its peak memory is that process's peak
resident set size (``ru_maxrss``: weights + activations + the interpreter, ~0.3 GB of it
torch itself) and one model's allocations do not leak into another's number.

    python benchmarks/imported_models.py            # the full sizes above (minutes; use a quiet machine)
    python benchmarks/imported_models.py --quick    # reduced sizes: a smoke test of the script

One JSON line per measurement, then a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FULL = {
    "dit": {"d_model": 768, "n_layers": 12, "n_heads": 12, "vocab": 50258, "length": 1024, "batches": [1, 8]},
    "caduceus": {"d_model": 256, "n_layers": 16, "length": 16384, "batch": 1},
    "sample": {"length": 1024, "steps": 1000},
}
QUICK = {
    "dit": {"d_model": 64, "n_layers": 2, "n_heads": 4, "vocab": 1000, "length": 128, "batches": [1, 2]},
    "caduceus": {"d_model": 32, "n_layers": 2, "length": 512, "batch": 1},
    "sample": {"length": 64, "steps": 64},
}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _vocab(size_mdlm: int):
    from seqdiff.vocab import VocabSpec

    return VocabSpec(size=size_mdlm + 1, mask_id=size_mdlm - 1, pad_id=size_mdlm)


def imported_dit(s: dict):
    """A random seqdiff DiT written in MDLM-OWT's layout and imported back (the imported module)."""
    import torch

    from seqdiff.backbones import DiT
    from seqdiff.interop import mdlm

    vocab = _vocab(s["vocab"])
    torch.manual_seed(0)
    src = DiT(vocab.size, d_model=s["d_model"], n_layers=s["n_layers"], n_heads=s["n_heads"], gelu="tanh",
              rope_angles="float32")
    with torch.no_grad():
        src.out.weight.normal_(0, 0.02)  # DiT zero-initialises its head; random logits are more realistic
    backbone = {"_target_": "seqdiff.backbones.DiT", "n_heads": s["n_heads"], "cond_dim": 128, "gelu": "tanh",
                "rope_angles": "float32", "dropout": 0.1}
    hf, tensors = mdlm.from_seqdiff(backbone, src.state_dict(), vocab, s["length"], "benchmark")
    del src
    backbone, state = mdlm.to_seqdiff({**hf, "gelu": "tanh"}, tensors, vocab, Path("random"), Path("config.json"))
    model = DiT(vocab.size, **{k: v for k, v in backbone.items() if k != "_target_"})
    model.load_state_dict(state, strict=True)
    return model.eval(), vocab


def imported_caduceus_ph(s: dict, conjoin: str):
    import torch

    from seqdiff.backbones import CaduceusPH
    from seqdiff.interop import caduceus
    from seqdiff.vocab import VocabSpec

    vocab = VocabSpec(size=7, mask_id=5, pad_id=6, complement=(3, 2, 1, 0, 4, 5, 6),
                      tokens=("A", "C", "G", "T", "N", "[MASK]", "[PAD]"))
    torch.manual_seed(0)
    src = CaduceusPH(7, vocab=vocab, d_model=s["d_model"], n_layers=s["n_layers"])
    backbone = {"_target_": "seqdiff.backbones.CaduceusPH", "d_model": s["d_model"], "n_layers": s["n_layers"]}
    hf, tensors = caduceus.from_seqdiff(backbone, src.state_dict(), vocab, s["length"], "benchmark")
    backbone, state = caduceus.to_seqdiff(hf, tensors, vocab, Path("random"), Path("config.json"))
    backbone["conjoin"] = conjoin
    model = CaduceusPH(7, vocab=vocab, **{k: v for k, v in backbone.items() if k != "_target_"})
    model.load_state_dict(state, strict=True)
    return model.eval(), vocab


def bert(s: dict):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=s["vocab"], hidden_size=s["d_model"], num_hidden_layers=s["n_layers"],
                     num_attention_heads=s["n_heads"], intermediate_size=4 * s["d_model"],
                     max_position_embeddings=max(512, s["length"]), hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, attn_implementation="sdpa")
    return BertForMaskedLM(cfg).eval()


def _time_forward(fn, repeats: int) -> list[float]:
    fn()  # warm-up (allocator, kernels)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def job(kind: str, s: dict, batch: int, threads: int, repeats: int, conn) -> None:
    """One measurement in this (spawned) process; sends a result dict."""
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    base = _rss_mib()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        if kind in ("dit", "bert"):
            model = imported_dit(s)[0] if kind == "dit" else bert(s)
            x = torch.randint(0, s["vocab"] - 1, (batch, s["length"]), generator=g)
            run = (lambda: model(x)) if kind == "dit" else (lambda: model(input_ids=x).logits)
            L = s["length"]
        elif kind.startswith("caduceus"):
            model = imported_caduceus_ph(s, "eval" if kind == "caduceus_conjoined" else "never")[0]
            x = torch.randint(0, 4, (batch, s["length"]), generator=g)
            run, L = (lambda: model(x)), s["length"]
        else:
            raise ValueError(kind)
        params = sum(p.numel() for p in model.parameters())
        times = _time_forward(run, repeats)
    med = statistics.median(times)
    conn.send({"kind": kind, "params": params, "batch": batch, "length": L, "threads": threads,
               "seconds_median": med, "seconds": times, "tokens_per_s": batch * L / med,
               "peak_rss_mib": _rss_mib(), "rss_before_model_mib": base})


def sample_job(s_dit: dict, s: dict, threads: int, conn) -> None:
    import torch

    from seqdiff.processes import MaskedDiffusion
    from seqdiff.samplers import AncestralSampler

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    model, vocab = imported_dit({**s_dit, "length": s["length"]})
    process = MaskedDiffusion(vocab)
    sampler = AncestralSampler(vocab, process.schedule, num_steps=s["steps"], cache=True)
    denoiser = process.denoiser(model)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = sampler.sample(denoiser, 1, s["length"], generator=torch.Generator().manual_seed(0))
    dt = time.perf_counter() - t0
    conn.send({"kind": "sample", "params": sum(p.numel() for p in model.parameters()), "length": s["length"],
               "steps": s["steps"], "threads": threads, "seconds_per_sample": dt, "nfe": float(out.nfe.double().mean()),
               "seconds_per_call": dt / max(1.0, float(out.nfe.double().mean())), "peak_rss_mib": _rss_mib()})


def spawn(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=target, args=(*args, child))
    p.start()
    res = parent.recv()
    p.join()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced sizes (a smoke test; numbers mean little)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="intra-op threads for the forward passes")
    ap.add_argument("--sample-threads", type=int, default=2, help="threads for the sampling measurement")
    ap.add_argument("--repeats", type=int, default=3, help="timed forward passes per measurement")
    ap.add_argument("--sample-steps", type=int, default=None, help="ancestral grid steps (default 1000; quick 64)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["dit", "bert", "caduceus", "sample"])
    args = ap.parse_args()
    sizes = QUICK if args.quick else FULL
    sample = dict(sizes["sample"])
    if args.sample_steps:
        sample["steps"] = args.sample_steps
    results = []
    meta = {"quick": args.quick, "cpu_count": os.cpu_count(), "loadavg": os.getloadavg()}
    print(json.dumps({"meta": meta}))
    for kind in ("dit", "bert"):
        if kind in args.skip:
            continue
        for b in sizes["dit"]["batches"]:
            results.append(spawn(job, kind, sizes["dit"], b, args.threads, args.repeats))
            print(json.dumps(results[-1]), flush=True)
    if "caduceus" not in args.skip:
        for kind in ("caduceus_plain", "caduceus_conjoined"):
            c = sizes["caduceus"]
            results.append(spawn(job, kind, c, c["batch"], args.threads, max(1, args.repeats - 1)))
            print(json.dumps(results[-1]), flush=True)
    if "sample" not in args.skip:
        results.append(spawn(sample_job, sizes["dit"], sample, args.sample_threads))
        print(json.dumps(results[-1]), flush=True)
    names = {"dit": "imported MDLM-OWT DiT (seqdiff)", "bert": "BertForMaskedLM (transformers, SDPA)",
             "caduceus_plain": "imported Caduceus-PH (conjoin never)", "caduceus_conjoined": "imported Caduceus-PH (conjoined, 2 strands)"}
    print("\n| model | params | batch x L | threads | forward s (median) | tokens/s | peak RSS MiB |\n|---|---|---|---|---|---|---|")
    for r in results:
        if r["kind"] == "sample":
            continue
        print(f"| {names[r['kind']]} | {r['params'] / 1e6:.1f}M | {r['batch']} x {r['length']} | {r['threads']} | "
              f"{r['seconds_median']:.3f} | {r['tokens_per_s']:,.0f} | {r['peak_rss_mib']:,.0f} |")
    for r in results:
        if r["kind"] == "sample":
            print(f"\ncached ancestral sample: {r['length']} tokens, {r['steps']} steps, {r['threads']} threads, "
                  f"{r['params'] / 1e6:.1f}M params: {r['seconds_per_sample']:.1f} s per sample, {r['nfe']:.0f} network "
                  f"calls ({r['seconds_per_call']:.3f} s each), peak RSS {r['peak_rss_mib']:,.0f} MiB")
    print(f"\nload average at start: {meta['loadavg']}; {'QUICK (reduced sizes)' if args.quick else 'full sizes'}")


if __name__ == "__main__":
    main()
