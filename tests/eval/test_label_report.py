"""The labelled report: the held-out NELBO per label given and without the label, with CIs; the
label adherence of samples drawn under each label by the model's own Bayes classifier from its
conditional NELBOs (checked by hand and against evaluate_likelihood directly) with the exact
posterior's accuracy beside it on the multi-species source; an unlabelled run's report as it was."""

from __future__ import annotations

import json
import math

import pytest
import torch

import seqdiff
from seqdiff.cli.main import main
from seqdiff.data import Batch
from seqdiff.errors import ConfigError
from seqdiff.eval.labels import bayes_posterior, candidates, label_nelbos
from seqdiff.eval.likelihood import evaluate_likelihood
from seqdiff.eval.report import EvalConfig, evaluate_run
from seqdiff.labels import LabelSpec
from support.runs import tiny_config

TINY = [
    "data=species", "label.dropout=0.2", "trainer.steps=300", "trainer.batch_size=16", "trainer.progress=false",
    "trainer.eval_every=0", "trainer.log_every=100", "trainer.tensorboard=false", "backbone.d_model=32",
    "backbone.n_layers=1", "backbone.n_heads=2", "data.seq_len=32", "data.eval_sequences=16",
    "eval.max_sequences=8", "eval.num_samples=8", "eval.draws=2", "sampler.num_steps=16", "eval.guidance=2",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("labelled_report")
    assert main(["train", f"run_dir={d}", *TINY]) == 0
    return d


def test_bayes_posterior_by_hand():
    nelbo = torch.tensor([[1.0, 2.0], [3.0, 1.0]])
    prior = torch.tensor([0.25, 0.75])
    a = 0.25 * math.exp(-1) / (0.25 * math.exp(-1) + 0.75 * math.exp(-2))
    b = 0.25 * math.exp(-3) / (0.25 * math.exp(-3) + 0.75 * math.exp(-1))
    post = bayes_posterior(nelbo, prior)
    assert post[:, 0].tolist() == pytest.approx([a, b], rel=1e-12)
    assert post.argmax(1).tolist() == [1, 1]  # row 0: the prior outweighs one nat
    assert bayes_posterior(nelbo).argmax(1).tolist() == [0, 1]  # uniform prior: the smaller NELBO


def test_candidates_put_no_label_on_the_other_fields():
    spec = LabelSpec((("species", ("a", "b", "c")), ("tissue", ("x", "y"))))
    assert candidates(spec, "species").tolist() == [[0, 2], [1, 2], [2, 2]]
    assert candidates(spec, "tissue").tolist() == [[3, 0], [3, 1]]


def test_the_labelled_report(run_dir):
    report = json.loads((run_dir / "eval.json").read_text())
    by = report["likelihood_by_label"]["species"]
    assert set(by) == {"alpha", "beta"} and by["alpha"]["rows"] + by["beta"]["rows"] == 8
    for entry in by.values():
        for key in ("conditional", "unconditional", "conditional_minus_unconditional"):
            assert set(entry[key]) == {"nats_per_token", "nats_ci95", "bits_per_token", "bits_ci95"}
            assert math.isfinite(entry[key]["bits_ci95"])
    unc = report["likelihood_unconditional"]
    assert unc["num_sequences"] == 8 and unc["bound"]
    # the rows' own conditional figures average back to the report's conditional likelihood (equal rows, equal lengths)
    mean = (by["alpha"]["conditional"]["nats_per_token"] + by["beta"]["conditional"]["nats_per_token"]) / 2
    assert mean == pytest.approx(report["likelihood"]["nats_per_token"], rel=1e-9)
    la = report["label_adherence"]
    assert la["classifier"] == "bayes_nelbo" and "upper-bound-based proxy" in la["note"]
    assert la["guidance_scale"] == 2.0 and la["prior_source"] == "data" and la["prior"] == {"species": [0.5, 0.5]}
    f = la["fields"]["species"]
    for name in ("alpha", "beta"):
        e = f["labels"][name]
        assert e["num_samples"] == 4 and 0.0 <= e["bayes_accuracy"] <= 1.0 and 0.0 <= e["bayes_posterior"] <= 1.0
        assert 0.0 <= e["exact"]["label_accuracy"] <= 1.0
    assert 0.0 <= f["exact_accuracy_mean"] <= 1.0


def test_the_adherence_is_the_bayes_classifier_of_evaluate_likelihood(run_dir):
    """Redraw the report's samples of one label and classify them by hand: one evaluate_likelihood
    call per candidate label, the prior, the argmax."""
    report = json.loads((run_dir / "eval.json").read_text())
    run = seqdiff.load(run_dir)
    spec = run.labels
    for k, name in enumerate(spec.names("species")):
        out = run.generate(4, 32, None, seed=0 + k, batch_size=64, label=name, guidance=2.0)
        batch = Batch(out.tokens, out.tokens != run.vocab.pad_id)
        cols = []
        for y in range(2):
            lab = torch.full((4, 1), y, dtype=torch.long)
            _, per_seq, _ = evaluate_likelihood(run.model, run.process, [Batch(batch.x0, batch.valid, None, lab)],
                                                draws=2, seed=0, estimator="count")
            cols.append(per_seq.double())
        nelbo = torch.stack(cols, 1)
        mine, _ = label_nelbos(run.model, run.process, [batch], candidates(spec, "species"), draws=2, seed=0,
                               estimator="count")
        assert torch.equal(mine, nelbo)
        post = torch.softmax(math.log(0.5) - nelbo, 1)
        acc = float((post.argmax(1) == k).double().mean())
        assert report["label_adherence"]["fields"]["species"]["labels"][name]["bayes_accuracy"] == acc
        exact = run.data.score_label(out.tokens, k)["label_accuracy"]
        assert report["label_adherence"]["fields"]["species"]["labels"][name]["exact"]["label_accuracy"] == exact


def test_eval_guidance_defaults_to_the_runs_scale_and_is_checked(run_dir):
    run = seqdiff.load(run_dir)
    rep = evaluate_run(run, EvalConfig(max_sequences=4, draws=1, num_samples=2), log=lambda s: None)
    assert rep["label_adherence"]["guidance_scale"] == 0.0  # the run's guidance.scale: 0
    with pytest.raises(ConfigError, match=r"^eval\.guidance: expected null or a finite number >= 0, got -1$"):
        EvalConfig(guidance=-1)


def test_an_unlabelled_report_is_unchanged(tmp_path):
    cfg = tiny_config()
    run = seqdiff.build_run(cfg)
    lines: list[str] = []
    rep = evaluate_run(run, EvalConfig(split="valid", max_sequences=4, draws=1, num_samples=2, sample_batch_size=2),
                       log=lines.append)
    assert set(rep) == {"checkpoint", "split", "likelihood", "eval_seconds", "reference", "unit",
                        "nelbo_over_window_entropy", "nelbo_over_entropy_rate", "samples"}
    assert not any("label" in l for l in lines)


def test_a_bad_eval_guidance_through_the_cli_is_one_line(run_dir, capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", f"checkpoint={run_dir}", "eval.guidance=-1"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: eval.guidance: expected null or a finite number >= 0, got -1"
