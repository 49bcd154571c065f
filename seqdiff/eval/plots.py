"""Rendering an evaluation: PNG plots (matplotlib, optional: ``pip install 'seqdiff[eval]'``) and a Markdown table.

* :func:`plot_loss_curves`: training loss and held-out bits/token from one or more
  runs' ``metrics.jsonl`` (e.g. MDLM and its AR baseline on one figure);
* :func:`plot_sampling_sweep`: generative perplexity and sample entropy against the
  number of sampling steps, the trade-off that gen-PPL alone hides.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

from seqdiff.errors import ConfigError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'seqdiff[eval]'") from None
    return plt


def read_metrics(path: str | Path) -> list[dict]:
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def plot_loss_curves(runs: Mapping[str, str | Path | Sequence[dict]], out: str | Path, *, title: str = "") -> Path:
    """One line per run and metric: ``loss`` (train, nats/token) and ``valid_bits_per_token``."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, src in runs.items():
        rows = read_metrics(src) if isinstance(src, (str, Path)) else list(src)
        for ax, key in zip(axes, ("loss", "valid_bits_per_token")):
            pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
            if pts:
                ax.plot(*zip(*pts), label=label, marker="." if key != "loss" else None)
    # the process's own objective (metrics.jsonl names it): ENS's is not a NELBO
    axes[0].set(xlabel="step", ylabel="training objective (nats/token)", title="training loss")
    axes[1].set(xlabel="step", ylabel="bits/token", title="held-out NELBO / NLL")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    return _save(plt, fig, out)


def plot_sampling_sweep(points: Sequence[Mapping], out: str | Path, *, title: str = "",
                        reference: Mapping | None = None) -> Path:
    """``points``: dicts with ``steps``, ``gen_ppl`` (optional ``gen_ppl_ci95``) and
    ``entropy_bits``; ``reference`` (optional): the same two numbers for real data."""
    plt = _pyplot()
    pts = sorted(points, key=lambda p: p["steps"])
    steps = [p["steps"] for p in pts]
    fig, ax1 = plt.subplots(figsize=(6, 3.8))
    ppl = [p.get("gen_ppl", math.nan) for p in pts]
    if any("gen_ppl_ci95" in p for p in pts):
        lo = [v - p["gen_ppl_ci95"][0] for v, p in zip(ppl, pts)]
        hi = [p["gen_ppl_ci95"][1] - v for v, p in zip(ppl, pts)]
        ax1.errorbar(steps, ppl, yerr=[lo, hi], color="C0", marker="o", capsize=3, label="gen-PPL")
    else:
        ax1.plot(steps, ppl, color="C0", marker="o", label="gen-PPL")
    ax1.set_xscale("log", base=2)
    ax1.set(xlabel="sampling steps", ylabel="generative perplexity")
    ax2 = ax1.twinx()
    ax2.plot(steps, [p.get("entropy_bits", math.nan) for p in pts], color="C1", marker="s", label="entropy")
    ax2.set_ylabel("sample entropy (bits)")
    if reference:
        if "gen_ppl" in reference:
            ax1.axhline(reference["gen_ppl"], color="C0", ls="--", lw=1, label="data gen-PPL")
        if "entropy_bits" in reference:
            ax2.axhline(reference["entropy_bits"], color="C1", ls="--", lw=1, label="data entropy")
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=8, loc="best")
    ax1.grid(alpha=0.3)
    if title:
        ax1.set_title(title)
    return _save(plt, fig, out)


def summary_table(report: Mapping) -> str:
    """A Markdown table of an ``eval.json`` report (what ``seqdiff eval`` prints and
    writes to ``eval.md``): every number with its 95% interval where it has one."""
    rows: list[tuple[str, str, str]] = []
    split, unit = report.get("split", "?"), report.get("unit", "token")
    # an eps-truncated figure (eval.estimator=time) comes with the bound beside it
    for lk in (report.get("likelihood"), report.get("likelihood_bound")):
        if not lk:
            continue
        kind = "NLL" if lk.get("exact") else ("NELBO" if lk.get("bound", True) else "eps-truncated NELBO, as MDLM reports (not a bound)")
        rows.append((f"{kind} bits/{unit} ({split})", f"{lk['bits_per_token']:.4f}", f"± {lk['bits_ci95']:.4f}"))
        lo, hi = lk["perplexity_ci95"]
        rows.append((f"perplexity per {unit}", f"{lk['perplexity']:.3f}", f"{lo:.3f} – {hi:.3f}"))
    for key in sorted(k for k in report if k.startswith(("bits_per_", "nats_per_")) and k not in ("bits_per_token",)):
        v = report[key]
        rows.append((key.replace("_per_", "/"), f"{v['value']:.4f}", f"± {v['ci95']:.4f}"))
    base = report.get("baseline")
    if base:
        bl = base["likelihood"]
        rows.append((f"baseline ({base['process']}) bits/{unit}", f"{bl['bits_per_token']:.4f}", f"± {bl['bits_ci95']:.4f}"))
        for key in (k for k in base if k.startswith("nats_per_")):
            rows.append((f"baseline {key.replace('_per_', '/')}", f"{base[key]['value']:.4f}", f"± {base[key]['ci95']:.4f}"))
        rows.append(("ratio ours / baseline (nats)", f"{base['ratio']:.4f}", f"± {base['ratio_ci95']:.4f}"))
    smp = report.get("samples") or {}
    j = smp.get("judge")
    if j:
        rows.append(("gen-PPL (judge)", f"{j['gen_ppl']:.3f}", f"{j['gen_ppl_ci95'][0]:.3f} – {j['gen_ppl_ci95'][1]:.3f}"))
        rows.append(("sample entropy, bits (per-sample histogram)", f"{j['mean_sequence_entropy_bits']:.3f}", ""))
    for key in ("distinct_4", "self_bleu", "vendi", "mauve"):
        v = smp.get(key)
        if isinstance(v, dict):  # {"samples": x, "data": y} (text statistics)
            v, data_v = v.get("samples"), v.get("data")
        else:
            data_v = smp.get(f"data_{key}")
        if isinstance(v, (int, float)):
            rows.append((key.replace("_", " ") + (" (data)" if data_v is not None else ""),
                         f"{v:.4f}" + (f" ({data_v:.4f})" if data_v is not None else ""), ""))
    lines = ["| metric | value | 95% CI |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    sweep = report.get("sweep") or []
    if sweep:
        lines += ["", "| sampling steps | NFE/sample | gen-PPL | 95% CI | entropy (bits) |", "|---|---|---|---|---|"]
        for p in sweep:
            lo, hi = p["gen_ppl_ci95"]
            lines.append(f"| {p['steps']} | {p['nfe_per_sample']:.0f} | {p['gen_ppl']:.3f} | {lo:.3f} – {hi:.3f} | {p['entropy_bits']:.3f} |")
    return "\n".join(lines)


def _save(plt, fig, out: str | Path) -> Path:
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
