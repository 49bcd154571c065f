"""``seqdiff tokenizer train|show``: train a tokenizer on a corpus once, reuse it by path.

    seqdiff tokenizer train --corpus input.txt --kind bpe --vocab-size 4096 --out tok/shakespeare-bpe
    seqdiff train experiment=text_bpe data.corpus.path=input.txt domain.path=tok/shakespeare-bpe

Training uses the corpus's training split only (same split settings as the data
config, so the held-out text is never seen), except ``char``, whose alphabet is every
character of the corpus (as nanoGPT) so held-out text always encodes.
"""

from __future__ import annotations

import argparse
import sys
import time

from seqdiff_recipes.text.corpus import CorpusSpec, read_documents, split_corpus
from seqdiff_recipes.text.tokenizers import TextTokenizer, load_pretrained, train_tokenizer
from seqdiff.errors import SeqdiffError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqdiff tokenizer", description="train or inspect a text tokenizer")
    sub = p.add_subparsers(dest="action", required=True)
    t = sub.add_parser("train", help="train a tokenizer on a corpus and save it to a directory")
    t.add_argument("--corpus", required=True, help="text file, directory or JSONL file")
    t.add_argument("--kind", default="bpe", choices=["char", "byte", "bpe", "wordpiece"])
    t.add_argument("--vocab-size", type=int, default=8192)
    t.add_argument("--min-frequency", type=int, default=2)
    t.add_argument("--lowercase", action="store_true")
    t.add_argument("--format", default="auto", choices=["auto", "text", "jsonl"])
    t.add_argument("--field", default="text", help="JSONL field holding the text")
    t.add_argument("--document", default="file", choices=["file", "line", "paragraph"])
    t.add_argument("--split-by", default="characters", choices=["characters", "documents"])
    t.add_argument("--split-fractions", default="0.9,0.05,0.05", help="train,valid,test")
    t.add_argument("--encoding-errors", default="strict", choices=["strict", "replace"])
    t.add_argument("--out", required=True, help="directory to write tokenizer.json + text_tokenizer.json")
    s = sub.add_parser("show", help="print a saved (or GPT-2/BERT/HF) tokenizer's size, specials and an example")
    s.add_argument("path")
    s.add_argument("--kind", default=None, choices=[None, "gpt2", "bert", "hf"], help="for unsaved published files")
    s.add_argument("--text", default="Hello, world!")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.action == "train":
            spec = CorpusSpec.from_config({
                "path": args.corpus, "format": args.format, "field": args.field, "document": args.document,
                "split_by": args.split_by, "encoding_errors": args.encoding_errors,
                "split_fractions": [float(v) for v in args.split_fractions.split(",")],
            })
            t0 = time.perf_counter()
            docs = read_documents(spec) if args.kind == "char" else split_corpus(spec).train
            tok = train_tokenizer(args.kind, (d.text for d in docs), vocab_size=args.vocab_size,
                                  min_frequency=args.min_frequency, lowercase=args.lowercase)
            tok.info["corpus"] = spec.describe()
            tok.save(args.out)
            print(f"trained {args.kind} tokenizer: {len(tok)} ids, specials {tok.roles}, "
                  f"{time.perf_counter() - t0:.1f} s -> {args.out}")
        else:
            tok = load_pretrained(args.kind, args.path) if args.kind else TextTokenizer.load(args.path)
            ids = tok.encode(args.text)
            print(f"{tok.kind}: {len(tok)} ids; roles {tok.roles}")
            print(f"{args.text!r} -> {ids} -> {tok.decode(ids)!r}")
    except SeqdiffError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
