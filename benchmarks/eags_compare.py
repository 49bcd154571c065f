"""EAGS against the other unmasking orders on conditional generation, text and DNA.

(a) keyword-to-sentence: for each held-out window of the text run's validation split,
    its 3 rarest words (by training-split word frequency; ties by word, words of 3+
    letters that are not cut by the window edge) are fixed as keywords (placed by the
    model, identically for every sampler) and ``--per-prompt`` samples are drawn;
(b) DNA flank infilling: held-out test windows with their first and last quarter fixed.

Samplers: EAGS (entropy_high), MDLM ancestral, confidence, random order and
entropy-lowest, each at ``--steps`` (default 5/10/50). Metrics per (task, sampler, steps):
keyword coverage (100% by construction), gen-PPL and mean per-sample entropy under an AR
judge (a seqdiff AR run), distinct-n and Vendi (judge features, if ``vendi-score`` is
installed) for text; bits/base under the AR judge, NLL under the true source (synthetic
Markov data), and the 4-mer spectrum JS divergence to held-out windows for DNA; backbone
calls and wall-clock per sample. Finally the entropy-overhead check: EAGS vs confidence
with the same number of backbone calls (must be <= 5% slower).

Checkpoints (tiny CPU budgets; data by path, never copied; ~15 min in all on 2 cores):

    TS=/work/shared/data/text/tinyshakespeare/input.txt
    T="data.seq_len=64 backbone.d_model=96 backbone.n_layers=3 backbone.n_heads=3 trainer.batch_size=32 trainer.num_threads=1"
    seqdiff train experiment=text_char process=mdlm_ens data.corpus.path=$TS $T trainer.steps=1500 run_dir=runs/b_text_ens
    seqdiff train experiment=text_char_ar data.corpus.path=$TS $T trainer.steps=1500 run_dir=runs/b_text_ar
    D="data.seq_len=64 backbone.d_model=64 backbone.n_layers=2 backbone.n_heads=2 trainer.batch_size=32 trainer.num_threads=1"
    seqdiff train process=mdlm_ens $D trainer.steps=1500 run_dir=runs/b_dna_ens
    seqdiff train experiment=quickstart_ar $D trainer.steps=1500 run_dir=runs/b_dna_ar

    python benchmarks/eags_compare.py --text-run runs/b_text_ens --text-judge runs/b_text_ar \\
        --dna-run runs/b_dna_ens --dna-judge runs/b_dna_ar --out runs/eags_compare --prompts 16 --per-prompt 4

Prints one JSON object per line and writes OUT/results.jsonl and OUT/quality_diversity.png.
Wall-clocks on a shared CPU are noisy; the overhead check interleaves repeats and
compares medians.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import seqdiff  # noqa: E402
from seqdiff.eval.diversity import distinct_summary, strip_ids, vendi_score  # noqa: E402
from seqdiff.eval.judge import generative_perplexity, load_judge  # noqa: E402
from seqdiff.eval.samples import js_divergence_bits, per_sequence_entropy_bits  # noqa: E402
from seqdiff.samplers import Condition, KeywordCondition, keyword_coverage, keyword_variants  # noqa: E402

ORDERED = {"eags": "entropy_high", "confidence": "confidence", "random": "random", "entropy_low": "entropy_low"}
SAMPLERS = ("eags", "ancestral", "confidence", "random", "entropy_low")
WORD = re.compile(r"[A-Za-z]+")


def sampler_config(name: str, steps: int) -> dict:
    if name == "ancestral":  # MDLM; the cache skips steps where nothing is revealed
        return {"_target_": "seqdiff.samplers.AncestralSampler", "num_steps": steps, "cache": True}
    return {"_target_": "seqdiff.samplers.OrderedSampler", "num_steps": steps, "order": ORDERED[name]}


def emit(row: dict, sink) -> None:
    line = json.dumps(row, default=float)
    print(line, flush=True)
    sink.write(line + "\n")


# ---------------------------------------------------------------------- (a) text
def rarest_words(text: str, freq: Counter, k: int = 3) -> list[str]:
    """The ``k`` rarest complete words of a window (deterministic: frequency, then word)."""
    spans = [(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]
    spans = [s for s in spans if s[0] > 0 and s[1] < len(text) and len(s[2]) >= 3]  # not cut by the edges
    words = list({w.lower(): w for _, _, w in reversed(spans)}.values())[::-1]  # one spelling per word (first)
    return sorted(words, key=lambda w: (freq[w.lower()], w))[:k]


def text_task(args, sink) -> list[dict]:
    run, judge = seqdiff.load(args.text_run), load_judge(args.text_judge, batch_size=64)
    data, dom = run.data, run.domain
    from seqdiff_recipes.text.corpus import split_corpus

    freq = Counter(w.lower() for d in split_corpus(data.spec).train for w in WORD.findall(d.text))
    L = data.seq_len
    x, _ = data.real_rows("valid", args.prompts * 4)
    prompts = []
    for row in x:  # windows with at least 3 usable words, in order
        words = rarest_words(dom.decode(row), freq)
        if len(words) == 3:
            prompts.append((row, words))
        if len(prompts) == args.prompts:
            break
    real = torch.stack([r for r, _ in prompts])
    ref, _ = generative_perplexity(judge, real, dom)
    emit({"task": "text_keywords", "sampler": "data (held-out windows)", "gen_ppl": ref.gen_ppl,
          "entropy_bits": ref.mean_sequence_entropy_bits, **distinct_summary(strip_ids(real, [dom.vocab.pad_id]), (2, 4))}, sink)
    rows = []
    for steps in args.steps:
        for name in args.samplers:
            sampler = run.build_sampler(sampler_config(name, steps))
            toks, cov, nfe, t0 = [], [], [], time.perf_counter()
            for j, (_, words) in enumerate(prompts):
                kws = [keyword_variants(dom, w) for w in words]
                cond = KeywordCondition(torch.zeros(L, dtype=torch.long), torch.zeros(L, dtype=torch.bool), keywords=kws)
                out = run.generate(args.per_prompt, L, cond, sampler=sampler, seed=args.seed + j)  # same placement for all samplers
                toks.append(out.tokens)
                cov.append(keyword_coverage(out.tokens, kws))
                nfe.append(out.nfe.double())
            dt = (time.perf_counter() - t0) / (len(prompts) * args.per_prompt)
            tokens = torch.cat(toks)
            res, judged = generative_perplexity(judge, tokens, dom)
            row = {"task": "text_keywords", "sampler": name, "steps": steps, "keyword_coverage": float(torch.cat(cov).mean()),
                   "gen_ppl": res.gen_ppl, "gen_ppl_ci95": res.gen_ppl_ci95, "entropy_bits": res.mean_sequence_entropy_bits,
                   **distinct_summary(strip_ids(tokens, [dom.vocab.pad_id]), (2, 4)),
                   "nfe_per_sample": float(torch.cat(nfe).mean()), "seconds_per_sample": dt, "samples": len(tokens)}
            try:
                row["vendi"] = vendi_score(judge.features([t for t in judged if t]))
            except Exception as e:  # noqa: BLE001 - optional package
                row["vendi"] = None
                row["vendi_note"] = str(e)
            rows.append(row)
            emit(row, sink)
    print(f"# sample: {dom.decode(tokens[0])!r} with keywords {prompts[0][1]}", file=sys.stderr)
    return rows


# ---------------------------------------------------------------------- (b) DNA
def dna_task(args, sink) -> list[dict]:
    run, judge = seqdiff.load(args.dna_run), load_judge(args.dna_judge, batch_size=64)
    from seqdiff_recipes.dna.metrics import base_codes, kmer_spectrum

    data, dom = run.data, run.domain
    L = data.seq_len
    real = next(iter(data.eval_batches("test", args.prompts, args.prompts)))[0]
    ref_windows = next(iter(data.eval_batches("valid", 1024, 1024)))[0]
    q = L // 4
    fixed = torch.zeros(L, dtype=torch.bool)
    fixed[:q], fixed[L - q :] = True, True
    rep = real.repeat_interleave(args.per_prompt, 0)
    cond = Condition(rep, fixed.expand_as(rep).clone())
    ref_spec = kmer_spectrum(base_codes(ref_windows, dom), 4)

    def stats(tokens: torch.Tensor) -> dict:
        nats, count = judge.score([r.tolist() for r in tokens])
        middle = tokens[:, q : L - q]
        true = data.true_nll_bits(tokens) if hasattr(data, "true_nll_bits") else torch.full((len(tokens),), math.nan)
        finite = torch.isfinite(true)
        return {"judge_bits_per_base": float(nats.sum() / count.sum()) / math.log(2),
                "true_nll_bits_per_base": float(true[finite].mean()) if finite.any() else math.nan,
                "foreign_symbol_rows": int((~finite).sum()),
                "kmer4_js_bits": js_divergence_bits(kmer_spectrum(base_codes(middle, dom), 4), ref_spec),
                "entropy_bits": float(per_sequence_entropy_bits(middle).mean())}

    emit({"task": "dna_flanks", "sampler": "data (held-out windows)", **stats(real)}, sink)
    rows = []
    for steps in args.steps:
        for name in args.samplers:
            sampler = run.build_sampler(sampler_config(name, steps))
            t0 = time.perf_counter()
            out = run.generate(len(rep), L, cond, sampler=sampler, seed=args.seed)
            dt = (time.perf_counter() - t0) / len(rep)
            assert torch.equal(out.tokens[:, fixed], rep[:, fixed])  # the flanks are kept
            row = {"task": "dna_flanks", "sampler": name, "steps": steps, **stats(out.tokens),
                   "nfe_per_sample": float(out.nfe.double().mean()), "seconds_per_sample": dt, "samples": len(rep)}
            rows.append(row)
            emit(row, sink)
    return rows


# ---------------------------------------------------------------------- overhead
def overhead(args, sink) -> dict:
    """EAGS vs confidence, same model, same steps (= same backbone calls): median time."""
    run = seqdiff.load(args.text_run or args.dna_run)
    L, n = run.default_length(), args.overhead_batch
    times = {"eags": [], "confidence": []}
    nfe = {}
    for r in range(args.overhead_repeats + 1):
        for name in (("eags", "confidence") if r % 2 == 0 else ("confidence", "eags")):  # interleaved
            s = run.build_sampler(sampler_config(name, args.overhead_steps))
            t0 = time.perf_counter()
            out = run.generate(n, L, sampler=s, seed=r)
            if r > 0:  # the first round warms up
                times[name].append(time.perf_counter() - t0)
            nfe[name] = float(out.nfe.double().mean())
    med = {k: statistics.median(v) for k, v in times.items()}
    row = {"task": "entropy_overhead", "steps": args.overhead_steps, "batch": n, "nfe": nfe,
           "median_seconds": med, "overhead": med["eags"] / med["confidence"] - 1.0}
    row["within_5_percent"] = bool(row["overhead"] <= 0.05 and nfe["eags"] == nfe["confidence"])
    emit(row, sink)
    return row


def plot(text_rows: list[dict], dna_rows: list[dict], out: Path) -> Path:
    from seqdiff.eval.plots import _pyplot

    plt = _pyplot()
    panels = [(text_rows, "distinct_4", "gen_ppl", "text keywords: distinct-4 (diversity)", "gen-PPL under AR judge"),
              (dna_rows, "entropy_bits", "judge_bits_per_base", "DNA infill: per-sample entropy, bits", "bits/base under AR judge")]
    panels = [p for p in panels if p[0]]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (rows, xk, yk, xl, yl) in zip(axes[0], panels):
        for name in dict.fromkeys(r["sampler"] for r in rows):
            pts = [r for r in rows if r["sampler"] == name]
            ax.plot([p[xk] for p in pts], [p[yk] for p in pts], "o-", label=name)
            for p in pts:
                ax.annotate(str(p["steps"]), (p[xk], p[yk]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl + " (lower is better)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("quality vs diversity (labels: sampling steps)")
    fig.tight_layout()
    path = out / "quality_diversity.png"
    fig.savefig(path, dpi=120)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text-run"), p.add_argument("--text-judge")
    p.add_argument("--dna-run"), p.add_argument("--dna-judge")
    p.add_argument("--out", default="runs/eags_compare")
    p.add_argument("--steps", type=int, nargs="+", default=[5, 10, 50])
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    p.add_argument("--prompts", type=int, default=16, help="held-out windows per task")
    p.add_argument("--per-prompt", type=int, default=4, help="samples per window")
    p.add_argument("--overhead-steps", type=int, default=10)
    p.add_argument("--overhead-batch", type=int, default=32)
    p.add_argument("--overhead-repeats", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not (args.text_run and args.text_judge) and not (args.dna_run and args.dna_judge):
        p.error("give --text-run and --text-judge, and/or --dna-run and --dna-judge")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.jsonl", "w") as sink:
        text_rows = text_task(args, sink) if args.text_run and args.text_judge else []
        dna_rows = dna_task(args, sink) if args.dna_run and args.dna_judge else []
        overhead(args, sink)
    print(f"# plot: {plot(text_rows, dna_rows, out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
