"""Tiny corpora and tokenizer files written on the fly (the text tests never read ../shared)."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ("the quick brown fox jumps over lazy dog and then runs far away from home while "
         "a small bird sings its song in the early morning light").split()


def make_text(n_sentences: int = 200, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        lines.append(" ".join(words).capitalize() + rng.choice([".", "!", "?"]))
    return "\n".join(lines) + "\n"


def write_tiny_gpt2(d: Path) -> Path:
    """A GPT-2-format vocab.json/merges.txt: the 256 byte symbols, five merges, <|endoftext|>."""
    from seqdiff_recipes.text.tokenizers import bytes_to_unicode

    d.mkdir(parents=True, exist_ok=True)
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("l", "l"), ("o", "r")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    return d


BERT_TOKENS = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "?", "'",
               *"abcdefghijklmnopqrstuvwxyz", "the", "quick", "brown", "fox", "hello", "world", "##s", "##ing", "##ed"]


def write_tiny_bert(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.txt").write_text("\n".join(BERT_TOKENS) + "\n")
    return d


def write_tiny_roberta(d: Path) -> Path:
    """A RoBERTa-style tokenizer saved with save_pretrained: <s>=0 <pad>=1 </s>=2 <unk>=3 ... <mask>=last."""
    from transformers import RobertaTokenizer

    src = write_tiny_gpt2(d / "src")
    vocab = json.loads((src / "vocab.json").read_text())
    del vocab["<|endoftext|>"]
    rv = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{k: v + 4 for k, v in vocab.items()}}
    rv["<mask>"] = len(rv)
    (src / "vocab.json").write_text(json.dumps(rv))
    tok = RobertaTokenizer(vocab=str(src / "vocab.json"), merges=str(src / "merges.txt"))
    out = d / "roberta"
    tok.save_pretrained(str(out))
    return out


def text_config_fixture(tmp_path: Path) -> list[str]:
    """For tests/configs/test_configs.py: a tiny corpus plus one tokenizer directory that serves every
    text domain option (GPT-2 vocab.json/merges.txt, BERT vocab.txt, a RoBERTa HF tokenizer;
    trainable kinds save theirs there)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(300))
    tok = tmp_path / "tok"
    roberta = write_tiny_roberta(tmp_path / "rob")
    tok.mkdir()
    for f in roberta.iterdir():
        (tok / f.name).write_bytes(f.read_bytes())
    write_tiny_gpt2(tok)
    write_tiny_bert(tok)
    return [f"data.corpus.path={corpus}", f"domain.path={tok}"]
