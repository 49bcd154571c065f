"""The tokenizer travels inside every checkpoint; a changed tokenizer is a one-line error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import seqdiff
from seqdiff.errors import CheckpointError
from seqdiff.run import build_run
from seqdiff.io.checkpoint import save_checkpoint
from support.textfiles import make_text, write_tiny_gpt2

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU


def config(domain: dict, corpus: str) -> dict:
    return {
        "seed": 0,
        "domain": {"_target_": "seqdiff_recipes.text.TextDomain", **domain},
        "data": {"_target_": "seqdiff_recipes.text.TextData", "corpus": {"path": corpus}, "seq_len": 16},
        "backbone": {"_target_": "seqdiff.backbones.DiT", "d_model": 16, "n_layers": 1, "n_heads": 2},
        "process": {"_target_": "seqdiff.processes.MaskedDiffusion"},
        "sampler": {"_target_": "seqdiff.samplers.AncestralSampler", "num_steps": 8},
        "trainer": {},
    }


def checkpoint(cfg: dict, root) -> tuple:
    exp = build_run(cfg)
    path = save_checkpoint(root, 1, model=exp.model, config=cfg, vocab=exp.vocab, artifacts=exp.domain)
    return exp, path


def test_trained_tokenizer_is_restored_without_the_corpus(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(200))
    cfg = config({"tokenizer": "bpe", "vocab_size": 300, "train_corpus": {"path": str(corpus)}}, str(corpus))
    exp, path = checkpoint(cfg, tmp_path / "ckpt")
    assert (path / "artifacts" / "tokenizer.json").exists()
    corpus.unlink()  # sampling never needs the training text
    run = seqdiff.load(path)
    assert run.vocab == exp.vocab
    ids = exp.domain.encode("the quick brown fox")
    assert run.domain.encode("the quick brown fox") == ids and run.domain.decode(ids) == "the quick brown fox"
    out = run.generate(2, 16)
    assert out.tokens.shape == (2, 16) and not (out.tokens == run.vocab.mask_id).any()


@pytest.mark.slow
def test_published_tokenizer_files_may_disappear_but_not_change(tmp_path):
    tok = write_tiny_gpt2(tmp_path / "gpt2")
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(50))
    cfg = config({"tokenizer": "gpt2", "path": str(tok)}, str(corpus))
    exp, path = checkpoint(cfg, tmp_path / "ckpt")
    assert seqdiff.load(path).vocab == exp.vocab  # files present and identical: fine
    # a different tokenizer at the configured path: refuse, in one line
    vocab = json.loads((tok / "vocab.json").read_text())
    vocab["ll"], vocab["or"] = vocab["or"], vocab["ll"]  # same tokens, two ids swapped
    (tok / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(CheckpointError) as e:
        seqdiff.load(path)
    msg = str(e.value)
    assert "the checkpoint's tokenizer differs from the configured one" in msg and "\n" not in msg
    assert "token 259 is 'll' vs 'or'" in msg
    r = subprocess.run([sys.executable, "-m", "seqdiff", "sample", f"checkpoint={path}", "num_samples=1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    # gone entirely: the checkpoint's copy is used
    shutil.rmtree(tok)
    run = seqdiff.load(path)
    assert run.vocab == exp.vocab and run.domain.encode(" the") == [258]


def test_checkpoint_tokenizer_must_match_its_vocabulary(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(50))
    cfg = config({"tokenizer": "char", "train_corpus": {"path": str(corpus)}}, str(corpus))
    _, path = checkpoint(cfg, tmp_path / "ckpt")
    chars = path / "artifacts" / "chars.json"
    table = json.loads(chars.read_text())
    chars.write_text(json.dumps(table[::-1]))  # a different id order
    with pytest.raises(CheckpointError, match=r"artifacts/chars.json: .*manifest"):
        seqdiff.load(path)  # the manifest catches tampering first ...
    with pytest.raises(CheckpointError, match="vocabulary differs from the one its domain builds"):
        seqdiff.load(path, verify=False)  # ... and the vocabulary check catches the mismatch itself


@pytest.mark.slow
def test_training_writes_artifacts_and_cli_sampling_uses_them(tmp_path):
    from seqdiff.train.trainer import Trainer, TrainerConfig

    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(100))
    cfg = config({"tokenizer": "char", "train_corpus": {"path": str(corpus)}}, str(corpus))
    exp = build_run(cfg)
    tc = TrainerConfig(steps=2, batch_size=4, log_every=1, eval_every=2, eval_sequences=4, ckpt_every=2,
                       progress=False, tensorboard=False)
    Trainer(exp.model, exp.process, exp.data, tc, run_dir=tmp_path / "run", vocab=exp.vocab, run_config=cfg,
            artifacts=exp.domain).fit()
    assert (tmp_path / "run" / "checkpoints" / "step-00000002" / "artifacts" / "chars.json").exists()
    corpus.unlink()
    r = subprocess.run([sys.executable, "-m", "seqdiff", "sample", f"checkpoint={tmp_path / 'run'}", "num_samples=2",
                        "condition.prefix=The", "sampler.num_steps=4"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    samples = [l for l in r.stdout.splitlines() if not l.startswith(">")]
    assert len(samples) >= 2 and samples[0].startswith("The")
