"""Training throughput: one seqdiff MDLM step (DiT) vs ``transformers``' BertForMaskedLM.

Same width, depth, heads, MLP width, sequence length, batch and vocabulary; both with
AdamW and dropout off, each running its own standard objective: our continuous-time
MDLM NELBO (stratified t, SUBS; the output projection is computed only at masked
positions, since the loss is zero elsewhere) and BERT's 15% masked-LM loss (its head
runs on every position, as BertForMaskedLM does). Steps of the two models are
interleaved (A B A B ...) so machine noise hits both alike; the median step time of
each is reported.

    python benchmarks/train_throughput.py                       # 256 wide x 4 layers, L=256, batch 16
    python benchmarks/train_throughput.py --vocab 7             # DNA-sized vocabulary
    python benchmarks/train_throughput.py --device cuda         # bf16 autocast, reports MFU
    python benchmarks/train_throughput.py --device cuda --compile   # both models under torch.compile

The last line is JSON: tokens/s of each, ``ratio`` = seqdiff / BERT (goal >= 1.0), and
on CUDA the model FLOP utilisation against the GPU's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

import torch

from seqdiff.backbones import DiT
from seqdiff.processes import MaskedDiffusion
from seqdiff.vocab import VocabSpec

# Dense bf16 tensor-core peaks (no sparsity), FLOP/s.
PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12}


def flops_per_token(d: int, layers: int, L: int, vocab: int, head_fraction: float) -> float:
    """Forward+backward FLOPs per token: 6 x matmul params + attention scores/values."""
    body = layers * (12 * d * d)  # qkv (3d^2) + proj (d^2) + MLP (8d^2)
    attn = layers * 2 * L * d  # QK^T and AV, per token
    head = d * vocab * head_fraction
    return 6 * (body + head) + 6 * attn


def build_bert(args, device):
    from transformers import BertConfig, BertForMaskedLM

    cfg = BertConfig(
        vocab_size=args.vocab,
        hidden_size=args.width,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=4 * args.width,
        max_position_embeddings=max(512, args.length),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="sdpa",
    )
    return BertForMaskedLM(cfg).to(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=30522, help="BERT's vocabulary size by default")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per model")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile both models (as trainer.compile=true does)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    torch.manual_seed(0)
    torch.set_flush_denormal(True)  # both models; see seqdiff/train/parallel.py

    vocab = VocabSpec(size=args.vocab, mask_id=args.vocab - 2, pad_id=args.vocab - 1)
    dit = DiT(args.vocab, d_model=args.width, n_layers=args.layers, n_heads=args.heads).to(device)
    proc = MaskedDiffusion(vocab)
    bert = build_bert(args, device)
    opt_dit = torch.optim.AdamW(dit.parameters(), lr=1e-4)
    opt_bert = torch.optim.AdamW(bert.parameters(), lr=1e-4)
    dit_run, bert_run = (torch.compile(dit), torch.compile(bert)) if args.compile else (dit, bert)
    x = torch.randint(0, args.vocab - 2, (args.batch, args.length), device=device)
    gen = torch.Generator().manual_seed(0)

    def step_dit() -> None:
        with amp:
            out = proc.loss(dit_run, x, generator=gen)
        out.loss.backward()
        opt_dit.step()
        opt_dit.zero_grad(set_to_none=True)

    def step_bert() -> None:
        m = torch.rand(x.shape, device=device) < 0.15
        labels = x.masked_fill(~m, -100)
        with amp:
            loss = bert_run(input_ids=x.masked_fill(m, vocab.mask_id), labels=labels).loss
        loss.backward()
        opt_bert.step()
        opt_bert.zero_grad(set_to_none=True)

    def timed(fn) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for _ in range(args.warmup):
        step_dit()
        step_bert()
    t_dit, t_bert = [], []
    for _ in range(args.steps):
        t_dit.append(timed(step_dit))
        t_bert.append(timed(step_bert))
    tokens = args.batch * args.length
    md, mb = statistics.median(t_dit), statistics.median(t_bert)
    res = {
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "shape": {k: getattr(args, k) for k in ("width", "layers", "heads", "length", "batch", "vocab")},
        "seqdiff_params": sum(p.numel() for p in dit.parameters()),
        "bert_params": sum(p.numel() for p in bert.parameters()),
        "seqdiff_tokens_per_s": tokens / md,
        "bert_tokens_per_s": tokens / mb,
        "seqdiff_step_ms_median": 1e3 * md,
        "bert_step_ms_median": 1e3 * mb,
        "ratio": mb / md,
        "compile": args.compile,
    }
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAKS.items() if k in name), None)
        if peak:
            f = flops_per_token(args.width, args.layers, args.length, args.vocab, head_fraction=0.5)
            fb = flops_per_token(args.width, args.layers, args.length, args.vocab, head_fraction=1.0)
            res["seqdiff_mfu"] = f * tokens / md / peak
            res["bert_mfu"] = fb * tokens / mb / peak
            res["peak_flops"] = peak
    print(f"seqdiff DiT MDLM: {res['seqdiff_tokens_per_s']:,.0f} tokens/s | BertForMaskedLM: {res['bert_tokens_per_s']:,.0f} tokens/s")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
