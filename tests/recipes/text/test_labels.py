"""Labels for text from a JSONL field (data.label_field=stars): the vocabulary from the training
documents, every row of a document carries its label, a record without the field is one line
naming file and line; a few training steps and sampling under a label with guidance."""

from __future__ import annotations

import json

import pytest
import torch

import seqdiff
from seqdiff.cli.main import main
from seqdiff.errors import ConfigError, DataError
from seqdiff_recipes.alphabet import AlphabetDomain
from seqdiff_recipes.text import TextData

WORDS = {"1": "awful bad poor", "5": "great good fine"}


def _jsonl(path, n=60, missing_at=None):
    lines = []
    for i in range(n):
        stars = "1" if i % 2 else "5"
        rec = {"text": f"{WORDS[stars]} {i}", "stars": int(stars)}
        if i + 1 == missing_at:
            del rec["stars"]
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n")
    return path


def _domain():
    return AlphabetDomain("abcdefghijklmnopqrstuvwxyz0123456789 ", name="text_test")


def test_rows_carry_their_documents_labels(tmp_path):
    f = _jsonl(tmp_path / "r.jsonl")
    data = TextData(_domain(), {"path": str(f), "split_by": "documents"}, seq_len=24, mode="pad", eos=False,
                    label_field="stars")
    assert data.labels.to_dict() == {"stars": ["1", "5"]}
    batch = data.train_batch(0, 16)
    assert batch.label.shape == (16, 1)
    text = [data.domain.decode(r[v]) for r, v in zip(batch.x0, batch.valid)]
    for t, y in zip(text, batch.label[:, 0].tolist()):
        assert t.startswith(WORDS["1" if y == 0 else "5"])
    rows = [b for b in data.eval_batches("valid", 4)]
    assert all(b.label is not None and len(b.label) == len(b.x0) for b in rows)
    p = data.label_prior()["stars"]
    assert p.sum().item() == pytest.approx(1.0) and (p > 0).all()


def test_a_record_without_the_label_field_is_one_line(tmp_path):
    f = _jsonl(tmp_path / "r.jsonl", missing_at=7)
    with pytest.raises(DataError, match=rf"^{f}:7: no label field 'stars' \(found \['text'\]\); every record needs one"):
        TextData(_domain(), {"path": str(f)}, seq_len=24, mode="pad", eos=False, label_field="stars")


def test_a_held_out_label_no_training_document_has_is_one_line(tmp_path):
    f = _jsonl(tmp_path / "r.jsonl")
    v = tmp_path / "v.jsonl"
    v.write_text(json.dumps({"text": "good", "stars": 5}) + "\n" + json.dumps({"text": "meh", "stars": 3}) + "\n")
    with pytest.raises(DataError, match=rf"^{v}:2: label '3' of field 'stars' is not among the training documents' labels \(1, 5\)$"):
        TextData(_domain(), {"path": str(f), "valid_path": str(v)}, seq_len=24, mode="pad", eos=False, label_field="stars")


def test_labels_need_padded_rows(tmp_path):
    with pytest.raises(ConfigError, match=r"^data\.label_field=stars: labels need data\.mode=pad"):
        TextData(_domain(), {"path": str(_jsonl(tmp_path / "r.jsonl"))}, seq_len=24, mode="wrap", eos=False, label_field="stars")


TINY = [
    "experiment=text_char", "data.mode=pad", "data.label_field=stars", "label.dropout=0.2",
    "data.corpus.split_by=documents", "data.corpus.split_fractions=[0.8,0.1,0.1]", "data.seq_len=24",
    "trainer.steps=8", "trainer.batch_size=8", "trainer.progress=false", "trainer.eval_every=0", "trainer.log_every=4",
    "trainer.tensorboard=false", "backbone.d_model=16", "backbone.n_layers=1", "backbone.n_heads=2",
    "eval.max_sequences=4", "eval.num_samples=2", "eval.draws=1", "sampler.num_steps=4",
]


def test_train_and_sample_under_a_label_through_the_cli(tmp_path, capsys):
    f = _jsonl(tmp_path / "reviews.jsonl")
    d = tmp_path / "run"
    assert main(["train", f"run_dir={d}", f"data.corpus.path={f}", *TINY]) == 0
    run = seqdiff.load(d)
    assert run.labels.to_dict() == {"stars": ["1", "5"]}
    report = json.loads((d / "eval.json").read_text())
    assert report["likelihood"]["conditional_on"] == ["stars"] and "label_adherence" in report
    capsys.readouterr()
    assert main(["sample", f"checkpoint={d}", "condition.label=5", "guidance.scale=2", "num_samples=3"]) == 0
    out = [l for l in capsys.readouterr().out.splitlines() if l.strip()]
    assert len(out) >= 3
    gen = run.generate(2, 24, run.data.sample_condition(2, 0) if run.data is not None else None, label="1", guidance=2.0)
    assert gen.tokens.shape == (2, 24) and torch.isfinite(gen.nfe.double()).all()
    with pytest.raises(SystemExit):
        main(["sample", f"checkpoint={d}", "condition.label=3"])
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: condition.label: unknown stars label '3' (known: 1, 5)"


def test_a_missing_label_field_through_the_cli_is_one_line(tmp_path, capsys):
    f = _jsonl(tmp_path / "r.jsonl", missing_at=3)
    with pytest.raises(SystemExit) as e:
        main(["train", f"run_dir={tmp_path / 'run'}", f"data.corpus.path={f}", *TINY])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"error: {f}:3: no label field 'stars'")
