"""End-to-end: ``seqdiff train process=sedd`` on the quickstart source, then eval / sample."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.runs import CLI_TINY

from seqdiff.cli.main import main
from seqdiff.run import load

TINY = CLI_TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sedd_run")
    assert main(["train", "process=sedd", "sampler=sedd_analytic", f"run_dir={d}", *TINY]) == 0
    return d


def test_train_writes_a_sedd_run(run_dir):
    metrics = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [3, 6] and all(m["valid_bits_per_token"] > 0 for m in metrics)
    report = json.loads((run_dir / "eval.json").read_text())
    lik = report["likelihood"]
    assert lik["estimator"] == "count" and not lik["exact"] and lik["num_sequences"] == 8
    assert report["samples"]["num_samples"] == 4
    run = load(run_dir)
    assert run.process.kind == "sedd" and run.process.time_conditioning and run.model.time_conditioning


def test_sample_with_each_sampler_and_flanks(run_dir, capsys):
    for sampler in ("sedd_euler", "sedd_analytic", "ancestral"):
        assert main(["sample", f"checkpoint={run_dir}", "num_samples=3", f"sampler={sampler}", "sampler.num_steps=8",
                     "condition.left=ACGTACGT", "condition.right=GGGG"]) == 0
        seqs = [l for l in capsys.readouterr().out.splitlines() if l and not l.startswith(">")]
        assert len(seqs) == 3 and all(s.startswith("ACGTACGT") and s.endswith("GGGG") and len(s) == 32 for s in seqs)


def test_eval_the_step_bound_and_with_the_time_estimator(run_dir, capsys):
    assert main(["eval", f"checkpoint={run_dir}", "process.num_steps=16", "process.estimator=time",
                 "eval.draws=2", "eval.num_samples=0"]) == 0
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["likelihood"]["estimator"] == "time" and report["likelihood"]["draws"] == 2
    r = subprocess.run([sys.executable, "-m", "seqdiff", "eval", f"checkpoint={run_dir}", "process.num_steps=16",
                        "eval.num_samples=0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("error: process: ScoreEntropyDiffusion: the T-step bound (num_steps > 0) "
                                "needs estimator=time")


def test_eval_the_mass_conserving_reading(run_dir):
    """Same seed, same draws: the lambda := 0 reading (the ancestral sampler's model) is never
    above the SEDD sampler's bound, draw by draw. SEDD-only keys need process=sedd (or +key)."""
    nats = {}
    for name, extra in (("sedd", []), ("conserving", ["process=sedd", "process.mass_conserving=true"])):
        assert main(["eval", f"checkpoint={run_dir}", *extra, "eval.num_samples=0", "eval.max_sequences=16"]) == 0
        nats[name] = json.loads((run_dir / "eval.json").read_text())["likelihood"]["nats_per_token"]
    assert nats["conserving"] < nats["sedd"]


def test_geometric_noise_trains(tmp_path):
    assert main(["train", "process=sedd_geometric", "sampler=sedd_euler", f"run_dir={tmp_path}", *TINY]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["likelihood"]["bits_per_token"] > 0
    assert "GeometricSchedule" in load(tmp_path).process.describe()["schedule"]
