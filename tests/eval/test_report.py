"""The evaluation report as a plain function: ``seqdiff.load(run)`` then ``evaluate_run(run,
EvalConfig(...))`` from Python, no Hydra or OmegaConf; its numbers are the evaluator's own for
the configured split, draws and seed; bad settings are one-line errors naming the key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import seqdiff
from support.runs import tiny_config
from seqdiff.errors import ConfigError
from seqdiff.eval.likelihood import evaluate_likelihood
from seqdiff.eval.report import EvalConfig, evaluate_run
from seqdiff.io.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def run_path(tmp_path_factory) -> Path:
    """A tiny (untrained, seeded) Markov-source run saved as a checkpoint."""
    cfg = tiny_config()
    exp = seqdiff.build_run(cfg)
    root = tmp_path_factory.mktemp("report") / "checkpoints"
    return save_checkpoint(root, 1, model=exp.model, config=cfg, vocab=exp.vocab)


def test_evaluate_run_from_plain_python(run_path, one_thread):
    run = seqdiff.load(run_path)
    lines: list[str] = []
    cfg = EvalConfig(split="valid", draws=3, max_sequences=6, batch_size=4, seed=5, num_samples=3, sample_batch_size=2)
    report = evaluate_run(run, cfg, log=lines.append)
    # the evaluator's own figure for exactly these settings (count estimator: the exact bound)
    res, _, _ = evaluate_likelihood(run.model, run.process, run.data.eval_batches("valid", 4, 6), draws=3, seed=5,
                                    estimator="count")
    assert report["split"] == "valid" and report["likelihood"] == res.to_dict()
    assert report["likelihood"]["num_sequences"] == 6 and report["likelihood"]["draws"] == 3
    assert report["nelbo_over_entropy_rate"] == pytest.approx(res.bits_per_token / report["reference"]["entropy_rate_bits"])
    s = report["samples"]
    assert s["num_samples"] == 3 and s["nfe_per_sample"] <= 16  # the run's sampler: 16 steps
    assert lines[0] == f"held-out (valid) {res.summary('token')}"
    assert any(l.startswith("samples (3): unigram entropy") for l in lines)
    assert lines[-1].startswith("| metric | value | 95% CI |")
    assert not (run_path / "eval.md").exists()  # run_dir=None writes nothing


def test_eval_md_is_written_to_run_dir(run_path, tmp_path, one_thread):
    report = evaluate_run(seqdiff.load(run_path), EvalConfig(max_sequences=2, draws=1, num_samples=0), run_dir=tmp_path,
                          log=lambda s: None)
    assert "samples" not in report
    assert (tmp_path / "eval.md").read_text().startswith("| metric | value | 95% CI |")


def test_the_report_needs_neither_hydra_nor_omegaconf(run_path):
    code = (
        "import sys, json, seqdiff\n"
        "from seqdiff.eval.report import EvalConfig, evaluate_run\n"
        f"r = evaluate_run(seqdiff.load({str(run_path)!r}), EvalConfig(max_sequences=2, draws=1, num_samples=2), log=lambda s: None)\n"
        "print(json.dumps([r['likelihood']['num_sequences'], sorted(m for m in ('hydra', 'omegaconf') if m in sys.modules)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"OMP_NUM_THREADS": "1", **__import__("os").environ})
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [2, []]


def test_from_dict_names_an_unknown_key():
    with pytest.raises(ConfigError, match=r"^eval\.drawz: no such key \(did you mean eval\.draws\?\); eval has: split, draws"):
        EvalConfig.from_dict({"drawz": 2}, sample_batch_size=8)
    cfg = EvalConfig.from_dict({"draws": 2, "max_sequences": None, "sampling_steps": [4, 8], "report": "none"},
                               sample_batch_size=8)
    assert (cfg.draws, cfg.max_sequences, cfg.sampling_steps, cfg.report, cfg.sample_batch_size) == (2, None, (4, 8), None, 8)


@pytest.mark.parametrize("kw, msg", [
    ({"draws": 0}, r"^eval\.draws: expected an integer >= 1, got 0$"),
    ({"num_samples": 2.5}, r"^eval\.num_samples: expected an integer >= 0, got 2\.5$"),
    ({"sampling_steps": [4, 0]}, r"^eval\.sampling_steps\[1\]: expected an integer >= 1, got 0$"),
    ({"report": "pdf"}, r"^eval\.report must be null or plots, got 'pdf'$"),
    ({"diversity": "maybe"}, r"^eval\.diversity: expected true or false, got 'maybe'$"),
    ({"sample_batch_size": 0}, r"^sample_batch_size: expected an integer >= 1, got 0$"),
])
def test_bad_settings_are_one_line_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        EvalConfig(**kw)


def test_a_protocol_or_plots_without_a_directory_is_refused(run_path):
    run = seqdiff.load(run_path)
    with pytest.raises(ConfigError, match=r"^eval\.protocol=mdlm_zero_shot: a protocol replaces the run's data source"):
        evaluate_run(run, EvalConfig(protocol="mdlm_zero_shot"))
    with pytest.raises(ConfigError, match=r"^eval\.report=plots: give run_dir"):
        evaluate_run(run, EvalConfig(report="plots"))


def test_estimator_is_checked_against_the_process():
    cfg = tiny_config()
    cfg["process"]["num_steps"] = 10  # a T-step process: the count estimator is for continuous time
    run = seqdiff.build_run(cfg)
    with pytest.raises(ConfigError, match=r"^eval\.estimator=count: the count estimator is for continuous time"):
        evaluate_run(run, EvalConfig(estimator="count", num_samples=0), log=lambda s: None)
