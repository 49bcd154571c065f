"""Classifier-free guidance on the synthetic multi-species source, judged exactly.

A DiT (``backbone=dit_conv``) is trained with label dropout on ``data=species`` (K seeded
order-3 Markov chains over ACGT, each with its own planted motif; seqdiff_recipes/synthetic/
species.py). Each chain is known, so for every sample drawn under label ``y`` at guidance
scale ``w`` the table reports, exactly:

- ``acc``: label accuracy of the Bayes classifier, the argmax of the exact posterior
  :math:`p(y\\mid x)\\propto\\pi(y)p_y(x)`; ``post``: the mean exact posterior of ``y``;
- ``nll``: true NLL of the samples under their label's chain, bits/base, beside that chain's
  window entropy ``H`` (exact draws score ``H`` on average; below it: samples more typical
  than the chain's own, i.e. lower diversity);
- ``distinct``: distinct 6-mers / 6-mer positions over the samples; ``JS4``: Jensen-Shannon
  divergence (bits) of the samples' 4-mer counts to the chain's exact stationary 4-mer law.
  Both are read against ``floor``: the same figures of as many exact draws of the chain.

for ``w`` in {0, 0.5, 1, 2, 4, 8}, with the ancestral sampler and with EAGS. Rows holding
``N`` (an id the chains never emit) are counted in ``foreign`` and left out of the rest;
``--never-n`` trains and samples with ``domain.never_generate=[N]`` instead (the DNA domain
keeps N as a token by default, and guidance amplifies the noise in the tiny masses both
passes give it: see the table of the default run).

    python benchmarks/guidance.py --quick          # ~1-2 min on 1 CPU thread
    python benchmarks/guidance.py                  # longer training, more samples
    python benchmarks/guidance.py --quick --never-n
    python benchmarks/guidance.py --quick --never-n --shared-chain   # species differ only in motifs

One JSON line per (sampler, w, label), then a Markdown table averaged over labels.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seqdiff.cli.main import config_dir  # noqa: E402
from seqdiff.run import build_run  # noqa: E402
from seqdiff.train.trainer import Trainer, TrainerConfig  # noqa: E402

SCALES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
SAMPLERS = {"ancestral": {"_target_": "seqdiff.samplers.AncestralSampler", "num_steps": 64},
            "eags": {"_target_": "seqdiff.samplers.EAGSSampler", "num_steps": 16}}
LN2 = math.log(2.0)


def kmer_counts(sym: torch.Tensor, k: int) -> torch.Tensor:
    idx = torch.zeros(sym.shape[0], sym.shape[1] - k + 1, dtype=torch.long)
    for j in range(k):
        idx = idx * 4 + sym[:, j : sym.shape[1] - k + 1 + j]
    return torch.bincount(idx.flatten(), minlength=4**k).double()


def js_bits(p: torch.Tensor, q: torch.Tensor) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a, b):
        nz = a > 0
        return float((a[nz] * (a[nz] / b[nz]).log()).sum())

    return 0.5 * (kl(p, m) + kl(q, m)) / LN2


def diversity(sym: torch.Tensor, law4: torch.Tensor) -> tuple[float, float]:
    c6 = kmer_counts(sym, 6)
    return float((c6 > 0).sum() / c6.sum()), js_bits(kmer_counts(sym, 4), law4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short training, fewer samples")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--samples", type=int, default=None, help="samples per (sampler, w, label)")
    ap.add_argument("--species", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--never-n", action="store_true", help="domain.never_generate=[N]: N gets no mass at all")
    ap.add_argument("--shared-chain", action="store_true", help="species differ only in their planted motifs")
    ap.add_argument("--motif-strength", type=float, default=0.9)
    ap.add_argument("--out", type=Path, default=None,
                    help="also write rows.json and accuracy_vs_fidelity.png (label accuracy against 4-mer JS as w grows) here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.steps or (600 if args.quick else 3000)
    n = args.samples or (64 if args.quick else 256)
    names = ["alpha", "beta", "gamma", "delta"][: args.species]
    overrides = ["data=species", "backbone=dit_conv", f"label.dropout={args.dropout}", f"seed={args.seed}",
                 f"data.species=[{','.join(names)}]", f"data.seq_len={args.seq_len}", f"trainer.steps={steps}",
                 "trainer.batch_size=32", "trainer.progress=false", "trainer.eval_every=0", "trainer.ckpt_every=0",
                 "trainer.tensorboard=false", f"trainer.log_every={max(steps // 4, 1)}", "trainer.lr=3e-3"]
    if args.never_n:
        overrides.append("domain.never_generate=[N]")
    if args.shared_chain:
        overrides.append("data.shared_chain=true")
    overrides.append(f"data.motif_strength={args.motif_strength}")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)
    run_cfg = {k: cfg[k] for k in ("seed", "domain", "data", "backbone", "process", "sampler", "trainer", "label")}
    run = build_run(run_cfg, resolve_labels=True)
    data = run.data
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(run.model, run.process, data, TrainerConfig.from_dict(run_cfg["trainer"]), run_dir=tmp,
                          vocab=run.vocab, run_config=run_cfg, seed=args.seed, label_dropout=run.label_dropout,
                          log=lambda *a: None)
        res = trainer.fit()
        run.model = trainer.final_model()
    train_s = time.perf_counter() - t0
    run.model.eval()
    print(json.dumps({"train_steps": res.step, "train_seconds": round(train_s, 1), "last_loss": res.last_loss,
                      "params": run.model.num_parameters(), "species": names, "dropout": args.dropout,
                      "threads": args.threads, "never_n": args.never_n, "shared_chain": args.shared_chain,
                      "motif_strength": args.motif_strength, "samples": n}), flush=True)
    floors = {}
    for k in range(len(names)):  # the same figures for n exact draws of each chain
        sym = data.from_domain[data.draw(torch.full((n,), k), torch.Generator().manual_seed(99 + k))]
        floors[k] = diversity(sym, data.kmer_law(4, k))
    rows = []
    for sname, scfg in SAMPLERS.items():
        sampler = run.build_sampler(scfg)
        for w in SCALES:
            for k, name in enumerate(names):
                t1 = time.perf_counter()
                out = run.generate(n, args.seq_len, sampler=sampler, seed=1000 + k, label=name, guidance=w)
                s = data.score_label(out.tokens, k)
                sym, ok = data.symbols_of(out.tokens)
                distinct, js = diversity(sym[ok], data.kmer_law(4, k)) if ok.any() else (math.nan, math.nan)
                row = {"sampler": sname, "w": w, "label": name, "acc": s["label_accuracy"], "post": s["label_posterior"],
                       "nll": s["true_nll_bits"], "H": data.sources[k].window_entropy(args.seq_len) / LN2,
                       "distinct6": distinct, "js4": js, "floor_distinct6": floors[k][0], "floor_js4": floors[k][1],
                       "foreign": s["samples_with_foreign_symbols"], "n": n, "seconds": round(time.perf_counter() - t1, 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| sampler | w | label acc | mean p(y|x) | true NLL bits/base (H) | distinct 6-mers (exact) "
          "| JS 4-mer bits (exact) | foreign |")
    print("|---|---|---|---|---|---|---|---|")
    for sname in SAMPLERS:
        for w in SCALES:
            rs = [r for r in rows if r["sampler"] == sname and r["w"] == w]
            avg = lambda key: sum(r[key] for r in rs) / len(rs)  # noqa: E731
            print(f"| {sname} | {w:g} | {avg('acc'):.3f} | {avg('post'):.3f} | {avg('nll'):.3f} ({avg('H'):.3f}) | "
                  f"{avg('distinct6'):.3f} ({avg('floor_distinct6'):.3f}) | {avg('js4'):.4f} ({avg('floor_js4'):.4f}) | "
                  f"{sum(r['foreign'] for r in rs)}/{len(rs) * n} |")
    if args.out is not None:
        write_outputs(args.out, rows)


def write_outputs(out: Path, rows: list[dict]) -> None:
    """``rows.json`` and the plot: per sampler, label accuracy (exact posterior) against the 4-mer
    JS divergence to the label's own law, one point per w (averaged over labels), w annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    fig, ax = plt.subplots(figsize=(6, 4))
    for sname in dict.fromkeys(r["sampler"] for r in rows):
        pts = []
        for w in SCALES:
            rs = [r for r in rows if r["sampler"] == sname and r["w"] == w and not math.isnan(r["js4"])]
            if rs:
                pts.append((w, sum(r["js4"] for r in rs) / len(rs), sum(r["acc"] for r in rs) / len(rs)))
        ax.plot([p[1] for p in pts], [p[2] for p in pts], marker="o", label=sname)
        for w, x, y in pts:
            ax.annotate(f"w={w:g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    floor = sum(r["floor_js4"] for r in rows) / len(rows)
    ax.axvline(floor, color="grey", ls=":", label="exact samples' JS")
    ax.set_xscale("log")
    ax.set_xlabel("4-mer JS divergence to the label's chain (bits, log scale)")
    ax.set_ylabel("label accuracy (exact posterior)")
    ax.set_title("classifier-free guidance: adherence vs fidelity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_fidelity.png", dpi=120)


if __name__ == "__main__":
    main()
