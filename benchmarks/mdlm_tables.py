"""MDLM's likelihood tables, rerun side by side: every row trained on the same data with the
same budget and scored by the same evaluation code, printed beside the paper's numbers.

    python benchmarks/mdlm_tables.py --table dna                  # CPU scale: the synthetic source
    python benchmarks/mdlm_tables.py --table dna --seeds 0 1 2 --steps 3300
    python benchmarks/mdlm_tables.py --table text --corpus ../shared/data/text/tinyshakespeare/input.txt
    python benchmarks/mdlm_tables.py --table dna --scale paper    # prints the HG38 commands (GPU), runs nothing

Rows (MDLM, Table 2 for DNA / Table 1 for LM1B): MDLM with a Caduceus (BiMamba) and with a
DiT denoiser, MDLM's discrete-time T = 1000 bound (D3PM-absorbing with SUBS), SEDD
(absorbing), and the AR baselines (Mamba, HyenaDNA, a causal transformer). Each row is one
``seqdiff train`` process; its ``eval.json`` gives the held-out likelihood: a bound
(NELBO, ``count`` estimator; the T-step bound for ``T=1000``) for the diffusion rows, the
exact NLL for AR. Across seeds the table shows the mean and a 95% t-interval over seeds;
with one seed, the held-out interval of that run (over sequences).

At CPU scale compare **ratios**, not absolute perplexities: the rows are ~0.15M-parameter
models on a synthetic order-3 Markov source (or a character corpus), not 0.47M / 110M models
on HG38 / LM1B. ``ratio`` is each row's perplexity over the reference AR row's (the paper:
MDLM / Mamba-AR = 3.199 / 3.067 = 1.043 on HG38; MDLM / AR = 27.04 / 22.32 = 1.211 on LM1B).
Parameter counts are matched to within about 20% (the script prints each row's count); SEDD's
network is time-conditioned as in SEDD, which adds its adaLN weights.

The last line printed is JSON with every row.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (row, paper perplexity, its +- or None, "<=" if the paper's number is a bound)
PAPER = {
    "dna": {
        "Mamba AR": (3.067, 0.010, ""), "HyenaDNA AR": (3.153, 0.001, ""), "AR transformer": (None, None, ""),
        "SEDD (absorbing)": (3.216, 0.003, "<="), "MDLM (Caduceus)": (3.199, 0.010, "<="),
        "MDLM (DiT)": (None, None, "<="), "MDLM T=1000": (None, None, "<="),
    },
    "text": {
        "AR transformer": (22.32, None, ""), "SEDD (absorbing)": (32.79, None, "<="),
        "D3PM absorbing (T=1000)": (76.90, None, "<="), "MDLM T=1000": (27.19, None, "<="),
        "MDLM (DiT)": (27.04, None, "<="),
    },
}
REFERENCE_ROW = {"dna": "Mamba AR", "text": "AR transformer"}

DIT = ["backbone=dit", "backbone.d_model=64", "backbone.n_layers=3", "backbone.n_heads=4"]
AR = ["process=ar", "sampler=autoregressive"]


def dna_rows() -> dict[str, list[str]]:
    """CPU-scale DNA rows on the quickstart's synthetic source (about 0.15M parameters each)."""
    return {
        "MDLM (Caduceus)": ["backbone=caduceus_ph", "backbone.d_model=64", "backbone.n_layers=4"],
        "MDLM (DiT)": [*DIT],
        "MDLM T=1000": [*DIT, "process=mdlm_discrete"],
        "SEDD (absorbing)": [*DIT, "backbone.cond_dim=16", "process=sedd", "sampler=sedd_analytic"],
        "Mamba AR": [*AR, "backbone=ar_mamba", "backbone.d_model=80", "backbone.n_layers=3"],
        "HyenaDNA AR": [*AR, "backbone=hyenadna", "backbone.preset=null", "backbone.d_model=72",
                        "backbone.n_layers=2", "backbone.d_inner=288"],
        "AR transformer": [*AR, "backbone=ar_transformer", "backbone.d_model=64", "backbone.n_layers=3",
                           "backbone.n_heads=4"],
    }


