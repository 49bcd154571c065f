"""MDLM's zero-shot likelihood protocol on a local file (``eval.protocol=mdlm_zero_shot``).

MDLM (Sahoo et al. 2024, Table 3) scores its OpenWebText model on other corpora exactly as it
builds its wrapped training rows (``mdlm:dataloader.py`` ``get_dataset(wrap=True)``):

1. *rows as the dataset gives them*: WikiText one row per line (newline kept, whitespace-only
   lines as empty rows), PTB / LM1B one stripped sentence per line, LAMBADA / AG News /
   PubMed / arXiv one JSON record per line (``field``: ``text``, or ``article`` for the papers);
2. each row *detokenised* with its dataset's rules (:mod:`seqdiff_recipes.text.detokenize`);
3. tokenised without specials, followed by ``[EOS]`` (an empty row becomes a lone ``[EOS]``);
4. *grouped* ``group_documents`` rows at a time (``datasets.map(batched=True)``'s 1,000),
   each group concatenated and cut into chunks of ``L - 2`` tokens, each emitted as
   ``[BOS] chunk [EOS]``; the remainder of every group is **dropped**;
5. every position of every row is scored, the inserted ``[BOS]``/``[EOS]`` included, and the
   perplexity is ``exp`` of the token-weighted mean NELBO (MDLM's ``val/ppl``).

MDLM ran step 4 in ``num_proc`` = CPU-count shards, which moves the group boundaries (and so
which tokens are dropped) with the machine; here there is one shard. MDLM used one Monte-Carlo
draw of t per row; seqdiff's evaluator averages ``eval.draws`` stratified draws and reports a CI
(same bound, lower variance). Which split MDLM used: ``validation`` for WikiText, PTB and the
papers, ``test`` for LM1B and AG News, the LAMBADA test file (``docs/public_models.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

from seqdiff_recipes.text.corpus import jsonl_text_records
from seqdiff_recipes.text.detokenize import DETOKENIZERS
from seqdiff.data import Batch, DataSource
from seqdiff.errors import ConfigError, DataError

#: file-name fragments -> dataset, for ``dataset: auto``
GUESSES = (("wiki", "wikitext"), ("ptb", "ptb"), ("penn", "ptb"), ("lambada", "lambada"), ("lm1b", "lm1b"),
           ("1-billion", "lm1b"), ("news.en", "lm1b"), ("ag_news", "ag_news"), ("agnews", "ag_news"),
           ("pubmed", "scientific_papers"), ("arxiv", "scientific_papers"), ("openwebtext", "owt"), ("owt", "owt"))
JSON_FIELD = {"scientific_papers": "article"}


def guess_dataset(path: Path) -> str:
    name = path.name.lower()
    for frag, dataset in GUESSES:
        if frag in name:
            return dataset
    raise ConfigError(f"eval.protocol_dataset: cannot tell which of MDLM's datasets {path.name!r} is; "
                      f"give eval.protocol_dataset={'|'.join(sorted(DETOKENIZERS))}")


def read_rows(path: Path, dataset: str, field: str | None, fmt: str, errors: str) -> list[str]:
    """The rows of ``path`` as the Hugging Face dataset MDLM loaded would give them."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (the zero-shot protocol reads one local text or JSONL file)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: invalid UTF-8 at byte offset {e.start}; convert it or set "
                        "data.corpus.encoding_errors=replace") from None
    jsonl = fmt == "jsonl" or (fmt == "auto" and path.suffix.lower() in (".jsonl", ".ndjson", ".json"))
    if jsonl:
        key = field or JSON_FIELD.get(dataset, "text")
        return [value for _, _, value in jsonl_text_records(path, text, key, "data.corpus.field")]
    if dataset == "wikitext":  # HF's wikitext builder: every line, newline kept, blank -> ""
        return [line if line.strip() else "" for line in text.splitlines(keepends=True)]
    return [line.strip() for line in text.splitlines() if line.strip()]


