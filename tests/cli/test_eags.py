"""End to end through the CLI with tiny ENS-trained runs: keywords in every text sample
(CLI and the one-line Python API), DNA flank + motif infilling with EAGS and its
reverse-complement-consistent switch, and source -> target pairs."""

from __future__ import annotations

import json

import pytest

import seqdiff
from seqdiff.cli.main import main
from seqdiff.samplers import keyword_coverage, keyword_variants
from support.textfiles import make_text

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU

pytestmark = pytest.mark.slow

TINY = ["trainer.steps=6", "trainer.batch_size=8", "trainer.progress=false", "trainer.eval_every=3", "trainer.log_every=3",
        "trainer.tensorboard=false", "trainer.eval_sequences=4", "backbone.d_model=16", "backbone.n_layers=1",
        "backbone.n_heads=2", "data.seq_len=32", "eval.max_sequences=4", "eval.num_samples=2", "eval.draws=1",
        "process.ens_groups=2"]


def samples(out: str) -> list[str]:
    return [s.split("\n", 1)[1].rstrip("\n") for s in out.split(">sample_")[1:]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("eagscli")
    corpus = d / "corpus.txt"
    corpus.write_text(make_text(300))
    assert main(["train", "experiment=text_char", "process=mdlm_ens", "sampler=eags", f"run_dir={d / 'text'}",
                 f"data.corpus.path={corpus}", *TINY]) == 0
    assert main(["train", "process=mdlm_ens", "sampler=eags_rc", f"run_dir={d / 'dna'}", *TINY, "data.train_tokens=8192",
                 "data.valid_tokens=1024", "data.test_tokens=1024", "data.record_length=512"]) == 0
    pairs = d / "pairs.jsonl"
    words = make_text(60).split()
    pairs.write_text("".join(json.dumps({"src": " ".join(words[i:i + 3]), "tgt": " ".join(words[i:i + 3]).upper()}) + "\n"
                             for i in range(0, 150, 3)))
    assert main(["train", "experiment=text_pairs_eags", f"run_dir={d / 'pairs'}", f"data.path={pairs}", *TINY,
                 "data.seq_len=48", "data.split_fractions=[0.8,0.2,0.0]"]) == 0
    return d


def test_keywords_are_in_every_text_sample(runs, capsys):
    for placement in ("model", "spread"):
        assert main(["sample", f"checkpoint={runs / 'text'}", "sampler=eags", "sampler.num_steps=5", "num_samples=4",
                     "condition.keywords=[fox,morning]", f"condition.placement={placement}"]) == 0
        got = samples(capsys.readouterr().out)
        assert len(got) == 4 and all("fox" in s and "morning" in s and len(s) == 32 for s in got), got
    # keywords on top of a prefix: both kept
    assert main(["sample", f"checkpoint={runs / 'text'}", "sampler=confidence", "num_samples=2", "condition.prefix=The",
                 "condition.keywords=[dog]"]) == 0
    assert all(s.startswith("The") and "dog" in s for s in samples(capsys.readouterr().out))


def test_keyword_python_api_and_errors(runs, capsys):
    run = seqdiff.load(runs / "text")
    out = run.generate_with_keywords(["bird", "song"], 3, 32, sampler=run.build_sampler({"_target_": "seqdiff.samplers.OrderedSampler",
                                                                                          "num_steps": 4}))
    kws = [keyword_variants(run.domain, w) for w in ("bird", "song")]
    assert keyword_coverage(out.tokens, kws).tolist() == [1.0] * 3
    # a keyword that cannot fit: one error line, exit 2
    with pytest.raises(SystemExit) as e:
        main(["sample", f"checkpoint={runs / 'text'}", "length=6", "condition.keywords=[morning]"])
    assert e.value.code == 2 and "no room left" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sample", f"checkpoint={runs / 'text'}", "condition.keywords=[fox]", "condition.placement=middle"])
    assert "condition.placement must be one of" in capsys.readouterr().err


@pytest.mark.parametrize("sampler", ["eags", "eags_rc"])
def test_dna_flank_and_motif_infilling_with_eags(runs, capsys, sampler):
    assert main(["sample", f"checkpoint={runs / 'dna'}", f"sampler={sampler}", "num_samples=3", "condition.left=ACGTACGT",
                 "condition.right=GGGATC", "condition.motif=TATAAT", "condition.motif_at=12"]) == 0
    captured = capsys.readouterr()
    got = samples(captured.out)
    assert len(got) == 3
    assert all(s.startswith("ACGTACGT") and s.endswith("GGGATC") and s[12:18] == "TATAAT" and len(s) == 32
               and set(s) <= set("ACGTN") for s in got), got
    nfe = float(captured.err.split("backbone evaluations per sample ")[1].split()[0])
    assert nfe == (10.0 if sampler == "eags_rc" else 5.0)  # averaging with the RC strand doubles the calls


def test_pairs_source_is_kept_and_only_the_target_is_printed(runs, capsys, tmp_path):
    assert main(["sample", f"checkpoint={runs / 'pairs'}", "condition.source=the quick fox", "num_samples=3",
                 "condition.target_length=9"]) == 0
    got = samples(capsys.readouterr().out)
    assert len(got) == 3 and all(len(s) <= 9 for s in got)  # characters <= bytes (invalid bytes: U+FFFD)
    src = tmp_path / "src.txt"
    src.write_text("the dog\n\nlazy bird\n")
    assert main(["sample", f"checkpoint={runs / 'pairs'}", f"condition.source_file={src}", "num_samples=2",
                 "condition.keywords=[RUN]"]) == 0  # target length drawn from the training pairs
    got = samples(capsys.readouterr().out)
    assert len(got) == 4 and all("RUN" in s for s in got), got
    report = json.loads((runs / "pairs" / "eval.json").read_text())
    assert "source" in report["reference"]["counting"] and report["likelihood"]["num_sequences"] > 0
    with pytest.raises(SystemExit):
        main(["sample", f"checkpoint={runs / 'text'}", "condition.source=hello"])
    assert "not trained on pairs" in capsys.readouterr().err
