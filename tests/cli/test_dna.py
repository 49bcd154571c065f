"""End to end on a generated multi-record FASTA + BED: ``seqdiff train experiment=dna_fasta``,
``seqdiff eval`` (bits/base with a CI, DNA sample statistics), ``seqdiff sample`` infilling
between flanks and inside a region of the FASTA; bad input is one ``error:`` line, exit 2."""

from __future__ import annotations

import json
import re

import pytest

from support.genome import tiny_genome, write_bed
from seqdiff.cli.main import main

pytestmark = pytest.mark.slow

TINY = [
    "trainer.steps=20",
    "trainer.batch_size=8",
    "trainer.progress=false",
    "trainer.eval_every=10",
    "trainer.log_every=10",
    "trainer.eval_sequences=8",
    "trainer.tensorboard=false",
    "backbone.d_model=32",
    "backbone.n_layers=1",
    "backbone.n_heads=2",
    "data.seq_len=64",
    "eval.max_sequences=16",
    "eval.num_samples=4",
    "sampler.num_steps=16",
]


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    return tiny_genome(tmp_path_factory.mktemp("genome"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, genome):
    fa, bed = genome
    d = tmp_path_factory.mktemp("run")
    assert main(["train", "experiment=dna_fasta", f"data.fasta={fa}", f"data.bed={bed}", f"run_dir={d}", *TINY]) == 0
    return d


def test_train_reports_bits_per_base(run_dir, genome):
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["unit"] == "base"
    lik = report["likelihood"]
    assert lik["num_sequences"] == 16 and lik["num_tokens"] == 16 * 64
    assert 0.5 < lik["bits_per_token"] < 3.0 and 0 < lik["bits_ci95"] < 1
    ref = report["reference"]
    assert ref["fasta"] == str(genome[0]) and ref["splits"]["train"]["intervals"] > 0
    s = report["samples"]
    assert set(s["kmer_js_bits"]) == {f"k{k}" for k in range(1, 7)} and "gc_fraction" in s["sample_stats"]
    cfg = json.loads((run_dir / "checkpoints" / "step-00000020" / "config.json").read_text())["config"]
    assert cfg["domain"]["_target_"] == "seqdiff_recipes.dna.DNADomain" and cfg["data"]["_target_"] == "seqdiff_recipes.dna.FastaData"


def test_eval_prints_bits_per_base_with_ci(run_dir, capsys):
    assert main(["eval", f"checkpoint={run_dir}", "eval.max_sequences=8", "eval.num_samples=2", "eval.draws=2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"held-out \(test\) NELBO \d\.\d{4} ± \d\.\d{4} bits/base", out), out


def test_sample_infills_between_flanks(run_dir, capsys):
    assert main(["sample", f"checkpoint={run_dir}", "num_samples=3", "condition.left=ACGTACGTAC", "condition.right=GGGATC"]) == 0
    seqs = [l for l in capsys.readouterr().out.splitlines() if l and not l.startswith(">")]
    assert len(seqs) == 3
    assert all(s.startswith("ACGTACGTAC") and s.endswith("GGGATC") and len(s) == 64 and set(s) <= set("ACGTN") for s in seqs)


def test_sample_infills_a_region_of_the_fasta(run_dir, genome, capsys):
    fa, _ = genome
    assert main(["sample", f"checkpoint={run_dir}", "num_samples=2", f"condition.fasta={fa}", "condition.region=chr2:1001-1080", "condition.infill=20"]) == 0
    seqs = [l for l in capsys.readouterr().out.splitlines() if l and not l.startswith(">")]
    from seqdiff_recipes.dna.fasta import FastaFile

    real = FastaFile(fa).fetch("chr2", 1000, 1080).upper()
    assert all(len(s) == 80 and s[:30] == real[:30] and s[50:] == real[50:] for s in seqs)


def test_bad_bed_is_one_error_line(tmp_path, genome, capsys):
    fa, _ = genome
    bed = write_bed(tmp_path / "bad.bed", [("chr1", 0, 1000, "train"), ("chr1", 100, 50, "test")])
    with pytest.raises(SystemExit) as exc:
        main(["train", "experiment=dna_fasta", f"data.fasta={fa}", f"data.bed={bed}", f"run_dir={tmp_path / 'r'}", *TINY])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "bad.bed, line 2: start 100 > end 50" in err[-1]


def test_missing_fasta_path_is_explained(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "experiment=dna_fasta", f"run_dir={tmp_path / 'r'}", *TINY])
    assert exc.value.code == 2
    assert "data.fasta: give the genome" in capsys.readouterr().err
