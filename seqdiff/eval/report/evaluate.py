"""``evaluate_run``: the whole report, in the order it is printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from seqdiff.errors import ConfigError
from seqdiff.eval.plots import summary_table
from seqdiff.eval.report.config import EvalConfig
from seqdiff.eval.report.heldout import heldout_section
from seqdiff.eval.report.sampled import samples_section
from seqdiff.run import Run
from seqdiff.utils.io import atomic_write_text


def evaluate_run(run: Run, config: EvalConfig | None = None, *, run_dir: str | Path | None = None,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate ``run`` (its model as it is: EMA weights if it was loaded with them) and return
    the report (``eval.json``'s content).

    Each line is passed to ``log`` as soon as its number is known (a held-out split and the
    samples can take minutes); ``log=print`` is what ``seqdiff eval`` shows, ``lambda s: None``
    keeps it quiet. ``run_dir``: where ``eval.md`` (the table printed last) and, for
    ``report="plots"``, the PNGs go (the loss curves read its ``metrics.jsonl``); ``None``
    writes nothing.

    >>> run = seqdiff.load("runs/quickstart")                              # doctest: +SKIP
    >>> report = evaluate_run(run, EvalConfig(max_sequences=64, num_samples=8))  # doctest: +SKIP
    >>> report["likelihood"]["bits_per_token"], report["likelihood"]["bits_ci95"]  # doctest: +SKIP
    """
    cfg = config if config is not None else EvalConfig()
    if cfg.protocol:
        raise ConfigError(f"eval.protocol={cfg.protocol}: a protocol replaces the run's data source before the "
                          "evaluation (seqdiff eval applies it); evaluate_run scores the run's data as it is")
    if cfg.report == "plots" and run_dir is None:
        raise ConfigError("eval.report=plots: give run_dir (the loss curves read its metrics.jsonl)")
    device = next(run.model.parameters()).device
    report: dict[str, Any] = {
        "checkpoint": str(run.checkpoint.path) if run.checkpoint else None,
        "split": cfg.split,
    }
    heldout_section(run, cfg, device, report, log)
    samples_section(run, cfg, device, report, log)
    if cfg.report == "plots":
        report["plots"] = _plots(run, Path(run_dir), report, log)
    table = summary_table(report)
    log(table)
    if run_dir is not None:
        try:
            atomic_write_text(Path(run_dir) / "eval.md", table + "\n")
        except OSError:
            pass
    return report


def _plots(run: Run, run_dir: Path, report: dict[str, Any], log: Callable[[str], None]) -> list[str]:
    from seqdiff.eval.plots import plot_loss_curves, plot_sampling_sweep

    runs = {run.process.kind: run_dir}
    if "baseline" in report:
        ck = Path(report["baseline"]["checkpoint"])
        runs[f"baseline ({report['baseline']['process']})"] = ck.parent.parent if ck.parent.name == "checkpoints" else ck
    made = [str(plot_loss_curves(runs, run_dir / "loss_curves.png"))]
    if report.get("sweep"):
        made.append(str(plot_sampling_sweep(report["sweep"], run_dir / "sampling_sweep.png")))
    log("plots: " + ", ".join(made))
    return made
