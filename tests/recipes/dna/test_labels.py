"""Labels from a BED column (FastaData, ``data.label_column``): every window carries its row's
label, in training and evaluation; rows without one, or with one not configured, are one-line
errors naming the file and line; a labelled FASTA run trains and samples through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqdiff.cli.main import main
from seqdiff.errors import ConfigError, DataError
from seqdiff.labels import LabelSpec
from seqdiff_recipes.dna import DNADomain, FastaData
from support.genome import write_bed, write_fasta

TISSUE = {"chr1": "liver", "chr2": "brain", "chr3": "heart"}


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    d = tmp_path_factory.mktemp("labelled_genome")
    lengths = {"chr1": 20_000, "chr2": 16_000, "chr3": 12_000}
    fa = write_fasta(d / "genome.fa", lengths, seed=3, softmask=0.0)
    rows = []
    for name, n in lengths.items():
        for k, s in enumerate(range(0, n - 2000 + 1, 2000)):
            split = "valid" if k % 5 == 3 else "test" if k % 5 == 4 else "train"
            rows.append((name, s, s + 2000, split, TISSUE[name], "fwd" if k % 2 else "rev"))
    return fa, write_bed(d / "regions.bed", rows), rows


def records(fa: Path) -> dict[str, str]:
    out, name = {}, None
    for line in fa.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            out[name] = ""
        else:
            out[name] += line.upper()
    return out


def test_every_window_carries_its_bed_rows_label(genome):
    fa, bed, _ = genome
    d = FastaData(DNADomain(), fa, bed, seq_len=64, rc_augment=0.0, label_column=5)
    assert d.labels == LabelSpec.of({"label": ["brain", "heart", "liver"]})  # the BED's labels, sorted
    seqs, dom = records(fa), DNADomain()
    b = d.train_batch(0, 24)
    assert b.label.shape == (24, 1)
    for x, y in zip(b.x0, b.label[:, 0]):
        text = dom.decode(x)
        homes = [c for c, s in seqs.items() if text in s]
        assert [TISSUE[c] for c in homes] == [d.labels.names("label")[int(y)]]
    for split in ("valid", "test"):
        locs = list(d.eval_windows(split, max_sequences=20))
        ys = torch.cat([bb.label[:, 0] for bb in d.eval_batches(split, batch_size=7, max_sequences=20)])
        assert [TISSUE[c] for c, _, _ in locs] == [d.labels.names("label")[int(y)] for y in ys]


def test_label_names_fix_the_ids_and_rc_flips_keep_the_label(genome):
    fa, bed, _ = genome
    d = FastaData(DNADomain(), fa, bed, seq_len=64, rc_augment=1.0, label_column=5, label_names=["liver", "brain", "heart"],
                  label_field="tissue")
    plain = FastaData(DNADomain(), fa, bed, seq_len=64, rc_augment=0.0, label_column=5,
                      label_names=["liver", "brain", "heart"], label_field="tissue")
    assert d.labels.to_dict() == {"tissue": ["liver", "brain", "heart"]}
    assert torch.equal(d.train_batch(2, 16).label, plain.train_batch(2, 16).label)  # strand-free


def test_a_row_without_a_label_names_the_file_and_line(genome, tmp_path):
    fa, _, rows = genome
    bad = list(rows)
    bad[4] = bad[4][:4] + ("",) + bad[4][5:]
    bed = write_bed(tmp_path / "missing.bed", bad)
    with pytest.raises(DataError, match=rf"^{bed}, line 5: no label in column 5 \(data.label_column\); every row needs one$"):
        FastaData(DNADomain(), fa, bed, seq_len=64, label_column=5)


def test_a_label_not_configured_names_the_file_and_line(genome):
    fa, bed, rows = genome
    line = next(i for i, r in enumerate(rows, 1) if r[4] == "heart")
    with pytest.raises(DataError, match=rf"^{bed}, line {line}: label 'heart' in column 5 is not one of data.label_names "
                                        r"\(liver, brain\)$"):
        FastaData(DNADomain(), fa, bed, seq_len=64, label_column=5, label_names=["liver", "brain"])


def test_several_label_fields_from_several_columns(genome):
    fa, bed, rows = genome
    d = FastaData(DNADomain(), fa, bed, seq_len=64, rc_augment=0.0, label_column=[5, 6], label_field=["tissue", "arm"],
                  label_names={"arm": ["rev", "fwd"]})
    assert d.labels.to_dict() == {"tissue": ["brain", "heart", "liver"], "arm": ["rev", "fwd"]}
    locs = list(d.eval_windows("valid", max_sequences=12))
    ys = next(d.eval_batches("valid", batch_size=12, max_sequences=12)).label
    by_row = {(r[0], r[1]): r for r in rows}
    for (chrom, start, _), y in zip(locs, ys):
        row = by_row[(chrom, start - start % 2000)]
        assert d.labels.decode(y) == {"tissue": row[4], "arm": row[5]}
    assert d.train_batch(0, 8).label.shape == (8, 2)
    with pytest.raises(ConfigError, match=r"2 label columns need 2 field names"):
        FastaData(DNADomain(), fa, bed, seq_len=64, label_column=[5, 6])


def test_label_column_settings_are_checked(genome):
    fa, bed, _ = genome
    with pytest.raises(ConfigError, match="data.label_column: labels are read from a BED column"):
        FastaData(DNADomain(), fa, seq_len=64, label_column=5)
    with pytest.raises(ConfigError, match="is also data.bed_split_column"):
        FastaData(DNADomain(), fa, bed, seq_len=64, label_column=4)
    with pytest.raises(ConfigError, match=r"^data.label_column: expected a 1-based BED column or a list of them, got 'five'$"):
        FastaData(DNADomain(), fa, bed, seq_len=64, label_column="five")
    with pytest.raises(ConfigError, match=r"distinct 1-based BED columns, got \[5, 5\]"):
        FastaData(DNADomain(), fa, bed, seq_len=64, label_column=[5, 5], label_field=["a", "b"])


def test_a_labelled_fasta_run_trains_and_samples_under_a_label(genome, tmp_path, capsys):
    fa, bed, _ = genome
    run = tmp_path / "run"
    tiny = ["trainer.steps=3", "trainer.batch_size=4", "trainer.progress=false", "trainer.eval_every=0",
            "trainer.tensorboard=false", "trainer.ckpt_every=0", "backbone.d_model=16", "backbone.n_layers=1",
            "backbone.n_heads=2", "data.seq_len=32", "eval.max_sequences=4", "eval.num_samples=0", "eval.draws=1",
            "data.reference_windows=8"]
    assert main(["train", "experiment=dna_fasta", f"run_dir={run}", f"data.fasta={fa}", f"data.bed={bed}",
                 "data.label_column=5", "label.dropout=0.1", *tiny]) == 0
    capsys.readouterr()
    assert main(["sample", f"checkpoint={run}", "condition.label=liver", "guidance.scale=3", "num_samples=2",
                 "sampler.num_steps=8"]) == 0
    assert len([l for l in capsys.readouterr().out.splitlines() if l and not l.startswith(">")]) == 2
    with pytest.raises(SystemExit):
        main(["sample", f"checkpoint={run}", "condition.label=kidney"])
    assert capsys.readouterr().err.strip() == "error: condition.label: unknown label 'kidney' (known: brain, heart, liver)"


def test_two_label_fields_through_the_cli(genome, tmp_path, capsys):
    fa, bed, _ = genome
    run = tmp_path / "run2"
    tiny = ["trainer.steps=2", "trainer.batch_size=4", "trainer.progress=false", "trainer.eval_every=0",
            "trainer.tensorboard=false", "trainer.ckpt_every=0", "backbone.d_model=16", "backbone.n_layers=1",
            "backbone.n_heads=2", "data.seq_len=32", "eval.max_sequences=4", "eval.num_samples=0", "eval.draws=1",
            "data.reference_windows=8"]
    assert main(["train", "experiment=dna_fasta", f"run_dir={run}", f"data.fasta={fa}", f"data.bed={bed}",
                 "data.label_column=[5,6]", "data.label_field=[tissue,arm]", "label.dropout=0.1", *tiny]) == 0
    capsys.readouterr()
    assert main(["sample", f"checkpoint={run}", "condition.label={tissue:liver,arm:fwd}", "guidance.scale=1",
                 "num_samples=2", "sampler.num_steps=4"]) == 0
    assert main(["sample", f"checkpoint={run}", "condition.label='tissue:heart'", "num_samples=1",
                 "sampler.num_steps=4"]) == 0  # a field left out: no label there
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["sample", f"checkpoint={run}", "condition.label=liver"])
    assert capsys.readouterr().err.strip() == ("error: condition.label: this run has label fields ['tissue', 'arm']; "
                                               "give field:name,field:name (or a dict)")


def test_the_label_prior_is_each_labels_share_of_training_windows(genome):
    """The report's Bayes-classifier prior: train intervals per chromosome 6 (chr1), 6 (chr2), 4 (chr3),
    each of 2000 - 64 + 1 window starts."""
    fa, bed, _ = genome
    d = FastaData(DNADomain(), fa, bed, seq_len=64, rc_augment=0.0, label_column=5)
    assert d.label_prior()["label"].tolist() == pytest.approx([6 / 16, 4 / 16, 6 / 16], abs=1e-12)  # brain, heart, liver
    assert FastaData(DNADomain(), fa, bed, seq_len=64, rc_augment=0.0).label_prior() is None
