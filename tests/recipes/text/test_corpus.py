"""Corpora (files, directories, JSONL), deterministic splits, wrap/pad rows with correct
attention masks, the BOS/EOS policy and its counts, characters per row."""

from __future__ import annotations

import json

import pytest
import torch

from seqdiff_recipes.text import TextData, TextDomain
from seqdiff_recipes.text.corpus import CorpusSpec, read_documents, split_corpus
from support.textfiles import make_text

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU


def spec(path, **kw) -> CorpusSpec:
    return CorpusSpec.from_config({"path": str(path), **kw})


def test_nanogpt_split_is_exact(corpus_file):
    text = corpus_file.read_text()
    s = split_corpus(spec(corpus_file, split_fractions=[0.9, 0.1, 0.0]))
    n = len(text)
    assert [d.text for d in s.train] == [text[: int(n * 0.9)]]
    assert [d.text for d in s.valid] == [text[int(n * 0.9) :]]
    assert s.test == []


def test_directory_jsonl_and_document_modes(tmp_path):
    d = tmp_path / "c"
    (d / "sub").mkdir(parents=True)
    (d / "b.txt").write_text("para one\nstill one\n\npara two\n")
    (d / "sub" / "a.txt").write_text("line a\nline b\n")
    (d / ".hidden.txt").write_text("never read")
    (d / "docs.jsonl").write_text(json.dumps({"text": "json doc", "id": 1}) + "\n\n" + json.dumps({"text": "second"}) + "\n")
    docs = read_documents(spec(d))
    assert [x.text for x in docs] == ["para one\nstill one\n\npara two\n", "json doc", "second", "line a\nline b\n"]
    assert docs[1].where.endswith("docs.jsonl:1") and docs[2].where.endswith("docs.jsonl:3")
    para = read_documents(spec(d, pattern="*.txt", document="paragraph"))
    assert [x.text for x in para] == ["para one\nstill one", "para two", "line a\nline b"]
    lines = read_documents(spec(d / "sub" / "a.txt", document="line"))
    assert [x.text for x in lines] == ["line a", "line b"] and lines[1].where.endswith("a.txt:2")


def test_hashed_document_split_is_stable_and_disjoint(tmp_path):
    f = tmp_path / "lines.txt"
    f.write_text("\n".join(f"document number {i}" for i in range(400)))
    a = split_corpus(spec(f, document="line", split_by="documents", split_fractions=[0.8, 0.1, 0.1]))
    b = split_corpus(spec(f, document="line", split_by="documents", split_fractions=[0.8, 0.1, 0.1]))
    assert [d.text for d in a.valid] == [d.text for d in b.valid]
    texts = [{d.text for d in a.get(s)} for s in ("train", "valid", "test")]
    assert sum(map(len, texts)) == 400 and not (texts[0] & texts[1]) and not (texts[1] & texts[2])
    assert 20 < len(texts[1]) < 70 and 20 < len(texts[2]) < 70
    # adding documents at the end does not move earlier ones
    f.write_text(f.read_text() + "\nextra doc")
    c = split_corpus(spec(f, document="line", split_by="documents", split_fractions=[0.8, 0.1, 0.1]))
    assert {d.text for d in a.valid} <= {d.text for d in c.valid}


def test_explicit_test_file_replaces_its_share(tmp_path, corpus_file):
    t = tmp_path / "test.txt"
    t.write_text("held out text")
    s = split_corpus(spec(corpus_file, test_path=str(t), split_fractions=[0.9, 0.05, 0.05]))
    n = len(corpus_file.read_text())
    assert [d.text for d in s.test] == ["held out text"]
    assert sum(len(d.text) for d in s.train) == int(n * 0.95)


@pytest.fixture
def char_domain(corpus_file):
    return TextDomain("char", train_corpus={"path": str(corpus_file)})