class ZeroShotText(DataSource):
    """Held-out rows of one file under MDLM's zero-shot protocol (module docstring).

    Args:
        domain: a text domain with ``bos_id``/``eos_id`` (GPT-2 for MDLM-OWT: both ``<|endoftext|>``).
        path: the text or JSONL file (the whole file is the evaluation set, whatever the split name).
        dataset: which detokeniser: ``auto`` (from the file name), or one of
            :data:`seqdiff_recipes.text.detokenize.DETOKENIZERS`.
        seq_len: row length L (MDLM-OWT: 1024).
        group_documents: rows concatenated per group before chunking (MDLM: 1000; 0 = one group).
        field: JSONL field (default ``text``; ``article`` for the scientific papers).
    """

    unit = "token"

    def __init__(self, domain, path: str, dataset: str = "auto", seq_len: int = 1024, group_documents: int = 1000,
                 field: str | None = None, format: str = "auto", encoding_errors: str = "strict", seed: int = 0) -> None:
        if not path:
            raise ConfigError("eval.protocol=mdlm_zero_shot: give the file to score: data.corpus.path=FILE")
        self.path = Path(path).expanduser()
        self.dataset = guess_dataset(self.path) if dataset == "auto" else dataset
        if self.dataset not in DETOKENIZERS:
            raise ConfigError(f"eval.protocol_dataset={dataset!r}: choose auto or one of {', '.join(sorted(DETOKENIZERS))}")
        if seq_len < 3:
            raise ConfigError(f"zero-shot rows need seq_len >= 3 ([BOS] + text + [EOS]), got {seq_len}")
        bos, eos = domain.bos_id, domain.eos_id
        if bos is None or eos is None:
            raise ConfigError(f"eval.protocol=mdlm_zero_shot: the {domain.name} tokenizer needs "
                              "BOS and EOS tokens")
        self.domain, self.seq_len, self.group = domain, int(seq_len), int(group_documents)
        rows = read_rows(self.path, self.dataset, field, format, encoding_errors)
        if not rows:
            raise DataError(f"{self.path}: no rows to score")
        detok = DETOKENIZERS[self.dataset]
        texts = [detok(r) for r in rows] if detok is not None else rows
        tok = domain.tokenizer
        where = [f"{self.path}:{i + 1}" for i in range(len(texts))]
        encoded = list(tok.encode_batch_with_counts(texts, where=where))
        self.documents = len(encoded)
        self.ids, self.chars, self.dropped_tokens, self.stream_tokens = self._rows(encoded, bos, eos)
        if len(self.ids) == 0:
            raise DataError(f"{self.path}: {self.stream_tokens} tokens in {self.documents} rows make no complete row of "
                            f"{self.seq_len} (MDLM drops each group's remainder; try data.group_documents=0)")
        print(f"data: {self.path} as MDLM zero-shot {self.dataset}: {self.documents:,} rows -> {len(self.ids):,} rows of "
              f"{self.seq_len} tokens ({self.dropped_tokens:,} of {self.stream_tokens:,} stream tokens dropped)", file=sys.stderr)

    def _rows(self, encoded, bos: int, eos: int) -> tuple[Tensor, Tensor, int, int]:
        n = self.seq_len - 2
        groups = [encoded] if self.group <= 0 else [encoded[i : i + self.group] for i in range(0, len(encoded), self.group)]
        rows, chars, dropped, total = [], [], 0, 0
        for group in groups:
            ids = [t for doc, _ in group for t in (*doc, eos)]
            cnt = [c for doc, cs in group for c in (*cs, 0)]
            total += len(ids)
            keep = (len(ids) // n) * n
            dropped += len(ids) - keep
            for s in range(0, keep, n):
                rows.append([bos, *ids[s : s + n], eos])
                chars.append(sum(cnt[s : s + n]))
        x = torch.tensor(rows, dtype=torch.long).view(-1, self.seq_len)
        return x, torch.tensor(chars, dtype=torch.long), dropped, total

    # ------------------------------------------------------------------ data-source contract
    def train_batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Batch:
        raise ConfigError("eval.protocol=mdlm_zero_shot is an evaluation protocol; it has no training rows")

    def _take(self, max_sequences: int | None) -> tuple[Tensor, Tensor]:
        n = len(self.ids) if max_sequences is None else min(len(self.ids), int(max_sequences))
        return self.ids[:n], self.chars[:n]

    def eval_batches(self, split: str = "test", batch_size: int = 64, max_sequences: int | None = None) -> Iterator[Batch]:
        x, _ = self._take(max_sequences)
        for i in range(0, len(x), batch_size):
            rows = x[i : i + batch_size]
            yield Batch(rows, torch.ones_like(rows, dtype=torch.bool))

    def eval_units(self, split: str = "test", max_sequences: int | None = None) -> tuple[str, Tensor]:
        """Characters of detokenised text per row (specials count 0)."""
        return "char", self._take(max_sequences)[1]

    def real_rows(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        x, _ = self._take(n)
        return x, torch.ones_like(x, dtype=torch.bool)

    def counting(self) -> str:
        return (f"MDLM zero-shot ({self.dataset}): every row is [BOS] + {self.seq_len - 2} tokens + [EOS]; all "
                f"{self.seq_len} positions counted, the inserted [BOS]/[EOS] included (as MDLM did); [EOS] after every "
                f"source row; the remainder of every {self.group or 'single'}-row group dropped "
                f"({self.dropped_tokens} tokens); the whole file is the evaluation set")

    def reference(self) -> dict:
        return {"counting": self.counting(),
                "protocol": {"name": "mdlm_zero_shot", "dataset": self.dataset, "seq_len": self.seq_len,
                             "group_documents": self.group, "path": str(self.path)},
                "rows": int(len(self.ids)), "source_rows": self.documents, "stream_tokens": self.stream_tokens,
                "dropped_tokens": self.dropped_tokens}


def protocol_data(data: dict, *, dataset: str = "auto", seq_len: int = 1024) -> dict:
    """The ``data`` section for ``eval.protocol=mdlm_zero_shot``, from a text data section."""
    if data.get("_target_") == "seqdiff_recipes.text.zero_shot.ZeroShotText":
        return {**data, "dataset": data.get("dataset", dataset) if dataset == "auto" else dataset}
    corpus = data.get("corpus") if isinstance(data.get("corpus"), dict) else None
    if corpus is None or not corpus.get("path"):
        raise ConfigError("eval.protocol=mdlm_zero_shot scores one text file: give data=text data.corpus.path=FILE")
    return {"_target_": "seqdiff_recipes.text.zero_shot.ZeroShotText", "path": corpus["path"], "dataset": dataset,
            "seq_len": int(seq_len), "group_documents": 1000, "field": corpus.get("field") if corpus.get("field") != "text" else None,
            "format": corpus.get("format", "auto"), "encoding_errors": corpus.get("encoding_errors", "strict")}
