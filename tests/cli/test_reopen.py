"""Which group options a checkpoint was composed from: recorded at training, else inferred from
each section's ``_target_`` against the configs (older runs, imports)."""

from __future__ import annotations

from seqdiff.cli.main import config_dir
from seqdiff.cli.reopen import base_overrides, checkpoint_choices, infer_option, user_overrides

ROOT = config_dir()


def test_inferred_from_target_and_values():
    fasta = {"data": {"_target_": "seqdiff_recipes.dna.FastaData", "fasta": None, "seq_len": 32, "seed": 0}}
    assert infer_option(fasta, ROOT, "data") == "fasta"  # an import's partial section
    hg38 = {"data": {"_target_": "seqdiff_recipes.dna.FastaData", "fasta": "data/hg38/hg38.ml.fa",
                     "bed": "data/hg38/human-sequences.bed", "ns": "ignore", "max_n_fraction": 1.0}}
    assert infer_option(hg38, ROOT, "data") == "hg38"  # inherits fasta.yaml's _target_ through its defaults
    ar = {"sampler": {"_target_": "seqdiff.samplers.AutoregressiveSampler", "temperature": 1.0, "top_p": 1.0}}
    assert infer_option(ar, ROOT, "sampler") == "autoregressive"
    assert infer_option({"data": {"_target_": "mypackage.Data"}}, ROOT, "data") is None


def test_recorded_choices_win_unless_the_option_is_gone():
    cfg = {"data": {"_target_": "seqdiff_recipes.dna.FastaData", "fasta": None},
           "choices": {"data": "hg38", "sampler": "no_such_sampler"},
           "sampler": {"_target_": "seqdiff.samplers.AutoregressiveSampler"}}
    got = checkpoint_choices(cfg, ROOT)
    assert got["data"] == "hg38" and got["sampler"] == "autoregressive"


def test_base_overrides_leave_named_groups_to_the_user(tmp_path):
    import seqdiff
    from seqdiff.io.checkpoint import save_checkpoint
    from support.runs import tiny_config

    cfg = tiny_config()
    exp = seqdiff.build_run(cfg)
    cfg["choices"] = {"data": "markov", "sampler": "ancestral", "process": "mdlm", "process/schedule": "cosine",
                      "experiment": "quickstart", "trainer": "default"}
    save_checkpoint(tmp_path / "run" / "checkpoints", 1, model=exp.model, config=cfg, vocab=exp.vocab)
    ck = f"checkpoint={tmp_path / 'run'}"
    got = base_overrides([ck, "sampler=eags", "process=mdlm_discrete"], ROOT)
    # the user's groups (and process/schedule inside process=...) are theirs; experiment is never a base
    groups = {o.split("=")[0] for o in got}
    assert {"data=markov", "trainer=default"} <= set(got)
    assert not groups & {"sampler", "process", "process/schedule", "experiment"}
    assert {"domain", "backbone"} <= groups  # not recorded here: inferred from their _target_
    assert "process/schedule=cosine" in base_overrides([ck], ROOT)
    assert base_overrides(["checkpoint=" + str(tmp_path / "nope")], ROOT) == []  # the command reports it


def test_user_overrides_are_those_after_command():
    got = user_overrides(["data=fasta", "command=eval", "data=markov", "data.seq_len=32", "~data.bed", "+process.x=1"],
                         ["data", "sampler", "process", "process/schedule"])
    assert [(o.key, o.group, o.option, o.delete) for o in got] == [
        ("data", True, "markov", False), ("data.seq_len", False, None, False), ("data.bed", False, None, True),
        ("process.x", False, None, False)]