def test_wrap_rows_are_windows_of_the_stream(corpus_file, char_domain):
    data = TextData(char_domain, {"path": str(corpus_file)}, seq_len=32, eos=False)
    text = corpus_file.read_text()
    x, valid, _ = data.train_batch(3, 8)
    assert x.shape == (8, 32) and valid.all()
    train_text = text[: int(len(text) * 0.9)]
    for row in x:
        assert char_domain.decode(row) in train_text
    x2, _, _ = data.train_batch(3, 8)
    assert torch.equal(x, x2)  # a pure function of (seed, step)
    # the data-parallel rank slices of a global batch are the global batch
    halves = [data.train_batch(3, 4, rank=r, world_size=2)[0] for r in (0, 1)]
    assert torch.equal(torch.cat(halves), x)
    rows = list(data.eval_batches("valid", 4))
    valid_text = text[int(len(text) * 0.9) : int(len(text) * 0.95)]
    joined = "".join(char_domain.decode(r) for b, _, _ in rows for r in b)
    assert joined == valid_text[: len(joined)] and len(valid_text) - len(joined) < 32
    name, chars = data.eval_units("valid")
    assert name == "char" and int(chars.sum()) == len(joined)


def test_wrap_eos_separators_are_counted_and_reported(tmp_path, char_domain):
    f = tmp_path / "docs.txt"
    f.write_text(make_text(120))
    data = TextData(char_domain, {"path": str(f), "document": "line"}, seq_len=64, eos=True, bos=True)
    ref = data.reference()
    docs = ref["splits"]["train"]["documents"]
    assert ref["splits"]["train"]["eos_inserted"] == docs and ref["splits"]["train"]["bos_inserted"] == docs
    assert ref["splits"]["train"]["tokens"] == ref["splits"]["train"]["characters"] + 2 * docs
    assert "[BOS] before and [EOS] after each document, counted" in ref["counting"]
    # characters per row exclude the inserted specials
    x, _, _ = next(data.eval_batches("valid", 1000))
    _, chars = data.eval_units("valid")
    specials = (x == char_domain.eos_id) | (x == char_domain.bos_id)
    assert torch.equal(chars, (~specials).sum(1))


def test_mdlm_row_specials(corpus_file, char_domain):
    data = TextData(char_domain, {"path": str(corpus_file)}, seq_len=16, eos=True, row_specials=True)
    x, valid, _ = data.train_batch(0, 4)
    assert (x[:, 0] == char_domain.bos_id).all() and (x[:, -1] == char_domain.eos_id).all() and valid.all()
    assert "around every row" in data.counting()


def test_pad_mode_masks_padding(tmp_path, char_domain):
    f = tmp_path / "lines.txt"
    f.write_text("short one\n" + "a much longer line that will not fit in one row at all\n" + "mid length line\n" * 30)
    kw = dict(seq_len=24, mode="pad", bos=True, eos=True)
    data = TextData(char_domain, {"path": str(f), "document": "line", "split_fractions": [0.9, 0.1, 0.0]}, **kw)
    x, valid, _ = data.train_batch(0, 16)
    assert ((x == char_domain.vocab.pad_id) == ~valid).all()
    first = data.packed["train"]
    assert char_domain.decode(first.ids[0]) == "[BOS]short one[EOS]"
    # split overflow: the long line continues in the next row, no text is lost
    assert "".join(char_domain.decode(first.ids[i]) for i in (1, 2, 3)) == \
        "[BOS]a much longer line that will not fit in one row at all[EOS]"
    n_tokens = 1 + len("a much longer line that will not fit in one row at all") + 1
    assert first.valid[1].all() and first.valid[2].all() and int(first.valid[3].sum()) == n_tokens - 48
    assert first.truncated_tokens == 0
    trunc = TextData(char_domain, {"path": str(f), "document": "line", "split_fractions": [0.9, 0.1, 0.0]},
                     overflow="truncate", **kw)
    long_row = trunc.packed["train"].ids[1]
    assert char_domain.decode(long_row).endswith("[EOS]") and len(char_domain.decode(long_row)) > 24
    assert trunc.packed["train"].truncated_tokens == 1 + len("a much longer line that will not fit in one row at all") + 1 - 24
    # unconditional samples take their lengths from the data, and start with the fixed [BOS]
    cond = data.sample_condition(50, seed=1)
    assert set(cond.valid.sum(1).tolist()) <= set(data.packed["train"].valid.sum(1).tolist())
    assert (cond.tokens[:, 0] == char_domain.bos_id).all() and cond.fixed[:, 0].all() and cond.fixed.sum() == 50
    assert data.score_specials and data.train_batch(0, 4).fixed is None  # counted by default: no fixed mask


