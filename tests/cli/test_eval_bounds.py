"""What the CLI reports is what it says: an ENS run (``process=mdlm_ens``) trained and
evaluated through ``seqdiff train``, its training objective logged under its own name,
its ``eval.json`` the uniform NELBO (recomputed here independently); MDLM's truncated
``time`` figure shown only beside the bound; ``eval.estimator=count`` on a T-step run
refused in one line."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from seqdiff.cli.main import main

TINY = [
    "process=mdlm_ens",
    "process.ens_groups=2",
    "trainer.steps=40",
    "trainer.batch_size=16",
    "trainer.lr=1e-2",
    "trainer.warmup=5",
    "trainer.progress=false",
    "trainer.eval_every=20",
    "trainer.log_every=20",
    "trainer.tensorboard=false",
    "backbone.d_model=32",
    "backbone.n_layers=1",
    "backbone.n_heads=2",
    "data.seq_len=32",
    "data.train_tokens=16384",
    "data.valid_tokens=1024",
    "data.test_tokens=2048",
    "data.record_length=512",
    "eval.max_sequences=32",
    "eval.batch_size=16",
    "eval.draws=8",
    "eval.num_samples=0",
]


@pytest.fixture(scope="module")
def ens_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ens")
    assert main(["train", f"run_dir={d}", *TINY]) == 0
    return d


def test_ens_training_objective_is_logged_under_its_own_name(ens_run):
    metrics = [json.loads(l) for l in (ens_run / "metrics.jsonl").read_text().splitlines()]
    assert metrics and all("train_ens_objective_bits_per_token" in m for m in metrics)
    likelihood_names = {"bits_per_token", "train_nelbo_bits_per_token", "train_nll_bits_per_token"}
    assert not any(likelihood_names & set(m) for m in metrics)
    assert "valid_bits_per_token" in metrics[-1]  # the held-out NELBO (uniform masking), beside it by name


def test_ens_eval_json_is_the_uniform_nelbo(ens_run):
    """Recompute the held-out number of eval.json with the count estimator, many fresh
    unstratified draws per sequence, outside ``evaluate_likelihood``."""
    from seqdiff import load

    report = json.loads((ens_run / "eval.json").read_text())
    lik = report["likelihood"]
    assert lik["estimator"] == "count" and lik["bound"] and lik["draws"] == 8
    run = load(ens_run)
    run.model.eval()
    totals, tokens, variances = [], [], []
    with torch.no_grad():
        for i, batch in enumerate(run.data.eval_batches("test", 16, 32)):
            x0, valid = batch[0], batch[1]
            draws = torch.stack([run.process.nelbo(run.model, x0, valid, estimator="count",
                                                   generator=torch.Generator().manual_seed(1000 * i + d)).nelbo
                                 for d in range(64)])
            totals.append(draws.mean(0))
            variances.append(draws.var(0))
            tokens.append(valid.sum(1).double())
    n = torch.cat(tokens).sum()
    mine = float(torch.cat(totals).sum() / n)
    # Monte-Carlo standard error of eval.json's 8 (stratified, so at most this noisy) draws and of ours
    se = math.sqrt(float(torch.cat(variances).sum()) * (1 / 8 + 1 / 64)) / float(n)
    assert lik["num_tokens"] == int(n)
    assert abs(lik["nats_per_token"] - mine) < 4 * se, (lik["nats_per_token"], mine, se)


def test_time_estimator_is_reported_beside_the_bound(ens_run, capsys):
    assert main(["eval", f"checkpoint={ens_run}", "eval.estimator=time", "eval.draws=2", "eval.num_samples=0"]) == 0
    out = capsys.readouterr().out
    report = json.loads((ens_run / "eval.json").read_text())
    assert report["likelihood"]["estimator"] == "time" and not report["likelihood"]["bound"]
    assert report["likelihood_bound"]["estimator"] == "count" and report["likelihood_bound"]["bound"]
    assert report["nelbo_over_entropy_rate"] == pytest.approx(
        report["likelihood_bound"]["bits_per_token"] / report["reference"]["entropy_rate_bits"])
    assert "eps-truncated, as MDLM reports" in out and "not a bound" in out
    assert "eps-truncated NELBO, as MDLM reports (not a bound)" in (ens_run / "eval.md").read_text()


def test_count_estimator_on_a_t_step_run_is_a_one_line_error(ens_run):
    r = subprocess.run([sys.executable, "-m", "seqdiff", "eval", f"checkpoint={ens_run}", "process=mdlm_ens",
                        "process.corruption=uniform", "process.estimator=time",
                        "process.num_steps=100", "eval.estimator=count", "eval.num_samples=0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: eval.estimator=count: the count estimator is for continuous time") and "num_steps=100" in r.stderr
