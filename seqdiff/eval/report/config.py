"""The settings of the evaluation report (``eval:`` in ``configs/config.yaml``) as a typed config.

:class:`EvalConfig` is what :func:`seqdiff.eval.report.evaluate_run` takes; it needs neither Hydra
nor OmegaConf. The CLI builds it with :meth:`EvalConfig.from_dict` from the composed ``eval``
section (an unknown key is a one-line error naming it) and ``sample_batch_size``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from typing import Any, Mapping

from seqdiff.errors import ConfigError

REPORTS = ("plots",)


@dataclass(frozen=True)
class EvalConfig:
    """What the report computes (the defaults are ``configs/config.yaml``'s).

    Attributes:
        split: the held-out split scored (``train``/``valid``/``test``).
        draws: Monte-Carlo NELBO draws per sequence (an exact NLL uses one).
        max_sequences: at most this many evaluation rows (``None``: all of the split).
        batch_size: rows per likelihood batch.
        estimator: ``None`` (the exact bound), ``count`` or ``time`` (MDLM's eps-truncated
            figure, reported beside the bound); checked against the process.
        num_samples: samples drawn for sample statistics (0: none, and no judge or sweep).
        seed: seeds the likelihood draws and the samples.
        baseline: another run scored on the same rows; the paired NELBO ratio with its CI.
        judge: a seqdiff AR run or a local Hugging Face causal-LM directory: gen-PPL of the samples.
        judge_batch_size: rows per judge forward pass.
        diversity: with a judge, Vendi and MAUVE on its features.
        sampling_steps: with a judge, gen-PPL and entropy at each ``sampler.num_steps`` here.
        guidance: labelled runs: the classifier-free guidance scale of the samples drawn under
            each label for the label-adherence figures (``None``: the run's ``guidance.scale``, else 0).
        report: ``None`` or ``"plots"`` (loss curves and the steps sweep as PNG in the run directory).
        protocol, protocol_dataset: a published evaluation protocol. It replaces the run's data
            source, so the caller applies it before :func:`evaluate_run` (``seqdiff eval`` does:
            ``seqdiff/cli/protocols.py``); :func:`evaluate_run` refuses a config that still names one.
        sample_batch_size: rows per sampling batch (the top-level ``sample_batch_size`` key).
    """

    split: str = "test"
    draws: int = 4
    max_sequences: int | None = 1024
    batch_size: int = 64
    estimator: str | None = None
    num_samples: int = 64
    seed: int = 0
    baseline: str | None = None
    judge: str | None = None
    judge_batch_size: int = 16
    diversity: bool = True
    sampling_steps: tuple[int, ...] = ()
    guidance: float | None = None
    report: str | None = None
    protocol: str | None = None
    protocol_dataset: str = "auto"
    sample_batch_size: int = 64

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        # null, "" and 0 mean "not set" where the YAML allows them (as the CLI always read them)
        put("max_sequences", _count("max_sequences", self.max_sequences, 1) if self.max_sequences else None)
        for name in ("baseline", "judge", "protocol"):
            value = getattr(self, name)
            put(name, str(value) if value not in (None, "") else None)
        put("judge_batch_size", _count("judge_batch_size", self.judge_batch_size, 1) if self.judge_batch_size else 16)
        put("diversity", bool(self.diversity) if self.diversity in (None, True, False) else _bad("diversity", self.diversity, "true or false"))
        put("sampling_steps", tuple(_count(f"sampling_steps[{i}]", k, 1) for i, k in enumerate(self.sampling_steps or ())))
        if self.guidance not in (None, ""):
            g = self.guidance
            if isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 <= g < float("inf"):
                _bad("guidance", g, "null or a finite number >= 0")
            put("guidance", float(g))
        else:
            put("guidance", None)
        report = None if self.report in (None, "", "none") else self.report
        if report is not None and report not in REPORTS:
            raise ConfigError(f"eval.report must be null or plots, got {self.report!r}")
        put("report", report)
        if not isinstance(self.split, str) or not self.split:
            _bad("split", self.split, "a split name (train, valid or test)")
        if self.estimator is not None and not isinstance(self.estimator, str):
            _bad("estimator", self.estimator, "null, count or time")
        for name, low in (("draws", 1), ("batch_size", 1), ("num_samples", 0), ("seed", 0), ("sample_batch_size", 1)):
            _count(name, getattr(self, name), low)
        put("protocol_dataset", str(self.protocol_dataset or "auto"))

    @classmethod
    def from_dict(cls, section: Mapping[str, Any], **outside: Any) -> "EvalConfig":
        """From the ``eval`` section as plain values (``outside``: the keys kept elsewhere in the
        configuration, ``sample_batch_size``). An unknown key is a one-line :class:`ConfigError`."""
        names = [f.name for f in fields(cls) if f.name not in outside]
        for key in section:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                did = f" (did you mean eval.{close[0]}?)" if close else ""
                raise ConfigError(f"eval.{key}: no such key{did}; eval has: {', '.join(names)}")
        return cls(**dict(section), **outside)


def _count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _bad(name, value, f"an integer >= {low}")
    return value


def _bad(name: str, value: Any, expected: str):
    where = name if name == "sample_batch_size" else f"eval.{name}"
    raise ConfigError(f"{where}: expected {expected}, got {value!r}")
