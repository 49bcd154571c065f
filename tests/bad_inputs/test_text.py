"""Bad input gives one clear line naming what and where (DataError/ConfigError/CheckpointError)."""

from __future__ import annotations

import json

import pytest

from seqdiff_recipes.text import TextData, TextDomain
from seqdiff_recipes.text.corpus import CorpusSpec, read_documents
from seqdiff.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU


def read(path, **kw):
    return read_documents(CorpusSpec.from_config({"path": str(path), **kw}))


def test_empty_corpus(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n\n")
    with pytest.raises(DataError, match=r"empty.txt: the corpus is empty"):
        read(tmp_path / "empty.txt")
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match=r"no files matching '\*'"):
        read(tmp_path / "d")
    with pytest.raises(DataError, match="no such corpus file or directory"):
        read(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="data.corpus.path: give a text file"):
        CorpusSpec.from_config({})


def test_non_utf8_names_file_and_byte_offset(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes("first line\ncafé au lait\n".encode("latin-1"))
    with pytest.raises(DataError) as e:
        read(f)
    msg = str(e.value)
    assert f"{f}: invalid UTF-8 at byte offset 14 (line 2, byte 0xe9)" in msg and "encoding_errors=replace" in msg
    docs = read(f, encoding_errors="replace")
    assert docs[0].text == "first line\ncaf\ufffd au lait\n"


def test_jsonl_errors_name_file_and_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps({"text": "ok"}) + "\n{not json}\n")
    with pytest.raises(DataError, match=r"c.jsonl:2: not valid JSON"):
        read(f)
    f.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"body": "no text field"}) + "\n")
    with pytest.raises(DataError, match=r"c.jsonl:2: no field 'text' \(found \['body'\]\); set data.corpus.field"):
        read(f)
    f.write_text(json.dumps({"text": 3}) + "\n")
    with pytest.raises(DataError, match=r"c.jsonl:1: field 'text' is int, expected a string"):
        read(f)


def test_bad_settings_are_config_errors(corpus_file):
    with pytest.raises(ConfigError, match="split_fractions must be 3 non-negative numbers"):
        CorpusSpec.from_config({"path": str(corpus_file), "split_fractions": [0.5, 0.2]})
    with pytest.raises(ConfigError, match=r"data.corpus: unknown keys \['paht'\]"):
        CorpusSpec.from_config({"paht": "x"})
    dom = TextDomain("char", train_corpus={"path": str(corpus_file)})
    with pytest.raises(ConfigError, match="data.mode must be one of"):
        TextData(dom, {"path": str(corpus_file)}, mode="stream")


def test_short_splits_and_missing_tokenizer_roles(tmp_path, corpus_file, gpt2_dir):
    dom = TextDomain("char", train_corpus={"path": str(corpus_file)})
    data = TextData(dom, {"path": str(corpus_file), "split_fractions": [0.99, 0.01, 0.0]}, seq_len=512)
    with pytest.raises(DataError, match=r"valid split: \d+ tokens, fewer than one row of 512"):
        next(data.eval_batches("valid"))
    with pytest.raises(ConfigError, match="needs its directory"):
        TextDomain("gpt2")
    with pytest.raises(ConfigError, match="must be trained"):
        TextDomain("bpe")


def test_unknown_character_in_held_out_text_names_the_document(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("abc abc abc")
    dom = TextDomain("char", chars="abc ", train_corpus={"path": str(f)})
    g = tmp_path / "b.txt"
    g.write_text("abc abx")
    with pytest.raises(DataError, match=r"b.txt: character 'x' at position 6"):
        TextData(dom, {"path": str(f), "valid_path": str(g)}, seq_len=4)


def test_saved_tokenizer_of_another_kind(tmp_path, corpus_file):
    TextDomain("char", path=str(tmp_path / "tok"), train_corpus={"path": str(corpus_file)})  # trains and saves
    assert (tmp_path / "tok" / "text_tokenizer.json").exists()
    with pytest.raises(ConfigError, match="holds a char tokenizer, but domain.tokenizer=bpe"):
        TextDomain("bpe", path=str(tmp_path / "tok"), train_corpus={"path": str(corpus_file)})