def text_rows(corpus: Path) -> dict[str, list[str]]:
    """CPU-scale text rows: character-level, the same DiT for every row (MDLM's Table 1 uses
    one transformer for all rows)."""
    data = ["experiment=text_char", f"data.corpus.path={corpus}", "data.seq_len=128"]
    return {
        "MDLM (DiT)": [*data, *DIT],
        "MDLM T=1000": [*data, *DIT, "process=mdlm_discrete"],
        "SEDD (absorbing)": [*data, *DIT, "backbone.cond_dim=16", "process=sedd", "sampler=sedd_analytic"],
        "AR transformer": ["experiment=text_char_ar", f"data.corpus.path={corpus}", "data.seq_len=128",
                           "backbone.d_model=64", "backbone.n_layers=3", "backbone.n_heads=4"],
    }


def paper_commands(table: str) -> dict[str, list[str]]:
    """The paper-scale commands (GPU; not run here): HG38 with MDLM's setup, LM1B likewise."""
    if table == "dna":
        base = ["experiment=dna_hg38_mdlm"]
        return {
            "MDLM (Caduceus)": base,
            "MDLM T=1000": [*base, "process=mdlm_discrete"],
            "SEDD (absorbing)": [*base, "process=sedd", "sampler=sedd_analytic", "backbone.time_conditioning=true"],
            "Mamba AR": [*base, *AR, "backbone=ar_mamba"],
            "HyenaDNA AR": [*base, *AR, "backbone=hyenadna"],
        }
    base = ["experiment=text_lm1b"]
    return {
        "MDLM (DiT)": base,
        "MDLM T=1000": [*base, "process=mdlm_discrete"],
        "SEDD (absorbing)": [*base, "process=sedd", "sampler=sedd_analytic"],
        "AR transformer": [*base, *AR, "backbone=ar_transformer"],
    }