def test_padding_is_invisible_to_the_denoiser(char_domain):
    """Attention masks keep padding invisible: the masked cross-entropy of a padded row
    equals that of the same row without padding, whatever the padding holds."""
    from seqdiff.backbones import DiT
    from seqdiff.processes import MaskedDiffusion

    model = DiT(char_domain.vocab.size, d_model=32, n_layers=2, n_heads=2).eval()
    torch.nn.init.normal_(model.out.weight, std=0.5)
    proc = MaskedDiffusion(char_domain.vocab)
    ids = torch.tensor([char_domain.encode("hello there")])
    x_t = ids.clone()
    x_t[0, [1, 4, 8]] = char_domain.vocab.mask_id
    pad = torch.full((1, 9), char_domain.vocab.pad_id)
    valid = torch.cat([torch.ones(1, 11), torch.zeros(1, 9)], 1).bool()
    plain = proc.masked_cross_entropy(model, ids, x_t, torch.ones_like(ids, dtype=torch.bool), None)
    padded = proc.masked_cross_entropy(model, torch.cat([ids, pad], 1), torch.cat([x_t, pad], 1), valid, None)
    junk = proc.masked_cross_entropy(model, torch.cat([ids, ids[:, :9]], 1), torch.cat([x_t, ids[:, :9]], 1), valid, None)
    assert torch.allclose(plain, padded, atol=1e-5) and torch.allclose(plain, junk, atol=1e-5)
    assert plain.item() > 0


def test_builtin_pydoc_corpus_is_offline_and_stable():
    from seqdiff_recipes.text.pydoc_corpus import describe

    docs = read_documents(CorpusSpec.from_config({"builtin": "pydoc_topics"}))
    info = describe()
    assert len(docs) == info["documents"] > 50 and sum(len(d.text) for d in docs) == info["characters"] > 300_000
    assert docs[0].where.startswith("builtin:") and [d.where for d in docs] == sorted(d.where for d in docs)
    # path wins over builtin when both are given (documented in configs/data/text.yaml)
    with pytest.raises(Exception, match="no such corpus"):
        read_documents(CorpusSpec.from_config({"builtin": "pydoc_topics", "path": "/nonexistent"}))


def test_known_specials_can_be_given_instead_of_scored(tmp_path, char_domain):
    """score_specials=false: the [BOS] starting each padded row and MDLM's row [BOS]/[EOS]
    are fixed context (visible, not scored); document [EOS] stays scored."""
    f = tmp_path / "lines.txt"
    f.write_text("short one\n" + "a much longer line that will not fit in one row at all\n" + "mid length line\n" * 30)
    corpus = {"path": str(f), "document": "line", "split_fractions": [0.9, 0.1, 0.0]}
    data = TextData(char_domain, corpus, seq_len=24, mode="pad", bos=True, eos=True, score_specials=False)
    rows = data.packed["train"]
    x, valid, fixed = data._rows(rows.ids, rows.valid)
    starts = rows.ids[:, 0] == char_domain.bos_id
    assert torch.equal(fixed[:, 0], starts) and not fixed[:, 1:].any() and not starts.all()  # split rows have no BOS
    assert "the [BOS] starting each row given as context, not scored" in data.counting()
    wrap = TextData(char_domain, corpus, seq_len=16, row_specials=True, score_specials=False)
    x, valid, fixed = wrap.train_batch(0, 3)
    assert fixed[:, 0].all() and fixed[:, -1].all() and fixed.sum() == 6
    # the likelihood then counts 2 fewer tokens per row
    from seqdiff.backbones import DiT
    from seqdiff.eval.likelihood import evaluate_likelihood
    from seqdiff.processes import MaskedDiffusion

    model = DiT(char_domain.vocab.size, d_model=16, n_layers=1, n_heads=2)
    res, _, n = evaluate_likelihood(model, MaskedDiffusion(char_domain.vocab), wrap.eval_batches("valid", 8, 8))
    assert (n == 14).all() and res.num_tokens == 14 * res.num_sequences
