"""How close the default run gets to the truth within its budget: MDLM vs AR.

Trains the quickstart (``seqdiff train``) and its autoregressive baseline
(``experiment=quickstart_ar``) one after the other, each as its own CLI process with
identical extra overrides, and reads their ``eval.json``: held-out NELBO (MDLM) or
exact NLL (AR), in bits/token, over the source's exact entropy rate.

    python benchmarks/quickstart_gap.py                 # the defaults, as a user runs them
    python benchmarks/quickstart_gap.py trainer.steps=500 --out /tmp/gap
    python benchmarks/quickstart_gap.py --estimators time count   # MDLM scored both ways

The last line is JSON with ``mdlm_ratio`` and ``ar_ratio`` (NELBO or NLL / entropy rate)
plus wall-clock seconds of each whole command (train + eval + samples). ``--estimators``
re-scores the trained MDLM checkpoint with ``seqdiff eval eval.estimator=E`` for each E
(same rows, draws and seed as the training command's report; not part of the timed
command) and adds ``mdlm_ratio_E`` and ``mdlm_ratio_ci95_E``: ``time`` is MDLM's stratified-t
estimate, ``count`` the Rao-Blackwellised one (see ``seqdiff/processes/masked.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(name: str, extra: list[str], out: Path) -> dict:
    run_dir = out / name
    cmd = [sys.executable, "-m", "seqdiff", "train", f"run_dir={run_dir}", "trainer.progress=false", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{name}: command failed: {' '.join(cmd)}")
    print(f"--- {name} ({wall:.1f} s): {' '.join(cmd[2:])}\n{proc.stdout}", flush=True)
    report = json.loads((run_dir / "eval.json").read_text())
    lik, ref = report["likelihood"], report["reference"]
    return {
        "bits": lik["bits_per_token"],
        "ci95": lik["bits_ci95"],
        "ratio": lik["bits_per_token"] / ref["entropy_rate_bits"],
        "window_ratio": lik["bits_per_token"] / ref["window_entropy_bits"],
        "train_seconds": report["train"]["seconds"],
        "wall_seconds": wall,
        "entropy_rate_bits": ref["entropy_rate_bits"],
        "window_entropy_bits": ref["window_entropy_bits"],
    }


def rescore(run_dir: Path, estimator: str, extra: list[str]) -> dict:
    """The MDLM run's held-out NELBO with another estimator (``seqdiff eval`` rewrites
    eval.json and eval.md: the training command's report is kept and put back after)."""
    report_path = run_dir / "eval.json"
    kept = {p: p.read_text() for p in (report_path, run_dir / "eval.md") if p.exists()}
    eval_keys = [o for o in extra if o.startswith(("eval.", "seed=", "trainer.num_threads="))]
    cmd = [sys.executable, "-m", "seqdiff", "eval", f"checkpoint={run_dir}", f"eval.estimator={estimator}",
           "eval.num_samples=0", *eval_keys]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    try:
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"rescore {estimator}: command failed: {' '.join(cmd)}")
        report = json.loads(report_path.read_text())
    finally:
        for p, text in kept.items():
            p.write_text(text)
    lik, ref = report["likelihood"], report["reference"]
    print(f"--- mdlm, eval.estimator={estimator}: {lik['bits_per_token']:.4f} ± {lik['bits_ci95']:.4f} bits/token", flush=True)
    return {"ratio": lik["bits_per_token"] / ref["entropy_rate_bits"], "ci95": lik["bits_ci95"] / ref["entropy_rate_bits"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="where the two run directories go (default: a temp dir)")
    ap.add_argument("--only", choices=["mdlm", "ar"], default=None)
    ap.add_argument("--estimators", nargs="*", choices=["time", "count"], default=[],
                    help="also score the MDLM checkpoint with these eval.estimator values")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides applied to both runs")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="quickstart_gap-"))
    res = {}
    if args.only in (None, "mdlm"):
        res["mdlm"] = run("mdlm", args.overrides, out)
    if args.only in (None, "ar"):
        res["ar"] = run("ar", ["experiment=quickstart_ar", *args.overrides], out)
    summary = {f"{k}_{m}": v[m] for k, v in res.items() for m in ("ratio", "window_ratio", "bits", "ci95", "train_seconds", "wall_seconds")}
    summary["entropy_rate_bits"] = next(iter(res.values()))["entropy_rate_bits"]
    summary["window_entropy_bits"] = next(iter(res.values()))["window_entropy_bits"]
    for est in args.estimators if "mdlm" in res else []:
        r = rescore(out / "mdlm", est, args.overrides)
        summary[f"mdlm_ratio_{est}"], summary[f"mdlm_ratio_ci95_{est}"] = r["ratio"], r["ci95"]
    summary["overrides"] = args.overrides
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