def t95(n: int) -> float:
    """Two-sided 95% Student-t quantile with n - 1 degrees of freedom (n >= 2)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
    return table.get(n - 1, 1.96)


def run_row(name: str, overrides: list[str], seed: int, out: Path, common: list[str]) -> dict:
    run_dir = out / f"{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}_s{seed}"
    cmd = [sys.executable, "-m", "seqdiff", "train", f"run_dir={run_dir}", f"seed={seed}", "trainer.progress=false",
           "eval.num_samples=0", *overrides, *common]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{name}: command failed: {' '.join(cmd[2:])}")
    params = re.search(r"model: \S+ ([\d,]+) parameters", proc.stdout)
    report = json.loads((run_dir / "eval.json").read_text())
    lik = report.get("likelihood_bound") or report["likelihood"]  # a ratio's terms are bounds, never MDLM's eps-truncated figure
    row = {
        "row": name, "seed": seed, "bits": lik["bits_per_token"], "bits_ci95": lik["bits_ci95"],
        "bound": bool(lik.get("bound", False)), "exact": bool(lik.get("exact", False)), "estimand": lik.get("estimand"),
        "params": int(params.group(1).replace(",", "")) if params else None,
        "train_seconds": report["train"]["seconds"], "wall_seconds": wall, "steps": report["train"]["steps"],
        "stopped_early": report["train"].get("stopped_early"), "command": " ".join(["seqdiff", *cmd[3:]]),
    }
    ref = report.get("reference") or {}
    if "entropy_rate_bits" in ref:
        row["entropy_rate_bits"] = ref["entropy_rate_bits"]
    print(f"--- {name} seed {seed}: {row['bits']:.4f} ± {row['bits_ci95']:.4f} bits/token, "
          f"{row['params']:,} params, {wall:.0f} s", flush=True)
    return row


def summarise(rows: list[dict]) -> dict:
    bits = [r["bits"] for r in rows]
    n = len(bits)
    mean = sum(bits) / n
    if n > 1:
        sd = math.sqrt(sum((b - mean) ** 2 for b in bits) / (n - 1))
        ci, how = t95(n) * sd / math.sqrt(n), f"t over {n} seeds"
    else:
        ci, how = rows[0]["bits_ci95"], "over held-out sequences (1 seed)"
    return {"bits": mean, "bits_ci95": ci, "ci_over": how, "ppl": 2.0 ** mean,
            "ppl_ci95": [2.0 ** (mean - ci), 2.0 ** (mean + ci)], "bound": rows[0]["bound"] and not rows[0]["exact"],
            "params": rows[0]["params"], "seconds_per_seed": sum(r["wall_seconds"] for r in rows) / n}


def table_markdown(table: str, summary: dict[str, dict]) -> str:
    ref = summary.get(REFERENCE_ROW[table])
    lines = ["| row | params | ours: bits/token | ours: PPL | ours / AR (PPL) | paper PPL | paper / AR |",
             "|---|---|---|---|---|---|---|"]
    paper_ref = PAPER[table][REFERENCE_ROW[table]][0]
    for name, s in summary.items():
        p, pm, rel = PAPER[table].get(name, (None, None, ""))
        le = "≤ " if s["bound"] else ""
        ratio = f"{s['ppl'] / ref['ppl']:.3f}" if ref else "—"
        paper = "—" if p is None else f"{rel.replace('<=', '≤ ')}{p:.3f}" + (f" ± {pm:.3f}" if pm else "")
        paper_ratio = f"{p / paper_ref:.3f}" if p is not None and paper_ref else "—"
        lines.append(f"| {name} | {s['params']:,} | {le}{s['bits']:.4f} ± {s['bits_ci95']:.4f} | {le}{s['ppl']:.3f} | "
                     f"{ratio} | {paper} | {paper_ratio} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", choices=["dna", "text"], required=True)
    ap.add_argument("--scale", choices=["cpu", "paper"], default="cpu",
                    help="paper: print the GPU commands of the paper's setup (HG38 / LM1B) and run nothing")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=None, help="trainer.steps of every row (default: trainer=default's)")
    ap.add_argument("--max-time", type=float, default=600.0,
                    help="seconds per row before its training stops and checkpoints (reported; default 600)")
    ap.add_argument("--rows", nargs="*", default=None, help="only these rows (names as printed)")
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/data/text/tinyshakespeare/input.txt")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides applied to every row")
    args = ap.parse_args()
    if any(s < 0 for s in args.seeds):
        ap.error("--seeds: seeds must be >= 0")
    if args.steps is not None and args.steps < 1:
        ap.error(f"--steps must be >= 1, got {args.steps}")
    if args.max_time <= 0:
        ap.error(f"--max-time must be > 0 seconds, got {args.max_time}")

    if args.scale == "paper":
        for name, ov in paper_commands(args.table).items():
            print(f"# {name}\nseqdiff train {' '.join(ov)} run_dir=runs/{args.table}_{re.sub(r'[^A-Za-z0-9]+', '_', name)}")
        return
    if args.table == "text" and not args.corpus.is_file():
        ap.error(f"--corpus: {args.corpus} is not a file (a plain-text corpus, e.g. tinyshakespeare's input.txt)")
    rows = dna_rows() if args.table == "dna" else text_rows(args.corpus.resolve())
    if args.rows:
        unknown = set(args.rows) - set(rows)
        if unknown:
            ap.error(f"--rows: unknown {sorted(unknown)}; choose from {list(rows)}")
        rows = {k: v for k, v in rows.items() if k in args.rows}
    common = [f"trainer.max_time={args.max_time}", *([f"trainer.steps={args.steps}"] if args.steps else []), *args.overrides]
    out = args.out or Path(tempfile.mkdtemp(prefix=f"mdlm_tables_{args.table}-"))
    results: dict[str, list[dict]] = {}
    for name, ov in rows.items():
        results[name] = [run_row(name, ov, seed, out, common) for seed in args.seeds]
    summary = {name: summarise(rs) for name, rs in results.items()}
    md = table_markdown(args.table, summary)
    print(md)
    (out / f"table_{args.table}.md").write_text(md + "\n")
    print(json.dumps({"table": args.table, "summary": summary, "runs": results, "common_overrides": common}))


if __name__ == "__main__":
    main()
