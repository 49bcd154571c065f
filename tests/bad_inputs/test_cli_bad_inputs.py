"""A corpus of bad inputs, each fed to the real CLI (``python -m seqdiff ...``) in a subprocess.

Every case builds its broken input in its own tmp directory (nothing is committed) and
asserts what a user sees:

* a non-zero exit status (2: an error that is the user's to fix);
* exactly one line on stderr, ``error: ...``, without a traceback, naming the offending
  file (and line/record where that means something) and what was expected;
* with ``--debug`` (checked on one case per kind of input) the traceback is shown;
* nothing half-written is left behind: no new run directory (Hydra creates one before
  the config is validated; the CLI removes it again), no ``out=`` file, no new file in the
  case directory except a FASTA's ``.fai`` index, no new checkpoint in a run that failed
  to resume.

Speed: an interpreter start costs ~2 s (mostly importing torch), so each case runs in a
child forked from a warm ``python -m seqdiff`` (``forkrun.py``: the same ``runpy`` entry
point, its own cwd, environment and captured streams); the cases marked ``debug`` also run
through a fresh ``python -m seqdiff`` (plain, and with ``--debug`` in the warm one). The
checkpoint cases share one tiny run trained once per module.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from support.cli_harness import MARKOV, ROOT, TEXT, TINY, Case, WarmCLI, check_one_line, tree
from support.genome import random_dna, write_bed, write_bgzf, write_fasta


CASES: dict[str, Callable[["World", Path], Case]] = {}


def case(debug: bool = False):
    def register(fn):
        name = fn.__name__.removeprefix("case_")
        CASES[name] = fn
        fn.debug = debug
        return fn

    return register


@dataclass
class World:
    base: Path
    run: Path  # a finished tiny DNA (Markov) run
    genome: Path
    bed: Path
    corpus: Path
    env: dict
    warm: WarmCLI


def fresh_cli(world: World, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqdiff", *argv], capture_output=True, text=True, timeout=180,
                          env=world.env, cwd=cwd)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad_inputs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEQDIFF_CACHE_DIR": str(base / "cache"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
    env.pop("HYDRA_FULL_ERROR", None)
    run = base / "run"
    r = subprocess.run([sys.executable, "-m", "seqdiff", "train", f"run_dir={run}", *TINY, *MARKOV],
                       capture_output=True, text=True, timeout=300, env=env, cwd=base)
    assert r.returncode == 0, r.stderr[-3000:]
    genome = write_fasta(base / "genome.fa", {"chr1": 3000, "chr2": 2000}, seed=1)
    bed = write_bed(base / "regions.bed", [("chr1", 0, 1500, "train"), ("chr1", 1500, 3000, "valid"), ("chr2", 0, 2000, "test")])
    corpus = base / "corpus.txt"
    corpus.write_text("".join(f"The quick brown fox {i} jumps over the lazy dog.\n" for i in range(200)))
    warm = WarmCLI(env)
    yield World(base, run, genome, bed, corpus, env, warm)
    warm.close()


def copy_run(world: World, d: Path) -> Path:
    dst = d / "run"
    shutil.copytree(world.run, dst)
    return dst


def ckpt_of(run: Path) -> Path:
    return run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()


# ------------------------------------------------------------------------------ FASTA
def fasta_train(world: World, d: Path, fasta: Path | str, *extra: str) -> list[str]:
    return ["train", "experiment=dna_fasta", f"data.fasta={fasta}", f"run_dir={d / 'r'}", *TINY, *extra]


@case(debug=True)
def case_fasta_empty_file(world, d):
    fa = d / "empty.fa"
    fa.write_bytes(b"")
    return Case(fasta_train(world, d, fa), r"empty\.fa: empty file", [fa], d / "r")


@case()
def case_fasta_no_header(world, d):
    fa = d / "nohead.fa"
    fa.write_bytes(b"ACGTACGTAC\nACGTAC\n")
    return Case(fasta_train(world, d, fa), r"line 1: expected a FASTA header starting with '>'", [fa], d / "r")


@case()
def case_fasta_header_only(world, d):
    fa = d / "head.fa"
    fa.write_bytes(b">chr1 nothing follows\n")
    return Case(fasta_train(world, d, fa), r"record 'chr1' \(header at line 1\) has no sequence", [fa], d / "r")


@case()
def case_fasta_bad_character(world, d):
    seq = bytearray(random_dna(300, softmask=0))
    seq[130] = ord("X")  # chr2 starts at line 11; base 130 is line 14, column 11
    fa = write_fasta(d / "bad.fa", {"chr1": 500, "chr2": bytes(seq)})
    return Case(fasta_train(world, d, fa), r"record 'chr2', line 14, column 11: .*'X' is not a DNA base", [fa], d / "r")


@case()
def case_fasta_iupac_code(world, d):
    seq = bytearray(random_dna(300, softmask=0))
    seq[5] = ord("R")
    fa = write_fasta(d / "iupac.fa", {"chr1": bytes(seq)})
    return Case(fasta_train(world, d, fa), r"record 'chr1', line 2, column 6: .*'R' is an IUPAC ambiguity code.*iupac", [fa], d / "r")


@case()
def case_fasta_duplicate_names(world, d):
    fa = write_fasta(d / "dup.fa", {"chr1": 300, "chr2": 300})
    fa.write_bytes(fa.read_bytes() + b">chr1 again\nACGTACGT\n")
    return Case(fasta_train(world, d, fa), r"duplicate record name 'chr1' \(headers at lines 1 and 13\)", [fa], d / "r")


@case()
def case_fasta_non_ascii(world, d):
    fa = d / "bin.fa"
    fa.write_bytes(b">chr1\n" + random_dna(200, softmask=0) + b"\nAC\x94T\n")
    return Case(fasta_train(world, d, fa), r"line 3, column 3: non-ASCII byte 0x94", [fa], d / "r")


@case(debug=True)
def case_fasta_truncated_bgzip(world, d):
    gz = write_bgzf(d / "g.fa.gz", {"chr1": 50_000, "chr2": 30_000})
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2])
    return Case(fasta_train(world, d, gz), r"truncated BGZF file", [gz], d / "r")


@case()
def case_fasta_gzip_not_bgzip(world, d):
    gz = d / "plain.fa.gz"
    gz.write_bytes(gzip.compress(world.genome.read_bytes()))
    return Case(fasta_train(world, d, gz), r"gzip-compressed but not BGZF.*bgzip", [gz], d / "r")


@case()
def case_fasta_missing_file(world, d):
    fa = d / "nope.fa"
    return Case(fasta_train(world, d, fa), r"nope\.fa: FASTA file not found", [fa], d / "r")


@case()
def case_fasta_path_not_given(world, d):
    return Case(["train", "experiment=dna_fasta", f"run_dir={d / 'r'}", *TINY], r"data\.fasta: give the genome", [], d / "r")


@case()
def case_fasta_window_longer_than_records(world, d):
    fa = write_fasta(d / "short.fa", {"chr1": 40, "chr2": 30})
    return Case(fasta_train(world, d, fa, "data.seq_len=64"), r"short\.fa.*(longer|shorter)", [fa], d / "r")


# ------------------------------------------------------------------------------ BED
def bed_case(world, d, text: str, expect: str) -> Case:
    bed = d / "regions.bed"
    bed.write_text(text)
    return Case(fasta_train(world, d, world.genome, f"data.bed={bed}"), expect, [bed], d / "r")


@case(debug=True)
def case_bed_too_few_columns(world, d):
    return bed_case(world, d, "chr1\t0\t1000\ttrain\nchr1\t1000\n", r"line 2: expected at least 3 tab-separated columns")


@case()
def case_bed_start_after_end(world, d):
    return bed_case(world, d, "chr1\t0\t1000\ttrain\nchr1\t2000\t1500\tvalid\nchr2\t0\t900\ttest\n",
                    r"line 2: start 2000 > end 1500")


@case()
def case_bed_not_integer(world, d):
    return bed_case(world, d, "chr1\t0\t1000\ttrain\nchr1\t1k\t2000\tvalid\n", r"line 2: start and end must be integers")


@case()
def case_bed_unknown_chromosome(world, d):
    return bed_case(world, d, "chr1\t0\t1000\ttrain\nchr7\t0\t100\tvalid\n",
                    r"line 2: chromosome 'chr7' is not in .*genome\.fa \(records: chr1, chr2\)")


@case()
def case_bed_past_chromosome_end(world, d):
    return bed_case(world, d, "chr1\t0\t1000\ttrain\nchr2\t1500\t2500\tvalid\n",
                    r"line 2: chr2:1500-2500 runs past the end of chr2 \(length 2,000")


@case()
def case_bed_bad_split_label(world, d):
    return bed_case(world, d, "chr1\t0\t1000\ttrain\nchr1\t1000\t2000\ttraining\n",
                    r"line 2: unknown split label 'training' in column 4")


@case()
def case_bed_missing_file(world, d):
    bed = d / "nope.bed"
    return Case(fasta_train(world, d, world.genome, f"data.bed={bed}"), r"nope\.bed: .*(not found|no such)", [bed], d / "r")


# ------------------------------------------------------------------------------ records FASTA
@case()
def case_records_bad_residue(world, d):
    fa = d / "prot.fa"
    fa.write_text(">p1\nMKVLAAGIVG\n>p2\nMKVLAJG\n")
    return Case(["train", "domain=protein", "data=records", f"data.path={fa}", f"run_dir={d / 'r'}", *TINY],
                r"prot\.fa: line 4 \(record 'p2'\): character 'J' at position 5 is not in the protein alphabet", [fa], d / "r")


# ------------------------------------------------------------------------------ text
def text_train(world, d, *extra) -> list[str]:
    return ["train", *TEXT, f"run_dir={d / 'r'}", *extra]


@case(debug=True)
def case_text_empty_corpus(world, d):
    f = d / "empty.txt"
    f.write_text("  \n\n")
    return Case(text_train(world, d, f"data.corpus.path={f}"), r"empty\.txt: the corpus is empty", [f], d / "r")


@case()
def case_text_non_utf8(world, d):
    f = d / "latin1.txt"
    f.write_bytes("first line\ncafé au lait\n".encode("latin-1"))
    return Case(text_train(world, d, f"data.corpus.path={f}"),
                r"invalid UTF-8 at byte offset 14 \(line 2, byte 0xe9\).*encoding_errors=replace", [f], d / "r")


@case()
def case_text_missing_corpus(world, d):
    f = d / "missing.txt"
    return Case(text_train(world, d, f"data.corpus.path={f}"), r"no such corpus file or directory", [f], d / "r")


@case()
def case_text_empty_directory(world, d):
    c = d / "corpus"
    c.mkdir()
    return Case(text_train(world, d, f"data.corpus.path={c}"), r"no files matching '\*'", [c], d / "r")


@case()
def case_jsonl_invalid_json(world, d):
    f = d / "c.jsonl"
    f.write_text(json.dumps({"text": "fine"}) + "\n{not json}\n")
    return Case(text_train(world, d, f"data.corpus.path={f}"), r"c\.jsonl:2: not valid JSON", [f], d / "r")


@case()
def case_jsonl_missing_field(world, d):
    f = d / "c.jsonl"
    f.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"body": "no text"}) + "\n")
    return Case(text_train(world, d, f"data.corpus.path={f}"),
                r"c\.jsonl:2: no field 'text' \(found \['body'\]\); set data\.corpus\.field", [f], d / "r")


@case()
def case_jsonl_field_not_a_string(world, d):
    f = d / "c.jsonl"
    f.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": ["a", "list"]}) + "\n")
    return Case(text_train(world, d, f"data.corpus.path={f}"), r"c\.jsonl:2: field 'text' is list, expected a string", [f], d / "r")


@case()
def case_jsonl_not_an_object(world, d):
    f = d / "c.jsonl"
    f.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps(["text", "in a list"]) + "\n")
    return Case(text_train(world, d, f"data.corpus.path={f}"), r"c\.jsonl:2: a JSON list, expected a JSON object with a 'text' field", [f], d / "r")


# ------------------------------------------------------------------------------ tokenizer directories
def tok_train(world, d, domain: str, tok: Path, *extra) -> list[str]:
    return ["train", *TEXT, f"domain={domain}", f"domain.path={tok}", f"data.corpus.path={world.corpus}",
            f"run_dir={d / 'r'}", *extra]


@case(debug=True)
def case_tokenizer_gpt2_missing_files(world, d):
    tok = d / "tok"
    tok.mkdir()
    (tok / "vocab.json").write_text(json.dumps({"a": 0, "b": 1}))
    return Case(tok_train(world, d, "text_gpt2", tok), r"GPT-2 tokenizer directory lacks merges\.txt", [tok], d / "r")


@case()
def case_tokenizer_hf_missing_directory(world, d):
    tok = d / "no_such_tok"
    return Case(tok_train(world, d, "text_hf", tok), r"tokenizer directory not found", [tok], d / "r")


@case()
def case_tokenizer_hf_empty_tokenizer_json(world, d):
    tok = d / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_text("")
    (tok / "tokenizer_config.json").write_text("{}")
    return Case(tok_train(world, d, "text_hf", tok), r"tokenizer\.json: empty file, expected JSON", [tok / "tokenizer.json"], d / "r")


@case()
def case_tokenizer_saved_corrupt_tokenizer_json(world, d):
    tok = d / "tok"
    tok.mkdir()
    (tok / "text_tokenizer.json").write_text(json.dumps({"kind": "bpe", "roles": {"mask": "[MASK]", "pad": "[PAD]"}, "size": 10}))
    (tok / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE", "voc')
    return Case(tok_train(world, d, "text_bpe", tok), r"tokenizer\.json: not a readable tokenizers file", [tok / "tokenizer.json"], d / "r")


@case()
def case_tokenizer_saved_corrupt_meta(world, d):
    tok = d / "tok"
    tok.mkdir()
    (tok / "text_tokenizer.json").write_text("{ not json")
    (tok / "chars.json").write_text(json.dumps(list("abc")))
    return Case(tok_train(world, d, "text_char", tok), r"text_tokenizer\.json: not valid JSON \(.* at line 1, column 3\)",
                [tok / "text_tokenizer.json"], d / "r")


@case()
def case_tokenizer_command_bad_corpus(world, d):
    f = d / "bad.txt"
    f.write_bytes(b"fine text\n\xff\xfe oops\n")
    out = d / "tok"
    return Case(["tokenizer", "train", "--corpus", str(f), "--kind", "bpe", "--vocab-size", "300", "--out", str(out)],
                r"invalid UTF-8 at byte offset 10", [f], out=out)


# ------------------------------------------------------------------------------ configs
@case(debug=True)
def case_config_unknown_key(world, d):
    return Case(["train", f"run_dir={d / 'r'}", "trainer.stepz=3"],
                r"trainer\.stepz: no such key \(did you mean trainer\.steps\?\); trainer has: .*batch_size", [], d / "r",
                debug_expect=r"Could not override 'trainer\.stepz'")


@case()
def case_config_wrong_type(world, d):
    return Case(["train", f"run_dir={d / 'r'}", *TINY, "trainer.steps=many"],
                r"trainer\.steps: expected an integer >= 0, got 'many'", [], d / "r")


@case()
def case_config_wrong_type_backbone(world, d):
    return Case(["train", f"run_dir={d / 'r'}", *TINY, "backbone.d_model=wide"],
                r"backbone\.d_model: expected an integer >= 1, got 'wide'", [], d / "r")


@case()
def case_config_bad_value(world, d):
    return Case(["train", f"run_dir={d / 'r'}", *TINY, "trainer.precision=fp8"],
                r"trainer: precision must be auto, fp32 or bf16", [], d / "r")


@case()
def case_config_unknown_group_option(world, d):
    return Case(["train", f"run_dir={d / 'r'}", "backbone=transfomer"],
                r"backbone=transfomer: no such option in .*configs/backbone \(available: .*dit", [], d / "r")


@case()
def case_config_unknown_experiment(world, d):
    return Case(["train", f"run_dir={d / 'r'}", "experiment=quickstrat"],
                r"experiment=quickstrat: no such option in .*configs/experiment \(available: .*quickstart", [], d / "r")


@case()
def case_config_missing_required_path(world, d):
    return Case(["train", "domain=protein", "data=records", f"run_dir={d / 'r'}", *TINY],
                r"data\.path: give the FASTA", [], d / "r")


@case()
def case_config_unknown_data_key(world, d):
    return Case(["train", "experiment=dna_fasta", f"data.fasta={world.genome}", f"run_dir={d / 'r'}", "+data.fastq=x", *TINY],
                r"data: unknown key.*fastq", [], d / "r")


# ------------------------------------------------------------------------------ checkpoints
@case(debug=True)
def case_ckpt_truncated_model(world, d):
    run = copy_run(world, d)
    f = ckpt_of(run) / "model.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    out = d / "samples.fa"
    return Case(["sample", f"checkpoint={run}", "num_samples=2", f"out={out}"],
                r"model\.safetensors: 100 bytes, manifest says \d+ \(truncated", [f], out=out)


@case()
def case_ckpt_truncated_model_manifest_rewritten(world, d):
    run = copy_run(world, d)
    ck = ckpt_of(run)
    f = ck / "model.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    from seqdiff.utils.io import sha256_file

    man = json.loads((ck / "manifest.json").read_text())
    man["files"]["model.safetensors"] = {"size": 100, "sha256": sha256_file(f)}
    (ck / "manifest.json").write_text(json.dumps(man))
    out = d / "samples.fa"
    return Case(["sample", f"checkpoint={run}", "ema=false", "num_samples=2", f"out={out}"],
                r"model\.safetensors: not a valid safetensors file", [f], out=out)


@case()
def case_ckpt_missing_config_json(world, d):
    run = copy_run(world, d)
    f = ckpt_of(run) / "config.json"
    f.unlink()
    return Case(["eval", f"checkpoint={run}"], r"config\.json: missing \(listed in manifest\.json\)", [f])


@case()
def case_ckpt_corrupt_manifest(world, d):
    run = copy_run(world, d)
    f = ckpt_of(run) / "manifest.json"
    f.write_text('{"format_version": 1, "files": {')
    return Case(["eval", f"checkpoint={run}"], r"manifest\.json: unreadable manifest", [f])


@case()
def case_ckpt_flipped_byte(world, d):
    run = copy_run(world, d)
    f = ckpt_of(run) / "ema.safetensors"
    b = bytearray(f.read_bytes())
    b[-1] ^= 0xFF
    f.write_bytes(bytes(b))
    return Case(["eval", f"checkpoint={run}"], r"ema\.safetensors: SHA-256 does not match the manifest", [f])


@case()
def case_ckpt_latest_points_nowhere(world, d):
    run = copy_run(world, d)
    latest = run / "checkpoints" / "latest"
    latest.write_text("step-00000999\n")
    return Case(["sample", f"checkpoint={run}"], r"latest: points at step-00000999, which does not exist", [latest])


@case()
def case_ckpt_not_a_checkpoint(world, d):
    p = d / "somewhere"
    p.mkdir()
    (p / "notes.txt").write_text("hello")
    return Case(["eval", f"checkpoint={p}"], r"no checkpoint found \(expected manifest\.json", [p])


@case()
def case_ckpt_backbone_override_at_sample(world, d):
    out = d / "s.fa"
    return Case(["sample", f"checkpoint={world.run}", "backbone.d_model=32", f"out={out}"],
                r"cannot override 'backbone\.d_model=32': the checkpoint fixes the backbone", [], out=out)


@case()
def case_resume_with_another_backbone(world, d):
    run = copy_run(world, d)
    ck = ckpt_of(run)
    return Case(["train", f"run_dir={run}", *TINY, *MARKOV, "trainer.steps=4", "backbone.d_model=32"],
                r"config\.json: cannot resume, 'backbone' config differs", [ck / "config.json"])


@case()
def case_resume_with_another_vocabulary(world, d):
    run = copy_run(world, d)
    ck = ckpt_of(run)
    return Case(["train", f"run_dir={run}", *TINY, *MARKOV, "trainer.steps=4", "domain.bos=true"],
                r"config\.json: vocabulary differs from the config", [ck / "config.json"])


@case()
def case_eval_data_outside_the_checkpoint_vocabulary(world, d):
    fa = d / "prot.fa"
    fa.write_text(">p1\n" + "QEKLVAAGIVGM" * 20 + "\n")
    return Case(["eval", f"checkpoint={world.run}", "data=fasta", f"data.fasta={fa}", "data.seq_len=32"],
                r"prot\.fa: record 'p1', line 2, column 1: .*'Q' is not a DNA base", [fa])


# ------------------------------------------------------------------------------ numeric arguments
# Every count, length, size and step key of train / sample / eval: one line naming the key
# and its valid range (seqdiff/cli/validate.py), before anything is built or written.
def arg_case(name: str, command: str, overrides: list[str], expect: str, debug: bool = False) -> None:
    in_trace = expect.removeprefix("^").removesuffix("$")  # --debug: the same line after the traceback

    def build(world, d):
        if command == "train":  # "~key": a key of TINY that the chosen group option does not have
            drop = tuple(o[1:] + "=" for o in overrides if o.startswith("~"))
            tiny = [a for a in TINY if not a.startswith(drop)] if drop else TINY
            argv = ["train", f"run_dir={d / 'r'}", *tiny, *MARKOV, *(o for o in overrides if not o.startswith("~"))]
            return Case(argv, expect, [], d / "r", debug_expect=in_trace)
        out = d / "s.fa"
        if command == "sample":
            return Case(["sample", f"checkpoint={world.run}", *overrides, f"out={out}"], expect, [], out=out, debug_expect=in_trace)
        return Case(["eval", f"checkpoint={world.run}", *overrides], expect, [], debug_expect=in_trace)

    build.__name__ = f"case_arg_{name}"
    case(debug)(build)


NUMERIC_CASES = [
    # sample (the quickstart user's first tries)
    ("sample_num_samples_zero", "sample", ["num_samples=0"], r"^error: num_samples: expected an integer >= 1, got 0$", True),
    ("sample_num_samples_negative", "sample", ["num_samples=-3"], r"^error: num_samples: expected an integer >= 1, got -3$"),
    ("sample_num_samples_text", "sample", ["num_samples=many"], r"^error: num_samples: expected an integer >= 1, got 'many'$"),
    ("sample_num_samples_fraction", "sample", ["num_samples=2.5"], r"^error: num_samples: expected an integer >= 1, got 2\.5$"),
    ("sample_length_negative", "sample", ["length=-5"], r"^error: length: expected an integer >= 1 or null \(data\.seq_len\), got -5$"),
    ("sample_length_zero", "sample", ["length=0"], r"^error: length: expected an integer >= 1 .*got 0$"),
    ("sample_batch_size_zero", "sample", ["sample_batch_size=0"], r"^error: sample_batch_size: expected an integer >= 1, got 0$"),
    ("sample_seed_negative", "sample", ["seed=-1"], r"^error: seed: expected an integer >= 0, got -1$"),
    ("sample_motif_past_the_end", "sample", ["condition.motif=TATA", "condition.motif_at=30"],
     r"^error: condition\.motif_at: expected an integer in \[0, 28\] \(or \[-32, -4\] from the end\) for a 4-token motif in 32 tokens, got 30$"),
    ("sample_motif_negative_overhang", "sample", ["condition.motif=TATA", "condition.motif_at=-2"], r"^error: condition\.motif_at: .*got -2$"),
    ("sample_motif_at_text", "sample", ["condition.motif=TATA", "condition.motif_at=middle"],
     r"^error: condition\.motif_at: expected an integer or null \(no motif\), got 'middle'$"),
    ("sample_target_length_zero", "sample", ["condition.target_length=0"], r"^error: condition\.target_length: expected an integer >= 1"),
    ("sample_placement_temperature_negative", "sample", ["condition.keywords=[ACGT]", "condition.placement_temperature=-1"],
     r"^error: condition\.placement_temperature: expected a number >= 0"),
    ("sample_sampler_num_steps_zero", "sample", ["sampler.num_steps=0"], r"^error: sampler\.num_steps: expected an integer >= 1, got 0$"),
    ("sample_eags_num_steps_negative", "sample", ["sampler=eags", "sampler.num_steps=-2"], r"^error: sampler\.num_steps: expected an integer >= 1"),
    ("sample_temperature_negative", "sample", ["sampler.temperature=-1"], r"^error: sampler\.temperature: expected a number >= 0, got -1$"),
    ("sample_top_p_zero", "sample", ["sampler.top_p=0"], r"^error: sampler\.top_p: expected a number in \(0, 1\], got 0$"),
    ("sample_top_p_above_one", "sample", ["sampler.top_p=1.5"], r"^error: sampler\.top_p: expected a number in \(0, 1\], got 1\.5$"),
    ("sample_refine_fraction_zero", "sample", ["sampler=eags", "sampler.refine_fraction=0"], r"^error: sampler\.refine_fraction: expected a number in \(0, 1\]"),
    ("sample_refine_sweeps_negative", "sample", ["sampler=eags", "sampler.refine_sweeps=-1"], r"^error: sampler\.refine_sweeps: expected an integer >= 0"),
    ("sample_semi_ar_block_length_zero", "sample", ["sampler=semi_ar", "sampler.block_length=0"], r"^error: sampler\.block_length: expected an integer >= 1"),
    ("sample_semi_ar_stride_zero", "sample", ["sampler=semi_ar", "sampler.stride=0"], r"^error: sampler\.stride: expected an integer >= 1"),
    ("sample_threshold_tau_above_one", "sample", ["sampler=threshold", "sampler.tau=1.5"],
     r"^error: sampler\.tau: expected a number in \[0, 1\], got 1\.5$"),
    ("sample_entropy_bound_gamma_negative", "sample", ["sampler=entropy_bound", "sampler.gamma=-0.1"],
     r"^error: sampler\.gamma: expected a number >= 0, got -0\.1$"),
    ("sample_remdm_eta_negative", "sample", ["sampler=remdm", "sampler.eta=-1"],
     r"^error: sampler\.eta: expected a number >= 0 or null \(the strategy's published default\), got -1$"),
    ("sample_remdm_cap_eta_above_one", "sample", ["sampler=remdm", "sampler.eta=2"],
     r"^error: sampler: ReMDMSampler: eta must be in \[0, 1\] \(cap\), got 2\.0$"),
    ("sample_remdm_loop_t_on_one", "sample", ["sampler=remdm_loop", "sampler.t_on=1"],
     r"^error: sampler\.t_on: expected a number in \(0, 1\), got 1$"),
    ("sample_trust_code_not_a_flag", "sample", ["trust_code=maybe"], r"^error: trust_code: expected true or false, got 'maybe'$"),
    # a length the model cannot attend to within memory: refused, with what to do instead
    ("sample_length_beyond_memory", "sample", ["length=100000"],
     r"^error: length=100000: AncestralSampler runs the model on all 100000 positions at once, beyond the 32 tokens it was "
     r"trained on, and its attention needs ~.* TB for 8 sequences \(.* available\); generate window by window with "
     r"sampler=semi_ar \(windows of 32 tokens\)$", True),
    ("sample_semi_ar_window_beyond_memory", "sample", ["sampler=semi_ar", "sampler.block_length=100000", "length=200000"],
     r"^error: length=200000: SemiAutoregressiveSampler runs the model on all 100000 positions at once.*sampler=semi_ar"),
    # eval
    ("eval_draws_zero", "eval", ["eval.draws=0"], r"^error: eval\.draws: expected an integer >= 1, got 0$", True),
    ("eval_batch_size_zero", "eval", ["eval.batch_size=0"], r"^error: eval\.batch_size: expected an integer >= 1, got 0$"),
    ("eval_max_sequences_zero", "eval", ["eval.max_sequences=0"], r"^error: eval\.max_sequences: expected an integer >= 1 or null \(all\), got 0$"),
    ("eval_num_samples_negative", "eval", ["eval.num_samples=-1"], r"^error: eval\.num_samples: expected an integer >= 0, got -1$"),
    ("eval_seed_negative", "eval", ["eval.seed=-7"], r"^error: eval\.seed: expected an integer >= 0, got -7$"),
    ("eval_judge_batch_size_zero", "eval", ["eval.judge_batch_size=0"], r"^error: eval\.judge_batch_size: expected an integer >= 1"),
    ("eval_sampling_steps_zero", "eval", ["eval.sampling_steps=[8,0]"], r"^error: eval\.sampling_steps\[1\]: expected an integer >= 1, got 0$"),
    ("eval_sampling_steps_not_a_list", "eval", ["eval.sampling_steps=8"], r"^error: eval\.sampling_steps: expected a list of integers >= 1, got 8$"),
    ("eval_process_num_steps_negative", "eval", ["process.num_steps=-1"], r"^error: process\.num_steps: expected an integer >= 0, got -1$"),
    ("eval_process_t_min_one", "eval", ["process.t_min=1"], r"^error: process\.t_min: expected a number in \[0, 1\), got 1$"),
    ("eval_schedule_eps_negative", "eval", ["process.schedule.eps=-0.1"], r"^error: process\.schedule\.eps: expected a number in \[0, 1\)"),
    # train: trainer
    ("train_steps_negative", "train", ["trainer.steps=-1"], r"^error: trainer\.steps: expected an integer >= 0, got -1$", True),
    ("train_batch_size_zero", "train", ["trainer.batch_size=0"], r"^error: trainer\.batch_size: expected an integer >= 1, got 0$"),
    ("train_grad_accum_zero", "train", ["trainer.grad_accum=0"], r"^error: trainer\.grad_accum: expected an integer >= 1"),
    ("train_lr_zero", "train", ["trainer.lr=0"], r"^error: trainer\.lr: expected a number > 0, got 0$"),
    ("train_lr_infinite", "train", ["trainer.lr=inf"], r"^error: trainer\.lr: expected a number > 0, got inf$"),
    ("train_warmup_negative", "train", ["trainer.warmup=-10"], r"^error: trainer\.warmup: expected an integer >= 0"),
    ("train_min_lr_ratio", "train", ["trainer.min_lr_ratio=2"], r"^error: trainer\.min_lr_ratio: expected a number in \[0, 1\], got 2$"),
    ("train_weight_decay_negative", "train", ["trainer.weight_decay=-0.1"], r"^error: trainer\.weight_decay: expected a number >= 0"),
    ("train_betas", "train", ["trainer.betas=[0.9,1.0]"], r"^error: trainer\.betas\[1\]: expected a number in \[0, 1\), got 1\.0$"),
    ("train_adam_eps_zero", "train", ["trainer.adam_eps=0"], r"^error: trainer\.adam_eps: expected a number > 0"),
    ("train_ema_one", "train", ["trainer.ema=1"], r"^error: trainer\.ema: expected a number in \[0, 1\), got 1$"),
    ("train_num_threads_zero", "train", ["trainer.num_threads=0"], r"^error: trainer\.num_threads: expected an integer >= 1 or null"),
    ("train_log_every_zero", "train", ["trainer.log_every=0"], r"^error: trainer\.log_every: expected an integer >= 1, got 0$"),
    ("train_eval_every_negative", "train", ["trainer.eval_every=-1"], r"^error: trainer\.eval_every: expected an integer >= 0"),
    ("train_eval_sequences_zero", "train", ["trainer.eval_sequences=0"], r"^error: trainer\.eval_sequences: expected an integer >= 1"),
    ("train_ckpt_every_negative", "train", ["trainer.ckpt_every=-5"], r"^error: trainer\.ckpt_every: expected an integer >= 0"),
    ("train_keep_last_negative", "train", ["trainer.keep_last=-1"], r"^error: trainer\.keep_last: expected an integer >= 0, got -1$"),
    ("train_max_time_zero", "train", ["trainer.max_time=0"], r"^error: trainer\.max_time: expected a number > 0 or null \(no limit\), got 0$"),
    ("train_max_nan_skips_negative", "train", ["trainer.max_nan_skips=-1"], r"^error: trainer\.max_nan_skips: expected an integer >= 0"),
    # train: the evaluation and samples that follow training are checked before it starts
    ("train_eval_draws_zero", "train", ["eval.draws=0"], r"^error: eval\.draws: expected an integer >= 1, got 0$"),
    ("train_sample_batch_size_zero", "train", ["sample_batch_size=0"], r"^error: sample_batch_size: expected an integer >= 1"),
    # train: data
    ("train_seq_len_zero", "train", ["data.seq_len=0"], r"^error: data\.seq_len: expected an integer >= 1, got 0$"),
    ("train_train_tokens_negative", "train", ["data.train_tokens=-1"], r"^error: data\.train_tokens: expected an integer >= 1"),
    ("train_markov_order_negative", "train", ["data.order=-1"], r"^error: data\.order: expected an integer >= 0"),
    ("train_markov_concentration_zero", "train", ["data.concentration=0"], r"^error: data\.concentration: expected a number > 0"),
    ("train_motif_strength", "train", ["data.motif_strength=1.5"], r"^error: data\.motif_strength: expected a number in \[0, 1\]"),
    # train: backbone
    ("train_d_model_zero", "train", ["backbone.d_model=0"], r"^error: backbone\.d_model: expected an integer >= 1, got 0$"),
    ("train_n_layers_zero", "train", ["backbone.n_layers=0"], r"^error: backbone\.n_layers: expected an integer >= 1, got 0$"),
    ("train_n_heads_zero", "train", ["backbone.n_heads=0"], r"^error: backbone\.n_heads: expected an integer >= 1, got 0$"),
    ("train_mlp_ratio_zero", "train", ["backbone.mlp_ratio=0"], r"^error: backbone\.mlp_ratio: expected an integer >= 1"),
    ("train_dropout_one", "train", ["backbone.dropout=1"], r"^error: backbone\.dropout: expected a number in \[0, 1\), got 1$"),
    ("train_rope_base_zero", "train", ["backbone.rope_base=0"], r"^error: backbone\.rope_base: expected a number > 0"),
    ("train_bimamba_d_state_zero", "train", ["backbone=bimamba", "~backbone.n_heads", "backbone.d_state=0"],
     r"^error: backbone\.d_state: expected an integer >= 1, got 0$"),
    ("train_bimamba_dt_rank_word", "train", ["backbone=bimamba", "~backbone.n_heads", "backbone.dt_rank=half"],
     r"^error: backbone\.dt_rank: expected an integer >= 1 or auto, got 'half'$"),
    ("train_bimamba_expand_zero", "train", ["backbone=bimamba", "~backbone.n_heads", "backbone.expand=0"], r"^error: backbone\.expand: expected an integer >= 1"),
    # train: process
    ("train_process_num_steps_negative", "train", ["process.num_steps=-3"], r"^error: process\.num_steps: expected an integer >= 0"),
    ("train_ens_groups_zero", "train", ["process=mdlm_ens", "process.ens_groups=0"], r"^error: process\.ens_groups: expected an integer >= 1, got 0$"),
    ("train_ens_temperature_negative", "train", ["process=mdlm_ens", "process.ens_temperature=-1"],
     r"^error: process\.ens_temperature: expected a number >= 0"),
]
for _name, _command, _overrides, _expect, *_debug in NUMERIC_CASES:
    arg_case(_name, _command, _overrides, _expect, bool(_debug and _debug[0]))


# ------------------------------------------------------------------------------ the test
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_clear_line(world, tmp_path, name):
    build = CASES[name]
    c = build(world, tmp_path)
    before = tree(tmp_path)
    r = fresh_cli(world, c.argv, tmp_path) if build.debug else world.warm.run(c.argv, tmp_path)
    check_one_line(r, c, name)
    if c.run_dir is not None:
        assert not c.run_dir.exists(), f"{name}: left {c.run_dir} behind: {sorted(tree(c.run_dir))}"
    if c.out is not None:
        assert not c.out.exists(), f"{name}: wrote {c.out}"
    after = tree(tmp_path)
    new = {k for k in set(after) - set(before) if not k.endswith(".fai")}
    assert not new, f"{name}: new files {sorted(new)}"
    changed = {k for k in before if k in after and after[k] != before[k] and not k.endswith(("hydra.yaml", "config.yaml", "overrides.yaml"))}
    assert not changed, f"{name}: files changed {sorted(changed)}"
    if build.debug:
        r = world.warm.run([*c.argv, "--debug"], tmp_path)
        assert r.returncode != 0 and "Traceback (most recent call last)" in r.stderr, f"{name}: --debug\n{r.stderr[-2000:]}"
        assert re.search(c.debug_expect or c.expect, r.stderr), r.stderr[-2000:]
        if c.run_dir is not None:
            assert not c.run_dir.exists(), f"{name} --debug: left {c.run_dir} behind"


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30
    kinds = {n.split("_")[0] for n in CASES}
    assert {"fasta", "bed", "text", "jsonl", "tokenizer", "config", "ckpt", "resume", "arg"} <= kinds
