"""Bad inputs to ``seqdiff import`` / ``export`` / ``train init_from=`` / ``eval eval.protocol=``,
through the real CLI: exit status 2, one ``error:`` line naming the file / key and the shapes,
nothing left behind (the harness of ``test_cli_bad_inputs.py``: a warm forked ``python -m seqdiff``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch

from support.interop_layouts import MDLM_TINY, caduceus_config, caduceus_state, mdlm_state, write_hf
from support.cli_harness import ROOT, TINY, Case, WarmCLI, check_one_line, tree
from support.textfiles import write_tiny_gpt2

CASES: dict[str, Callable[[dict, Path], Case]] = {}
TINY_NB = [a for a in TINY if not a.startswith("backbone.")]  # init_from takes the backbone from its run


def case(fn):
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("interop_bad")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEQDIFF_CACHE_DIR": str(base / "cache"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
    env.pop("HYDRA_FULL_ERROR", None)
    tok = write_tiny_gpt2(base / "gpt2")
    caduceus_dir = write_hf(base / "hf_ps", caduceus_config(True), caduceus_state(caduceus_config(True)))
    mdlm_hf = write_hf(base / "hf_mdlm", MDLM_TINY, mdlm_state())
    write_tiny_gpt2(mdlm_hf)
    dna_run, dna_import, mdlm_import = base / "dna_run", base / "dna_import", base / "mdlm_import"
    for argv in (["train", f"run_dir={dna_run}", *TINY, "data.train_tokens=4096", "data.valid_tokens=512",
                  "data.test_tokens=512", "data.record_length=256"],
                 ["import", f"hf_dir={caduceus_dir}", f"out={dna_import}"],
                 ["import", f"hf_dir={mdlm_hf}", f"out={mdlm_import}"]):
        r = subprocess.run([sys.executable, "-m", "seqdiff", *argv], capture_output=True, text=True, timeout=300, env=env, cwd=base)
        assert r.returncode == 0, r.stderr[-3000:]
    warm = WarmCLI(env)
    yield {"base": base, "tok": tok, "dna_run": dna_run, "dna_import": dna_import, "mdlm_import": mdlm_import, "warm": warm}
    warm.close()


def mdlm_dir(d: Path, world: dict, cfg: dict = MDLM_TINY, state: dict | None = None, tokenizer: bool = True) -> Path:
    out = write_hf(d / "hf", cfg, mdlm_state(cfg) if state is None else state)
    if tokenizer:
        write_tiny_gpt2(out)
    return out


def imp(hf: Path, d: Path, *extra: str) -> list[str]:
    return ["import", f"hf_dir={hf}", f"out={d / 'run'}", *extra]


# ------------------------------------------------------------------------------ import
@case
def case_import_unknown_model_type(world, d):
    hf = mdlm_dir(d, world, {**MDLM_TINY, "model_type": "bert"})
    return Case(imp(hf, d), r"config\.json: model_type 'bert' is not importable \(known: caduceus, mdlm\)", [hf], d / "run")


@case
def case_import_no_config(world, d):
    (d / "hf").mkdir()
    return Case(imp(d / "hf", d), r"config\.json: missing", [d / "hf"], d / "run")


@case
def case_import_config_not_json(world, d):
    hf = mdlm_dir(d, world)
    (hf / "config.json").write_text("{not json")
    return Case(imp(hf, d), r"config\.json: not readable as JSON", [hf / "config.json"], d / "run")


@case
def case_import_no_weights(world, d):
    hf = mdlm_dir(d, world)
    (hf / "model.safetensors").unlink()
    return Case(imp(hf, d), r"no model\.safetensors \(or model\.safetensors\.index\.json, pytorch_model\.bin\)", [hf], d / "run")


@case
def case_import_corrupt_safetensors(world, d):
    hf = mdlm_dir(d, world)
    (hf / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage!")
    return Case(imp(hf, d), r"model\.safetensors: not a readable safetensors file", [hf / "model.safetensors"], d / "run")


@case
def case_import_pickle_with_code_refused(world, d):
    hf = mdlm_dir(d, world)
    (hf / "model.safetensors").unlink()
    torch.save({**mdlm_state(), "hook": print}, hf / "pytorch_model.bin")  # a global that weights_only refuses
    return Case(imp(hf, d), r"pytorch_model\.bin: refused: torch\.load\(weights_only=True\) cannot read it safely.*"
                r"convert it where you trust it.*save_file", [hf / "pytorch_model.bin"], d / "run")


@case
def case_import_missing_tensor(world, d):
    st = mdlm_state()
    del st["backbone.blocks.1.mlp.0.bias"]
    hf = mdlm_dir(d, world, state=st)
    return Case(imp(hf, d), r"missing tensor 'backbone\.blocks\.1\.mlp\.0\.bias' \(expected shape \[128\]",
                [hf / "model.safetensors"], d / "run")


@case
def case_import_misshaped_tensor(world, d):
    cfg = caduceus_config(True)
    st = caduceus_state(cfg)
    key = "caduceus.backbone.layers.1.mixer.submodule.mamba_fwd.A_log"
    st[key] = torch.zeros(24, 8)
    hf = write_hf(d / "hf", cfg, st)
    return Case(imp(hf, d), rf"tensor '{key}' has shape \[24, 8\], expected \[24, 16\] from config\.json d_model and ssm_cfg",
                [hf / "model.safetensors"], d / "run")


@case
def case_import_unexpected_tensor(world, d):
    hf = mdlm_dir(d, world, state={**mdlm_state(), "backbone.extra_head.weight": torch.zeros(3, 32)})
    return Case(imp(hf, d), r"unexpected tensor 'backbone\.extra_head\.weight' \[3, 32\]: not part of the mdlm layout",
                [hf / "model.safetensors"], d / "run")


@case
def case_import_config_disagrees_with_tensors(world, d):
    hf = mdlm_dir(d, world, {**MDLM_TINY, "hidden_dim": 48}, state=mdlm_state())
    return Case(imp(hf, d), r"'backbone\.vocab_embed\.embedding' has shape \[263, 32\], expected \[263, 48\] from "
                r"config\.json vocab_size, hidden_dim", [hf], d / "run")


@case
def case_import_time_conditioned_mdlm(world, d):
    hf = mdlm_dir(d, world, {**MDLM_TINY, "time_conditioning": True})
    return Case(imp(hf, d), r"time_conditioning=true is not importable exactly", [hf / "config.json"], d / "run")


@case
def case_import_mdlm_without_tokenizer(world, d):
    hf = mdlm_dir(d, world, tokenizer=False)
    return Case(imp(hf, d), r"no GPT-2 tokenizer files next to the weights .* give tokenizer=DIR", [hf], d / "run")


@case
def case_import_mdlm_with_the_wrong_tokenizer(world, d):
    hf = mdlm_dir(d, world, tokenizer=False)
    other = write_tiny_gpt2(d / "tok")
    vocab = json.loads((other / "vocab.json").read_text())
    vocab["Ġquick"] = len(vocab)  # one id more than the checkpoint was trained with
    (other / "vocab.json").write_text(json.dumps(vocab))
    return Case(imp(hf, d, f"tokenizer={other}"), r"the checkpoint has 263 token rows .* the tokenizer gives 265 ids",
                [hf / "config.json"], d / "run")


@case
def case_import_caduceus_tokenizer_with_other_ids(world, d):
    cfg = caduceus_config(False)
    bad = {"tokenizer_class": "CaduceusTokenizer", "added_tokens_decoder": {"3": {"content": "[PAD]"}}}
    hf = write_hf(d / "hf", cfg, caduceus_state(cfg), extra={"tokenizer_config.json": bad})
    return Case(imp(hf, d), r"tokenizer_config\.json: added_tokens_decoder gives id 3 to '\[PAD\]'", [hf], d / "run")


@case
def case_import_caduceus_complement_disagrees(world, d):
    cfg = caduceus_config(True)
    cfg["complement_map"]["8"] = 8
    hf = write_hf(d / "hf", cfg, caduceus_state(caduceus_config(True)))
    return Case(imp(hf, d), r"config\.json: complement_map maps id 8 to 8", [hf / "config.json"], d / "run")


@case
def case_import_into_a_non_empty_directory(world, d):
    hf = mdlm_dir(d, world)
    (d / "run").mkdir()
    (d / "run" / "keep.txt").write_text("mine")
    return Case(imp(hf, d), r"out=.*run: exists and is not empty", [d / "run"])


@case
def case_import_without_out(world, d):
    hf = mdlm_dir(d, world)
    return Case(["import", f"hf_dir={hf}"], r"import: give out=\.\.\.; usage: seqdiff import hf_dir=PATH out=DIR")


@case
def case_import_bad_override(world, d):
    hf = write_hf(d / "hf", caduceus_config(True), caduceus_state(caduceus_config(True)))
    return Case(imp(hf, d, "data.no_such_key=1"), r"data\.no_such_key: no such key", [], d / "run")


# ------------------------------------------------------------------------------ export
@case
def case_export_dna_dit_to_mdlm(world, d):
    return Case(["export", f"checkpoint={world['dna_run']}", f"out={d / 'hf'}"],
                r"MDLM's layout is a GPT-2 text model .* this run's domain is dna", [world["dna_run"]], d / "hf")


@case
def case_export_not_a_run(world, d):
    return Case(["export", f"checkpoint={d / 'nothing'}", f"out={d / 'hf'}"], r"nothing: no such checkpoint or run directory",
                [d / "nothing"], d / "hf")


# ------------------------------------------------------------------------------ init_from
@case
def case_init_from_missing_run(world, d):
    return Case(["train", f"run_dir={d / 'r'}", f"init_from={d / 'gone'}", *TINY_NB], r"gone: no such checkpoint or run directory",
                [d / "gone"], d / "r")


@case
def case_init_from_other_vocabulary(world, d):
    return Case(["train", f"run_dir={d / 'r'}", f"init_from={world['dna_import']}", "domain.bos=true", *TINY_NB],
                r"init_from=.*dna_import: its vocabulary differs from this run's \(size 7 vs expected 8\)",
                [world["dna_import"]], d / "r")


@case
def case_init_from_with_a_backbone_choice(world, d):
    return Case(["train", f"run_dir={d / 'r'}", f"init_from={world['dna_import']}", "backbone=bimamba", *TINY_NB],
                r"the backbone comes from that run; drop backbone=", [world["dna_import"]], d / "r")


@case
def case_init_from_with_a_key_its_backbone_lacks(world, d):
    return Case(["train", f"run_dir={d / 'r'}", f"init_from={world['dna_import']}", *TINY],
                r"backbone\.n_heads: .*dna_import.*CaduceusPS\) has no key 'n_heads'", [world["dna_import"]], d / "r")


# ------------------------------------------------------------------------------ eval.protocol
@case
def case_protocol_unknown(world, d):
    return Case(["eval", f"checkpoint={world['dna_run']}", "eval.protocol=gpt2_zero_shot"],
                r"eval\.protocol='gpt2_zero_shot': unknown; choose one of mdlm_zero_shot")


@case
def case_protocol_without_a_text_file(world, d):
    return Case(["eval", f"checkpoint={world['dna_run']}", "eval.protocol=mdlm_zero_shot"],
                r"eval\.protocol=mdlm_zero_shot scores one text file: give data=text data\.corpus\.path=FILE")


@case
def case_protocol_file_missing(world, d):
    f = d / "wiki.test.raw"
    return Case(["eval", f"checkpoint={world['mdlm_import']}", "data=text", f"data.corpus.path={f}", "eval.protocol=mdlm_zero_shot"],
                r"wiki\.test\.raw: no such file", [f])


@case
def case_protocol_at_train_time(world, d):
    return Case(["train", f"run_dir={d / 'r'}", "eval.protocol=mdlm_zero_shot", *TINY],
                r"eval\.protocol scores a finished run on another file: seqdiff eval checkpoint=RUN", [], d / "r")


@case
def case_protocol_dataset_not_guessable(world, d):
    f = d / "mystery.txt"
    f.write_text("some text\n")
    return Case(["eval", f"checkpoint={world['mdlm_import']}", "data=text", f"data.corpus.path={f}", "eval.protocol=mdlm_zero_shot"],
                r"cannot tell which of MDLM's datasets 'mystery\.txt' is; give eval\.protocol_dataset=")


@pytest.mark.parametrize("name", list(CASES))
def test_interop_bad_input_is_one_clear_line(world, tmp_path, name):
    c = CASES[name](world, tmp_path)
    before = tree(tmp_path)
    r = world["warm"].run(c.argv, tmp_path)
    check_one_line(r, c, name)
    if c.run_dir is not None:
        assert not c.run_dir.exists(), f"{name}: left {c.run_dir} behind"
    after = tree(tmp_path)
    assert set(after) == set(before), f"{name}: new files {sorted(set(after) - set(before))}"
    assert all(after[k] == before[k] for k in before), f"{name}: files changed"


def test_debug_shows_the_traceback(world, tmp_path):
    c = case_import_unknown_model_type(world, tmp_path)
    r = world["warm"].run([*c.argv, "--debug"], tmp_path)
    assert r.returncode == 2 and "Traceback (most recent call last)" in r.stderr and "not importable" in r.stderr
