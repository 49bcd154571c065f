"""The README's "Measured on a GPU" table from ``benchmarks/gpu_check.py``'s results JSON.

    python benchmarks/gpu_readme.py /work/.device/.../gpu_results.json
"""

from __future__ import annotations

import json
import sys


def fmt(v, spec=",.0f") -> str:
    return "n/a" if v is None else format(v, spec)


def rows(res: dict) -> list[tuple[str, str]]:
    s = res["steps"]
    env = s.get("env_after_build") or s.get("env") or {}
    out = [("device", f"{env.get('gpu', 'cpu')}, torch {env.get('torch')}, CUDA {env.get('cuda')}, "
                      f"bf16 matmul {fmt(env.get('bf16_matmul_tflops'), '.0f')} TFLOP/s measured"),
           ("mamba-ssm build", str(res.get("mamba_build", "n/a"))),
           ("pytest -m gpu", "passed" if s.get("mamba_tests", {}).get("rc") == 0 else
            f"rc {s.get('mamba_tests', {}).get('rc')}: {s.get('mamba_tests', {}).get('tail', '')[-200:]}")]
    for mode in ("eager", "compile"):
        t = s.get("throughput", {}).get(mode, {})
        if "ratio" in t:
            out.append((f"DiT-small vs BertForMaskedLM, bf16, {mode}",
                        f"{fmt(t['seqdiff_tokens_per_s'])} vs {fmt(t['bert_tokens_per_s'])} tokens/s (x{t['ratio']:.2f}); "
                        f"MFU {100 * t.get('seqdiff_mfu', float('nan')):.1f}% vs {100 * t.get('bert_mfu', float('nan')):.1f}%"))
        else:
            out.append((f"DiT-small vs BertForMaskedLM, {mode}", f"failed: {str(t.get('error', ''))[-200:]}"))
    for mode in ("kernels", "pure_scan"):
        c = s.get(f"caduceus_{mode}", {})
        for name, r in (c.get("shapes") or {}).items():
            val = (f"{fmt(r.get('tokens_per_s'))} tokens/s, peak {fmt(r.get('peak_memory_gb'), '.1f')} GB"
                   if "tokens_per_s" in r else f"failed: {r.get('error', '')[:160]}")
            out.append((f"Caduceus-PH {name} (d={r['d_model']}, {r['n_layers']} layers, L={r['length']}, B={r['batch']}), "
                        f"{mode.replace('_', ' ')}", val))
    h = s.get("hg38", {})
    out.append(("dna_hg38_mdlm, 300 steps bf16 (killed at 150, resumed)",
                f"{fmt(h.get('steps_per_s'), '.2f')} steps/s, loss {fmt(h.get('loss_first'), '.3f')} -> "
                f"{fmt(h.get('loss_last'), '.3f')}, resumed: {h.get('resumed')}, test NELBO "
                f"{fmt(h.get('bits_per_base'), '.3f')} bits/base"))
    sm = s.get("sampling", {})
    out.append(("cached ancestral, 64 x 1024, T=1000, DiT-small",
                f"{fmt(sm.get('mdlm_cached_s'), '.1f')} s (MDLM: 40.1 s on an A5000, cached); "
                f"NFE/sample {fmt(sm.get('mdlm_nfe_per_sample'), '.0f')}"))
    out.append(("AR DiT-small, KV cache, 64 x 1024", f"{fmt(sm.get('ar_kv_cached_s'), '.1f')} s"))
    tr = s.get("torchrun", {})
    out.append(("torchrun, 1 rank NCCL: DDP / FSDP", f"rc {tr.get('ddp', {}).get('rc')} / {tr.get('fsdp', {}).get('rc')}"))
    return out


def main() -> None:
    res = json.load(open(sys.argv[1]))
    print("| check | result |\n|---|---|")
    for k, v in rows(res):
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
