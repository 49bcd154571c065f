"""The evaluation report of ``seqdiff train`` and ``seqdiff eval`` as plain functions: held-out
likelihood with its CI (and the data source's exact reference where known), the paired ratio to a
baseline run, samples with their statistics, a judge's gen-PPL with diversity, the sampling-steps
sweep and plots. Callable without Hydra:

>>> from seqdiff.eval.report import EvalConfig, evaluate_run                # doctest: +SKIP
>>> report = evaluate_run(seqdiff.load("runs/quickstart"), EvalConfig(num_samples=8))  # doctest: +SKIP

- :mod:`.config`: :class:`EvalConfig`, the typed ``eval:`` section;
- :mod:`.heldout`: the likelihood section and the baseline ratio;
- :mod:`.sampled`: samples, their statistics, judge, diversity and the steps sweep;
- :mod:`.evaluate`: :func:`evaluate_run`, the sections in the order they are printed, and plots.
"""

from seqdiff.eval.report.config import EvalConfig
from seqdiff.eval.report.evaluate import evaluate_run

__all__ = ["EvalConfig", "evaluate_run"]
