"""End to end through the CLI on a generated corpus: text_char (MDLM) and text_char_ar
train, sample (also past the trained length) and evaluate (ratio, judge, steps sweep,
plots); `seqdiff tokenizer train` feeding text_bpe; the pydoc quickstart; one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from seqdiff.cli.main import main
from support.textfiles import make_text

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU

pytestmark = pytest.mark.slow

TINY = [
    "trainer.steps=6", "trainer.batch_size=8", "trainer.progress=false", "trainer.eval_every=3", "trainer.log_every=3",
    "trainer.tensorboard=false", "trainer.eval_sequences=4", "backbone.d_model=16", "backbone.n_layers=1",
    "backbone.n_heads=2", "data.seq_len=32", "eval.max_sequences=8", "eval.num_samples=4", "eval.draws=2",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("textcli")
    corpus = d / "corpus.txt"
    corpus.write_text(make_text(400))
    for name, exp in (("mdlm", "text_char"), ("ar", "text_char_ar")):
        extra = ["sampler.num_steps=8"] if name == "mdlm" else []
        assert main(["train", f"experiment={exp}", f"run_dir={d / name}", f"data.corpus.path={corpus}", *TINY, *extra]) == 0
    return d


def test_train_reports_bits_per_char_and_what_it_counts(runs, capsys):
    report = json.loads((runs / "mdlm" / "eval.json").read_text())
    assert report["split"] == "valid" and report["unit"] == "token"
    lik, bpc = report["likelihood"], report["bits_per_char"]
    # char level: one character per token, so bits/char is bits/token (same rows, same draws)
    assert bpc["value"] == pytest.approx(lik["bits_per_token"], rel=1e-9)
    assert report["reference"]["policy"] == {"mode": "wrap", "bos": False, "eos": False, "row_specials": False,
                                             "overflow": "split", "score_specials": True, "seq_len": 32}
    assert "no BOS/EOS inserted" in report["reference"]["counting"]
    assert (runs / "mdlm" / "checkpoints" / "step-00000006" / "artifacts" / "chars.json").exists()
    assert set(report["samples"]["distinct_4"]) == {"samples", "data"}
    assert "| NELBO bits/token (valid)" in (runs / "mdlm" / "eval.md").read_text()


def test_eval_with_baseline_judge_sweep_and_plots(runs, capsys):
    assert main(["eval", f"checkpoint={runs / 'mdlm'}", "eval.split=valid", f"eval.baseline={runs / 'ar'}", f"eval.judge={runs / 'ar'}",
                 "eval.sampling_steps=[2,8]", "eval.report=plots", "eval.num_samples=6", "eval.draws=2",
                 "eval.max_sequences=8"]) == 0
    out = capsys.readouterr().out
    assert "ratio ours / baseline:" in out and "gen-PPL" in out and "entropy" in out
    report = json.loads((runs / "mdlm" / "eval.json").read_text())
    base = report["baseline"]
    assert base["process"] == "autoregressive" and base["likelihood"]["exact"]
    assert base["ratio"] == pytest.approx(report["likelihood"]["nats_per_token"] / base["likelihood"]["nats_per_token"], rel=1e-9)
    judge = report["samples"]["judge"]
    assert judge["num_samples"] == 6 and not judge["retokenized"] and judge["gen_ppl"] > 1
    assert [p["steps"] for p in report["sweep"]] == [2, 8] and all(p["nfe_per_sample"] <= p["steps"] for p in report["sweep"])
    assert {"vendi", "mauve", "data_vendi"} <= set(report["samples"])
    for png in ("loss_curves.png", "sampling_sweep.png"):
        assert (runs / "mdlm" / png).stat().st_size > 1000
    assert "| ratio ours / baseline (nats)" in (runs / "mdlm" / "eval.md").read_text()


def test_semi_autoregressive_continuation_of_a_prompt(runs, capsys):
    assert main(["sample", f"checkpoint={runs / 'mdlm'}", "sampler=semi_ar", "sampler.block_length=32",
                 "sampler.stride=16", "sampler.num_steps=8", "length=80", "num_samples=2",
                 "condition.prefix=The quick brown"]) == 0
    text = capsys.readouterr().out
    samples = text.split(">sample_")[1:]
    assert len(samples) == 2
    for s in samples:
        body = s.split("\n", 1)[1].rstrip("\n")
        assert body.startswith("The quick brown") and len(body) == 80


def test_tokenizer_command_then_text_bpe(runs, tmp_path, capsys):
    corpus = runs / "corpus.txt"
    assert main(["tokenizer", "train", "--corpus", str(corpus), "--kind", "bpe", "--vocab-size", "300",
                 "--out", str(tmp_path / "tok")]) == 0
    assert "trained bpe tokenizer: 300 ids" in capsys.readouterr().out
    assert main(["train", "experiment=text_bpe", f"run_dir={tmp_path / 'run'}", f"data.corpus.path={corpus}",
                 f"domain.path={tmp_path / 'tok'}", "sampler.num_steps=4", *TINY]) == 0
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    # BPE: several characters per token; bits/char < bits/token
    assert report["reference"]["chars_per_token"] > 1.5
    assert report["bits_per_char"]["value"] < report["likelihood"]["bits_per_token"]
    saved = json.loads((tmp_path / "tok" / "text_tokenizer.json").read_text())
    ck = json.loads((tmp_path / "run" / "checkpoints" / "step-00000006" / "artifacts" / "text_tokenizer.json").read_text())
    assert saved["size"] == ck["size"] == 300


def test_text_quickstart_on_the_builtin_corpus(tmp_path, capsys):
    assert main(["train", "experiment=text_quickstart", f"run_dir={tmp_path / 'qs'}", "domain.vocab_size=300",
                 "sampler.num_steps=4", *TINY]) == 0
    report = json.loads((tmp_path / "qs" / "eval.json").read_text())
    assert report["reference"]["corpus"]["builtin"] == "pydoc_topics"
    assert report["reference"]["splits"]["train"]["characters"] > 300_000
    assert "[EOS] after each document" in report["reference"]["counting"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqdiff", *args], capture_output=True, text=True, timeout=180)


def test_bad_inputs_are_one_line_errors(tmp_path):
    r = cli("train", "experiment=text_char", f"data.corpus.path={tmp_path / 'nope.txt'}", f"run_dir={tmp_path / 'r'}")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'nope.txt'}: no such corpus file or directory"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine text\n\xff\xfe oops\n")
    r = cli("train", "experiment=text_char", f"data.corpus.path={bad}", f"run_dir={tmp_path / 'r2'}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"error: {bad}: invalid UTF-8 at byte offset 10 (line 2, byte 0xff)" in r.stderr
    r = cli("train", "experiment=text_owt", f"data.corpus.path={bad}", f"run_dir={tmp_path / 'r3'}")
    assert r.returncode == 2 and "error: domain.path: the gpt2 tokenizer needs its directory" in r.stderr
    r = cli("tokenizer", "train", "--corpus", str(tmp_path / "missing"), "--out", str(tmp_path / "t"))
    assert r.returncode == 2 and r.stderr.strip() == f"error: {tmp_path / 'missing'}: no such corpus file or directory"


def test_lm1b_style_padded_rows_with_given_bos(tmp_path, capsys):
    """Pad mode end to end (one sentence per row, [BOS]/[EOS], padding masked): with
    score_specials=false the leading [BOS] is context, and samples take data lengths."""
    corpus = tmp_path / "lines.txt"
    corpus.write_text(make_text(300))
    assert main(["train", "experiment=text_char", f"run_dir={tmp_path / 'pad'}", f"data.corpus.path={corpus}",
                 "data.mode=pad", "data.bos=true", "data.eos=true", "data.score_specials=false",
                 "data.corpus.document=line", "data.corpus.split_by=documents", "sampler.num_steps=4",
                 *TINY, "data.seq_len=80"]) == 0
    report = json.loads((tmp_path / "pad" / "eval.json").read_text())
    assert "the [BOS] starting each row given as context, not scored" in report["reference"]["counting"]
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("  [BOS]")]
    assert len(lines) == 4  # every sample starts with the fixed [BOS] (printed indented)
