"""MDLM's zero-shot protocol: the detokenisers, the rows (BOS/EOS, wrapping, dropped remainders), counting."""

from __future__ import annotations

import json

import pytest

from seqdiff_recipes.text import TextDomain
from seqdiff_recipes.text.detokenize import DETOKENIZERS
from seqdiff_recipes.text.zero_shot import ZeroShotText, guess_dataset, protocol_data, read_rows
from seqdiff.errors import ConfigError, DataError
from support.textfiles import make_text, write_tiny_gpt2

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a shared CPU


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    d = write_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))
    return TextDomain(tokenizer="gpt2", path=str(d), bos=True, eos=True)


@pytest.mark.parametrize("dataset, raw, expected", [
    ("wikitext", " The 2 @,@ 000 @-@ strong army ( of Rome ) won . \n", " The 2,000-strong army (of Rome) won.\n"),
    ("wikitext", " = = Gameplay = = \n", " == Gameplay ==\n"),
    ("wikitext", " He said \" no \" ; it was 5 @.@ 5 ° C \n", " He said \"no\"; it was 5.5°C\n"),
    ("ptb", "the company 's N shares were n't sold <unk>", "the company's 1 shares weren't sold ?"),
    ("ptb", "a N N N b", "a 1 1 1 b"),
    ("lm1b", "Visit http : / / example.com today .", "Visit http://example.com today."),
    ("lm1b", "Is it ( really ) true ?", "Is it (really) true?"),
    ("lambada", "\u201cHi,\u201d she said. ", '\n"Hi," she said.'),
    ("scientific_papers", "a @-@ b , c ( d ) .", "a-b, c (d) ."),
])
def test_detokenisers(dataset, raw, expected):
    assert DETOKENIZERS[dataset](raw) == expected


def test_rows_as_the_datasets_give_them(tmp_path):
    wiki = tmp_path / "wiki.valid.raw"
    wiki.write_text(" \n = Title = \n \n Some text . \n")
    assert read_rows(wiki, "wikitext", None, "auto", "strict") == ["", " = Title = \n", "", " Some text . \n"]
    ptb = tmp_path / "ptb.valid.txt"
    ptb.write_text(" one sentence \n\n two \n")
    assert read_rows(ptb, "ptb", None, "auto", "strict") == ["one sentence", "two"]
    papers = tmp_path / "pubmed.jsonl"
    papers.write_text(json.dumps({"article": "A @-@ B", "abstract": "x"}) + "\n")
    assert read_rows(papers, "scientific_papers", None, "auto", "strict") == ["A @-@ B"]
    assert guess_dataset(papers) == "scientific_papers" and guess_dataset(wiki) == "wikitext"
    assert guess_dataset(tmp_path / "lambada_test.jsonl") == "lambada"


def test_rows_are_mdlms_wrapped_rows(gpt2, tmp_path):
    f = tmp_path / "ptb.test.txt"
    lines = make_text(60, seed=3).splitlines()
    f.write_text("".join(f" {l} \n" for l in lines))
    L, group = 16, 7
    data = ZeroShotText(gpt2, str(f), seq_len=L, group_documents=group)
    # independently: each row detokenised + encoded + [EOS]; groups of 7 rows; chunks of L-2; remainders dropped
    eos = bos = gpt2.eos_id
    expected, dropped = [], 0
    docs = [gpt2.encode(DETOKENIZERS["ptb"](l.strip())) + [eos] for l in lines]
    for g in range(0, len(docs), group):
        stream = [t for doc in docs[g : g + group] for t in doc]
        n = len(stream) // (L - 2) * (L - 2)
        dropped += len(stream) - n
        expected += [[bos, *stream[s : s + L - 2], eos] for s in range(0, n, L - 2)]
    assert data.ids.tolist() == expected and data.dropped_tokens == dropped > 0
    x, valid, _ = next(data.eval_batches("test", batch_size=1000))
    assert valid.all() and x.shape == (len(expected), L)  # every position counted, BOS/EOS included
    assert data.reference()["protocol"]["dataset"] == "ptb" and "counted" in data.counting()
    name, chars = data.eval_units()
    assert name == "char" and len(chars) == len(expected) and int(chars.min()) > 0


def test_one_group_drops_only_the_final_remainder(gpt2, tmp_path):
    f = tmp_path / "wiki.test.raw"
    f.write_text(make_text(80, seed=1))
    whole = ZeroShotText(gpt2, str(f), seq_len=16, group_documents=0)
    grouped = ZeroShotText(gpt2, str(f), seq_len=16, group_documents=3)
    assert whole.dropped_tokens < 14 <= grouped.dropped_tokens and len(whole.ids) > len(grouped.ids)


def test_an_empty_wikitext_line_is_a_lone_eos(gpt2, tmp_path):
    f = tmp_path / "wiki.x.raw"
    f.write_text(" \n" * 5)  # five empty rows: five [EOS]; rows of L-2 = 3 of them, 2 dropped
    data = ZeroShotText(gpt2, str(f), seq_len=5)
    assert data.ids.tolist() == [[gpt2.bos_id] + [gpt2.eos_id] * 4] and data.dropped_tokens == 2


def test_protocol_data_from_a_text_section():
    text = {"_target_": "seqdiff_recipes.text.TextData", "corpus": {"path": "wiki.valid.raw", "field": "text", "format": "auto"}}
    assert protocol_data(text, dataset="auto", seq_len=1024) == {
        "_target_": "seqdiff_recipes.text.zero_shot.ZeroShotText", "path": "wiki.valid.raw", "dataset": "auto", "seq_len": 1024,
        "group_documents": 1000, "field": None, "format": "auto", "encoding_errors": "strict"}
    with pytest.raises(ConfigError, match="give data=text data.corpus.path=FILE"):
        protocol_data({"_target_": "seqdiff_recipes.dna.FastaData", "fasta": "x.fa"})


def test_too_little_text_for_one_row_is_an_error(gpt2, tmp_path):
    f = tmp_path / "ptb.tiny.txt"
    f.write_text("the fox\n")
    with pytest.raises(DataError, match="make no complete row of 1024"):
        ZeroShotText(gpt2, str(f), seq_len=1024)
