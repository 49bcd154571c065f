"""Labelled runs through the CLI: train on the multi-species source with label dropout, sample
under a label with guidance (and with flanks and EAGS), the vocabulary stored with the checkpoint,
one-line errors for an unknown label, a bad scale, guidance without a label."""

from __future__ import annotations

import json

import pytest

import seqdiff
from seqdiff.cli.main import main

TINY = [
    "data=species", "label.dropout=0.2", "trainer.steps=20", "trainer.batch_size=8", "trainer.progress=false",
    "trainer.eval_every=0", "trainer.log_every=10", "trainer.tensorboard=false", "backbone.d_model=16",
    "backbone.n_layers=1", "backbone.n_heads=2", "data.seq_len=32", "data.eval_sequences=16",
    "eval.max_sequences=8", "eval.num_samples=2", "sampler.num_steps=16",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("labelled")
    assert main(["train", f"run_dir={d}", *TINY]) == 0
    return d


def _fails(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def _seqs(text: str) -> list[str]:
    return [l for l in text.splitlines() if l and not l.startswith(">")]


def test_the_label_vocabulary_is_stored_with_the_checkpoint(run_dir):
    saved = json.loads((run_dir / "checkpoints" / "latest").resolve().with_name("step-00000020").joinpath("config.json")
                       .read_text())
    assert saved["config"]["label"] == {"dropout": 0.2, "vocab": {"species": ["alpha", "beta"]}}
    run = seqdiff.load(run_dir)
    assert run.labels.to_dict() == {"species": ["alpha", "beta"]} and run.model.label_sizes == (2,)
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["likelihood"]["conditional_on"] == ["species"]


def test_sample_under_a_label_with_guidance_flanks_and_eags(run_dir, capsys):
    assert main(["sample", f"checkpoint={run_dir}", "condition.label=beta", "guidance.scale=3", "num_samples=3"]) == 0
    assert len(_seqs(capsys.readouterr().out)) == 3
    assert main(["sample", f"checkpoint={run_dir}", "condition.label=beta", "guidance.scale=3", "condition.left=ACGTAC",
                 "condition.right=GGATCC", "sampler=eags", "num_samples=2"]) == 0
    seqs = _seqs(capsys.readouterr().out)
    assert len(seqs) == 2 and all(s.startswith("ACGTAC") and s.endswith("GGATCC") and len(s) == 32 for s in seqs)


def test_w_zero_through_the_cli_is_the_conditional_model(run_dir, capsys):
    assert main(["sample", f"checkpoint={run_dir}", "condition.label=alpha", "num_samples=4", "seed=5"]) == 0
    a = capsys.readouterr().out
    assert main(["sample", f"checkpoint={run_dir}", "condition.label=alpha", "guidance.scale=0", "num_samples=4",
                 "seed=5"]) == 0
    assert capsys.readouterr().out == a


@pytest.mark.parametrize("args, line", [
    (["condition.label=gamma"], "error: condition.label: unknown species label 'gamma' (known: alpha, beta)"),
    (["condition.label=beta", "guidance.scale=-1"], "error: guidance.scale: expected a number >= 0, got -1"),
    (["guidance.scale=2"], "error: guidance.scale: guidance needs a label (condition.label=NAME)"),
])
def test_bad_label_arguments_are_one_line(run_dir, capsys, args, line):
    _fails(["sample", f"checkpoint={run_dir}", "num_samples=2", *args])
    err = capsys.readouterr().err.strip()
    assert err == line


def test_a_label_on_an_unlabelled_run_is_one_line(tmp_path, capsys):
    d = tmp_path / "plain"
    args = [a for a in TINY if not a.startswith(("data=", "label.", "data.eval_sequences"))]
    assert main(["train", f"run_dir={d}", *args, "data.train_tokens=4096", "data.valid_tokens=512",
                 "data.test_tokens=512", "data.record_length=256"]) == 0
    capsys.readouterr()
    _fails(["sample", f"checkpoint={d}", "condition.label=beta"])
    assert capsys.readouterr().err.strip() == "error: condition.label: this run was trained without labels"
    _fails(["train", f"run_dir={tmp_path / 'p2'}", *args, "label.dropout=0.1"])
    assert "label: the data (seqdiff_recipes.synthetic.MarkovData) has no labels" in capsys.readouterr().err
