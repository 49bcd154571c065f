"""``seqdiff sample`` / ``seqdiff eval`` overrides apply on top of the checkpoint's own
configuration (seqdiff/run_config.py, seqdiff/cli/reopen.py), tried as a new user would:

(a) ``data.fasta=other.fa`` on a run of ``experiment=dna_fasta`` changes that one key (it was
    ``data.fasta: no such key``: the overrides were composed against the default ``data=markov``);
(b) naming the checkpoint's own group option (``data=fasta``) keeps its section, its seq_len
    included (it used to start again from the defaults: seq_len 1024); another option starts
    from that option's defaults;
(c) a whole other genome is the test set with ``data.split_by=test`` (it was refused for having
    no train/valid intervals, which an evaluation does not need), and training on it is refused;
and the checkpoint's sampler is the default (an AR run needed ``sampler=autoregressive``), while
what the checkpoint fixes (domain, backbone, the process kind, time_conditioning) is a one-line
error naming the override."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support.genome import write_fasta
from seqdiff.cli.main import main

TINY = [
    "trainer.steps=4", "trainer.batch_size=4", "trainer.progress=false", "trainer.eval_every=0",
    "trainer.log_every=2", "trainer.tensorboard=false", "trainer.ckpt_every=0",
    "backbone.d_model=16", "backbone.n_layers=1", "backbone.n_heads=2",
    "eval.max_sequences=4", "eval.num_samples=0", "eval.draws=1",
]
QUICK = ["eval.num_samples=0", "eval.max_sequences=4", "eval.draws=1"]  # what each eval below needs


@pytest.fixture(scope="module")
def genomes(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("genomes")
    return (write_fasta(d / "human.fa", {"chr1": 6000, "chr2": 4000}, seed=1),
            write_fasta(d / "other_species.fa", {"s1": 3000, "s2": 2000}, seed=7))


@pytest.fixture(scope="module")
def dna_run(tmp_path_factory, genomes) -> Path:
    run = tmp_path_factory.mktemp("dna") / "run"
    assert main(["train", "experiment=dna_fasta", f"data.fasta={genomes[0]}", "data.seq_len=64", f"run_dir={run}",
                 "sampler.num_steps=8", *TINY]) == 0
    return run


@pytest.fixture(scope="module")
def ar_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ar") / "run"
    assert main(["train", "experiment=quickstart_ar", f"run_dir={run}", "data.seq_len=32", "data.train_tokens=4096",
                 "data.valid_tokens=512", "data.test_tokens=512", "data.record_length=256", *TINY]) == 0
    return run


def evaluate(run: Path, *args: str) -> dict:
    assert main(["eval", f"checkpoint={run}", *args]) == 0
    return json.loads((run / "eval.json").read_text())


def error_line(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_the_run_records_its_group_options(dna_run):
    ck = dna_run / "checkpoints" / (dna_run / "checkpoints" / "latest").read_text().strip()
    cfg = json.loads((ck / "config.json").read_text())["config"]
    assert cfg["choices"]["data"] == "fasta" and cfg["choices"]["experiment"] == "dna_fasta"
    assert cfg["choices"]["sampler"] == "ancestral" and cfg["choices"]["process/schedule"] == "loglinear"


def test_without_recorded_options_they_are_inferred_the_same(dna_run, ar_run):
    """An older run or an import has no ``choices``: each group's option is inferred from its
    section's ``_target_`` and values; for these two runs that is what training recorded."""
    from seqdiff.cli.main import config_dir
    from seqdiff.cli.reopen import checkpoint_choices
    from seqdiff.io.checkpoint import load_checkpoint

    for run in (dna_run, ar_run):
        cfg = load_checkpoint(run, verify=False).config
        recorded = cfg.pop("choices")
        assert checkpoint_choices(cfg, config_dir()) == {g: o for g, o in recorded.items() if g not in ("experiment", "trainer")}


def test_a_data_key_applies_on_top_of_the_checkpoints_data(dna_run, genomes):
    """(a) one key changes, the rest of the run's data section (seq_len 64) stays."""
    report = evaluate(dna_run, f"data.fasta={genomes[1]}", *QUICK)
    ref = report["reference"]
    assert ref["fasta"] == str(genomes[1]) and ref["seq_len"] == 64
    assert report["likelihood"]["num_tokens"] == report["likelihood"]["num_sequences"] * 64
    # the same split rule on the other genome: its last 5% of every record is the test split
    assert ref["splits"]["test"]["bases"] == 150 + 100


