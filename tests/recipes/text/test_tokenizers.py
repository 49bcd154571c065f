"""Tokenizers: training, published-file loading (and the transformers-5 empty-tokenizer
trap), special-token roles, save/load, character counts."""

from __future__ import annotations

import json

import pytest

from seqdiff_recipes.text.tokenizers import TextTokenizer, byte_tokenizer, load_pretrained, same_tokenizer, train_tokenizer
from seqdiff.errors import ConfigError, DataError
from support.textfiles import BERT_TOKENS, make_text

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU

TEXT = make_text(200)


def test_char_tokenizer_round_trip_and_unknown_character():
    tok = train_tokenizer("char", [TEXT])
    assert tok.tokens[: len(set(TEXT))] == sorted(set(TEXT))
    ids = tok.encode("The fox.")
    assert tok.decode(ids) == "The fox." and all(i < len(set(TEXT)) for i in ids)
    assert {tok.id(r) for r in ("mask", "pad", "bos", "eos")} == set(range(len(set(TEXT)), len(tok)))
    with pytest.raises(DataError, match=r"character 'Z' at position 3"):
        tok.encode("TheZ", where="prompt")


def test_byte_tokenizer_is_bytes():
    tok = byte_tokenizer()
    text = "héllo ✓\n"
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert tok.decode(ids) == text
    assert len(tok) == 260 and tok.id("mask") == 256 and tok.id("pad") == 257


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_trained_subword_tokenizers(kind):
    tok = train_tokenizer(kind, [TEXT], vocab_size=300, min_frequency=2)
    assert 100 < len(tok) <= 300
    # specials first, fixed ids, independent of the corpus
    assert [tok.id(r) for r in ("pad", "mask", "bos", "eos")] == [0, 1, 2, 3]
    ids = tok.encode("the quick brown fox")
    assert len(ids) < len("the quick brown fox")  # merges happened
    back = tok.decode(ids)
    assert back.replace(" ", "") == "thequickbrownfox"
    # a literal special-token string in text is text, not the control token
    assert tok.id("mask") not in tok.encode("a [MASK] b")


def test_subword_training_is_deterministic():
    a = train_tokenizer("bpe", [TEXT], vocab_size=300)
    b = train_tokenizer("bpe", [TEXT], vocab_size=300)
    assert same_tokenizer(a, b) is None


def test_character_counts_sum_to_text_length():
    text = "Hé said: 'whatever!'  \n\tdone ✓"
    for tok in (train_tokenizer("bpe", [TEXT + text], vocab_size=300), train_tokenizer("wordpiece", [TEXT], vocab_size=300),
                byte_tokenizer(), train_tokenizer("char", [text])):
        ids, counts = tok.encode_with_counts(text)
        assert len(ids) == len(counts) and sum(counts) == len(text), tok.kind
        assert all(c >= 0 for c in counts)


def test_save_and_load_round_trip(tmp_path):
    for kind in ("char", "bpe", "wordpiece"):
        tok = train_tokenizer(kind, [TEXT], vocab_size=300)
        tok.save(tmp_path / kind)
        back = TextTokenizer.load(tmp_path / kind)
        assert same_tokenizer(tok, back) is None and back.kind == kind and back.roles == tok.roles
        assert back.encode("the lazy dog") == tok.encode("the lazy dog")


def test_gpt2_files_load_with_vocab_and_merges(gpt2_dir):
    tok = load_pretrained("gpt2", gpt2_dir)
    n = len(json.loads((gpt2_dir / "vocab.json").read_text()))
    assert len(tok) == n + 2  # + [MASK] + [PAD]: GPT-2 has neither
    assert tok.roles["bos"] == tok.roles["eos"] == "<|endoftext|>"
    assert tok.id("eos") == n - 1 and tok.id("mask") == n and tok.id("pad") == n + 1
    ids = tok.encode(" the hello")
    assert ids[0] == 258  # the "Ġthe" merge of the tiny vocabulary
    assert tok.decode(ids) == " the hello"


def test_the_empty_tokenizer_trap_is_caught(gpt2_dir, bert_dir):
    """transformers 5 ignores vocab_file=/merges_file=: the resulting tokenizer is (almost)
    empty. Our loader uses vocab=/merges= and checks the size against the file."""
    from transformers import BertTokenizerFast, GPT2TokenizerFast

    from seqdiff_recipes.text import tokenizers as T

    trap = GPT2TokenizerFast(vocab_file=str(gpt2_dir / "vocab.json"), merges_file=str(gpt2_dir / "merges.txt"))
    assert len(trap) <= 1  # the trap is real in this transformers version
    with pytest.raises(ConfigError, match="silently ignores vocab_file"):
        T._check_size(trap, 262, gpt2_dir, "vocab.json")
    trap_b = BertTokenizerFast(vocab_file=str(bert_dir / "vocab.txt"))
    with pytest.raises(ConfigError, match="tokenizer loaded with"):
        T._check_size(trap_b, len(BERT_TOKENS), bert_dir, "vocab.txt")
    # ... and the real loaders produce full vocabularies
    assert len(load_pretrained("gpt2", gpt2_dir)) == 264
    assert len(load_pretrained("bert", bert_dir)) == len(BERT_TOKENS)


def test_bert_files_keep_bert_ids(bert_dir):
    tok = load_pretrained("bert", bert_dir)
    assert (tok.id("pad"), tok.id("unk"), tok.id("bos"), tok.id("eos"), tok.id("mask")) == (0, 2, 3, 4, 5)
    ids = tok.encode("The Fox!")  # uncased: lower-cased
    assert ids == [BERT_TOKENS.index("the"), BERT_TOKENS.index("fox"), BERT_TOKENS.index("!")]
    assert tok.encode("foxs") == [BERT_TOKENS.index("fox"), BERT_TOKENS.index("##s")]
    assert tok.encode("zzq") == [tok.id("unk")]  # WordPiece: an unsplittable word is [UNK]


def test_tokenizer_directory_missing_files(tmp_path, gpt2_dir):
    (gpt2_dir / "merges.txt").unlink()
    with pytest.raises(ConfigError, match=r"GPT-2 tokenizer directory lacks merges.txt \(has: vocab.json\)"):
        load_pretrained("gpt2", gpt2_dir)
    with pytest.raises(ConfigError, match="tokenizer directory not found"):
        load_pretrained("bert", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="lacks vocab.txt"):
        load_pretrained("bert", tmp_path / "empty")
    with pytest.raises(ConfigError, match="no saved tokenizer"):
        TextTokenizer.load(tmp_path / "empty")


def test_same_tokenizer_reports_the_first_difference():
    a = train_tokenizer("char", ["abc"])
    b = train_tokenizer("char", ["abd"])
    assert same_tokenizer(a, b) == "token 2 is 'c' vs 'd'"
