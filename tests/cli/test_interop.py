"""``seqdiff import`` / ``export`` / ``train init_from=`` end to end, on public layouts built here.

A tiny MDLM-OWT-layout directory (with a tiny GPT-2 tokenizer, ``tests/support/textfiles.py``) and
tiny Caduceus-PS/PH directories are imported through the real CLI; the runs they become are
sampled, evaluated under MDLM's zero-shot protocol, exported and re-imported bit for bit, and
fine-tuned with ``init_from`` (fresh and resumed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import seqdiff
from support.interop_layouts import (MDLM_TINY, caduceus_config, caduceus_reference, caduceus_state, mdlm_reference,
                             mdlm_state, write_hf)
from seqdiff.backbones.caduceus import reverse_complement
from seqdiff.cli.main import main
from seqdiff.interop.runs import state_equal
from support.textfiles import make_text, write_tiny_gpt2

V = MDLM_TINY["vocab_size"]
FAST = ["trainer.progress=false", "trainer.tensorboard=false", "trainer.eval_every=0", "trainer.log_every=1",
        "eval.max_sequences=4", "eval.num_samples=0", "eval.draws=1"]
DNA_TINY = ["data.seq_len=32", "data.train_tokens=4096", "data.valid_tokens=512", "data.test_tokens=512",
            "data.record_length=256", "trainer.batch_size=4", *FAST]


def weights(run: Path, name: str = "model") -> dict[str, torch.Tensor]:
    ck = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    return load_file(str(ck / f"{name}.safetensors"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("interop")
    mdlm_dir = write_hf(base / "hf_mdlm", MDLM_TINY, mdlm_state())
    write_tiny_gpt2(mdlm_dir)
    ps_cfg, ph_cfg = caduceus_config(True), caduceus_config(False)
    write_hf(base / "hf_ps", ps_cfg, caduceus_state(ps_cfg, seed=1))
    write_hf(base / "hf_ph", ph_cfg, caduceus_state(ph_cfg, seed=2))
    for name in ("mdlm", "ps", "ph"):
        assert main(["import", f"hf_dir={base / ('hf_' + name)}", f"out={base / ('run_' + name)}"]) == 0
    return base


def test_imported_mdlm_run_computes_mdlms_logits_and_carries_its_tokenizer(world):
    run = world / "run_mdlm"
    ck = run / "checkpoints" / "step-00000000"
    assert (ck / "artifacts" / "tokenizer.json").is_file()
    info = json.loads((ck / "config.json").read_text())
    assert info["meta"]["imported_from"]["model_type"] == "mdlm" and info["config"]["data"]["seq_len"] == 64
    moved = world / "moved_run"
    shutil.copytree(run, moved)
    hf_copy = world / "hf_mdlm_gone"
    shutil.move(str(world / "hf_mdlm"), hf_copy)  # the tokenizer files it was imported with are gone
    try:
        exp = seqdiff.load(moved)
    finally:
        shutil.move(str(hf_copy), world / "hf_mdlm")
    assert exp.vocab.size == V + 1 and exp.vocab.mask_id == V - 1 and exp.vocab.pad_id == V
    assert exp.domain.encode("the quick") == exp.domain.tokenizer.encode("the quick")
    x = torch.randint(0, V, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = exp.model(x)[..., :V]
    torch.testing.assert_close(ours, mdlm_reference(mdlm_state(), MDLM_TINY, x), rtol=1e-4, atol=1e-4)


def test_sample_and_zero_shot_eval_of_the_imported_mdlm_run(world, capsys):
    run = world / "run_mdlm"
    assert main(["sample", f"checkpoint={run}", "num_samples=2", "length=24", "sampler.num_steps=8"]) == 0
    assert capsys.readouterr().out.count(">sample_") == 2
    wiki = world / "wiki.valid.raw"
    wiki.write_text(" \n = Title = \n \n" + "".join(f" {l} \n" for l in make_text(120).splitlines()))
    assert main(["eval", f"checkpoint={run}", "data=text", f"data.corpus.path={wiki}", "eval.protocol=mdlm_zero_shot",
                 "eval.draws=1", "eval.max_sequences=6", "eval.batch_size=3"]) == 0
    out = capsys.readouterr().out
    assert "likelihood only" in out and "MDLM zero-shot (wikitext)" in out
    report = json.loads((run / "eval.json").read_text())
    assert report["reference"]["protocol"] == {"name": "mdlm_zero_shot", "dataset": "wikitext", "seq_len": 64,
                                               "group_documents": 1000, "path": str(wiki)}
    assert report["likelihood"]["num_sequences"] == 6 and report["likelihood"]["num_tokens"] == 6 * 64
    assert "samples" not in report


def test_tokenizer_argument_when_the_directory_has_none(world, tmp_path):
    bare = write_hf(tmp_path / "bare", MDLM_TINY, mdlm_state())
    assert main(["import", f"hf_dir={bare}", f"out={tmp_path / 'r'}", f"tokenizer={world / 'hf_mdlm'}"]) == 0
    assert state_equal(weights(tmp_path / "r"), weights(world / "run_mdlm")) == []


def test_imported_caduceus_ps_run_is_rc_equivariant_and_matches_the_reference(world, capsys):
    exp = seqdiff.load(world / "run_ps")
    comp = exp.vocab.complement_tensor()
    x = torch.randint(0, 5, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = exp.model(x), exp.model(reverse_complement(x, comp))
    assert torch.equal(b, a.flip(1)[..., comp])
    rows = [7, 8, 9, 10, 11, 3, 4]
    ref = caduceus_reference(caduceus_state(caduceus_config(True), seed=1), caduceus_config(True), torch.tensor(rows)[x])
    torch.testing.assert_close(a.double(), ref[..., rows], rtol=1e-4, atol=1e-4)
    assert main(["sample", f"checkpoint={world / 'run_ps'}", "num_samples=2", "length=16", "sampler.num_steps=8"]) == 0
    seqs = [l for l in capsys.readouterr().out.splitlines() if l and not l.startswith(">")]
    assert len(seqs) == 2 and all(set(s) <= set("ACGTN") and len(s) == 16 for s in seqs)


@pytest.mark.parametrize("name", ["mdlm", "ps", "ph"])
def test_import_export_import_is_bitwise(world, name):
    hf2, run2 = world / f"export_{name}", world / f"reimport_{name}"
    assert main(["export", f"checkpoint={world / ('run_' + name)}", f"out={hf2}"]) == 0
    assert (hf2 / "config.json").is_file() and (hf2 / "model.safetensors").is_file()
    assert (hf2 / ("tokenizer.json" if name == "mdlm" else "tokenizer_config.json")).is_file()
    assert main(["import", f"hf_dir={hf2}", f"out={run2}"]) == 0
    assert state_equal(weights(run2), weights(world / f"run_{name}")) == []


def _train(run: Path, *args: str) -> None:
    assert main(["train", f"run_dir={run}", *args]) == 0


def test_seqdiff_runs_export_and_reimport_bit_for_bit(world, tmp_path):
    """seqdiff's own DiT (GPT-2 text) and Caduceus-PS (DNA) runs, through export -> import."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(200))
    text_run = tmp_path / "text_run"
    _train(text_run, "experiment=text_owt", f"domain.path={world / 'hf_mdlm'}", f"data.corpus.path={corpus}",
           "backbone=dit", "backbone.d_model=16", "backbone.n_layers=1", "backbone.n_heads=2", "data.seq_len=32",
           "data.corpus.document=line", "data.corpus.split_fractions=[0.8,0.1,0.1]", "trainer=default", "trainer.steps=2", "trainer.batch_size=4", *FAST)
    dna_run = tmp_path / "dna_run"
    _train(dna_run, "backbone=caduceus_ps", "backbone.d_model=8", "backbone.n_layers=1", "trainer.steps=2", *DNA_TINY)
    for run in (text_run, dna_run):
        hf, back = tmp_path / (run.name + "_hf"), tmp_path / (run.name + "_back")
        assert main(["export", f"checkpoint={run}", f"out={hf}"]) == 0
        assert main(["import", f"hf_dir={hf}", f"out={back}"]) == 0
        ema = weights(run, "ema")
        got = weights(back)
        assert state_equal({k: got[k] for k in ema}, ema) == [], run.name  # the exported (EMA) weights, bitwise
        src, dst = seqdiff.load(run), seqdiff.load(back)
        x = torch.randint(0, 5, (2, 16), generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            assert torch.equal(src.model(x), dst.model(x))


def test_init_from_an_import_loads_its_weights_into_a_fresh_run(world, tmp_path, capsys):
    run = tmp_path / "ft"
    _train(run, f"init_from={world / 'run_ph'}", "trainer.steps=0", *DNA_TINY)
    assert "init_from:" in capsys.readouterr().out
    assert state_equal(weights(run), weights(world / "run_ph")) == []
    assert state_equal(weights(run, "ema"), weights(world / "run_ph")) == []  # the EMA starts at them too
    cfg = json.loads((run / "checkpoints" / "step-00000000" / "config.json").read_text())["config"]
    assert cfg["backbone"] == json.loads((world / "run_ph" / "checkpoints" / "step-00000000" / "config.json")
                                         .read_text())["config"]["backbone"]
    assert cfg["init_from"]["run"].endswith("run_ph/checkpoints/step-00000000")


def test_init_from_ema_chooses_the_source_weights(tmp_path):
    src = tmp_path / "src"
    _train(src, "backbone.d_model=16", "backbone.n_layers=1", "backbone.n_heads=2", "trainer.steps=3",
           "trainer.ema=0.5", *DNA_TINY)
    assert state_equal(weights(src), weights(src, "ema")) != []  # the two differ, so the choice is visible
    for flag, which in (("true", "ema"), ("false", "model")):
        run = tmp_path / f"ft_{flag}"
        _train(run, f"init_from={src}", f"init_from_ema={flag}", "trainer.steps=0", *DNA_TINY)
        assert state_equal(weights(run), weights(src, which)) == [], flag


def test_resume_does_not_reapply_init_from(world, tmp_path, capsys):
    """2 steps, then resumed to 4, equals 4 uninterrupted steps, bitwise (constant LR, same batches)."""
    common = [f"init_from={world / 'run_ph'}", "trainer.lr_decay=constant", "trainer.warmup=1", "trainer.ckpt_every=2",
              "trainer.keep_last=5", *DNA_TINY]
    a, b = tmp_path / "a", tmp_path / "b"
    _train(a, "trainer.steps=2", *common)
    _train(a, "trainer.steps=4", *common)
    out = capsys.readouterr().out
    assert "init_from: not applied, resuming" in out and "resumed from step 2" in out
    _train(b, "trainer.steps=4", *common)
    assert state_equal(weights(a), weights(b)) == []
    assert state_equal(weights(a), weights(world / "run_ph")) != []  # and training did move the weights


def test_legacy_bin_and_sharded_safetensors_read_the_same_tensors(world, tmp_path):
    """pytorch_model.bin through torch.load(weights_only=True); shards through the index."""
    from safetensors.torch import save_file

    cfg = caduceus_config(True)
    st = caduceus_state(cfg, seed=1)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "config.json").write_text(json.dumps(cfg))
    torch.save(st, legacy / "pytorch_model.bin")
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "config.json").write_text(json.dumps(cfg))
    keys = sorted(st)
    halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in halves.items():
        save_file({k: st[k].contiguous() for k in part}, str(sharded / name))
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {k: n for n, p in halves.items() for k in p}}))
    for d in (legacy, sharded):
        assert main(["import", f"hf_dir={d}", f"out={tmp_path / (d.name + '_run')}"]) == 0
        assert state_equal(weights(tmp_path / (d.name + "_run")), weights(world / "run_ps")) == [], d.name