def test_naming_the_checkpoints_own_option_keeps_its_section(dna_run, genomes):
    """(b) data=fasta is the run's own option: seq_len stays 64 (not fasta.yaml's 1024)."""
    report = evaluate(dna_run, "data=fasta", f"data.fasta={genomes[1]}", *QUICK)
    assert report["reference"]["fasta"] == str(genomes[1]) and report["reference"]["seq_len"] == 64
    report = evaluate(dna_run, "data=fasta", *QUICK)  # nothing else changes: the run's own genome
    assert report["reference"]["fasta"] == str(genomes[0]) and report["reference"]["seq_len"] == 64


def test_another_option_starts_from_its_defaults(dna_run):
    report = evaluate(dna_run, "data=markov", "data.seq_len=32", "data.train_tokens=4096", "data.valid_tokens=512",
                      "data.test_tokens=512", "data.record_length=256", *QUICK)
    assert report["reference"]["entropy_rate_bits"] > 0 and report["likelihood"]["num_tokens"] == 4 * 32


def test_a_whole_other_genome_as_the_test_set(dna_run, genomes):
    """(c) no train/valid intervals: an evaluation needs none."""
    report = evaluate(dna_run, f"data.fasta={genomes[1]}", "data.split_by=test", "eval.max_sequences=200",
                      "eval.num_samples=0", "eval.draws=1")
    splits = report["reference"]["splits"]
    assert splits["test"]["bases"] == 5000 and splits["train"]["intervals"] == splits["valid"]["intervals"] == 0
    assert report["likelihood"]["num_sequences"] == 3000 // 64 + 2000 // 64


def test_training_on_an_evaluation_only_genome_is_refused(genomes, tmp_path, capsys):
    run = tmp_path / "r"
    line = error_line(capsys, ["train", "experiment=dna_fasta", f"data.fasta={genomes[1]}", "data.split_by=test",
                               "data.seq_len=64", f"run_dir={run}", *TINY])
    assert re.search(r"other_species\.fa: no (train|valid) intervals: data\.split_by=test holds the whole genome out", line), line
    assert not run.exists()


def test_the_checkpoints_sampler_is_the_default(ar_run, dna_run, capsys):
    # an AR run samples with its own autoregressive sampler, no sampler=... needed
    capsys.readouterr()
    assert main(["sample", f"checkpoint={ar_run}", "num_samples=2"]) == 0
    out = capsys.readouterr()
    assert len([l for l in out.out.splitlines() if l and not l.startswith(">")]) == 2
    assert evaluate(ar_run, "eval.num_samples=2", "eval.max_sequences=2", "eval.draws=1")["samples"]["num_samples"] == 2
    # the DNA run trained with sampler.num_steps=8: at most 8 backbone evaluations per sample (128 by default)
    capsys.readouterr()
    assert main(["sample", f"checkpoint={dna_run}", "num_samples=2"]) == 0
    nfe = float(re.search(r"backbone evaluations per sample ([0-9.]+)", capsys.readouterr().err).group(1))
    assert 1 <= nfe <= 8
    assert main(["sample", f"checkpoint={dna_run}", "num_samples=2", "sampler.num_steps=3"]) == 0  # on top of it
    assert float(re.search(r"backbone evaluations per sample ([0-9.]+)", capsys.readouterr().err).group(1)) <= 3


@pytest.mark.parametrize("override, expect", [
    ("domain=protein", r"^error: eval: cannot override 'domain=protein': the checkpoint fixes the domain$"),
    ("backbone.n_layers=2", r"^error: eval: cannot override 'backbone\.n_layers=2': the checkpoint fixes the backbone$"),
    ("process=ar", r"^error: eval: cannot override 'process=ar': the checkpoint's process is seqdiff\.processes\.MaskedDiffusion"),
    ("process.time_conditioning=true", r"^error: eval: cannot override 'process\.time_conditioning=true': time_conditioning is fixed"),
    ("+process.bogus=1", r"^error: eval: cannot override '\+process\.bogus=1': the checkpoint fixes the process \(only process\.num_steps"),
    ("experiment=quickstart", r"^error: eval: the checkpoint's configuration is the run's own; name single groups"),
])
def test_what_the_checkpoint_fixes_is_a_one_line_error(dna_run, capsys, override, expect):
    line = error_line(capsys, ["eval", f"checkpoint={dna_run}", override, *QUICK])
    assert re.search(expect, line), line


def test_evaluation_side_process_keys_may_change(dna_run):
    report = evaluate(dna_run, "process=mdlm_discrete", *QUICK)  # same process kind: the T-step bound
    assert report["likelihood"]["estimator"] == "time" and report["likelihood"]["bound"]
    assert "1000-step" in report["likelihood"]["estimand"]
    report = evaluate(dna_run, "process/schedule=cosine", "process.t_min=0.01", *QUICK)
    assert report["likelihood"]["estimator"] == "count"
