"""Turning tokenised documents into fixed-length rows: ``wrap`` and ``pad``.

``wrap`` (MDLM's OpenWebText setup, "sequence packing"): documents are concatenated into
one stream per split, each preceded by ``[BOS]`` if ``bos`` and followed by ``[EOS]`` if
``eos``; rows are windows of that stream. Every position is a real token.
``row_specials`` reproduces MDLM exactly: each row is ``[BOS] + L-2 stream tokens + [EOS]``
(trivially predictable tokens that MDLM counted in its perplexity).

``pad`` (MDLM's LM1B setup): one document per row, ``[BOS]``/``[EOS]`` around it,
then ``[PAD]`` up to ``L``; padding is excluded from attention and from the loss (MDLM
attended to it). Longer documents are ``split`` into several rows (no text lost) or
``truncate``\\ d (MDLM; the dropped tokens are counted and reported).

Alongside the ids, every token carries the number of characters of document text it
stands for (0 for inserted specials), so the evaluation can divide by characters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Packed:
    """Token ids, per-token character counts and where specials were inserted."""

    ids: Tensor  # [n] (wrap) or [rows, L] (pad)
    chars: Tensor  # same shape, int32
    valid: Tensor | None = None  # pad mode only
    bos_inserted: int = 0
    eos_inserted: int = 0
    truncated_tokens: int = 0
    documents: int = 0
    row_document: Tensor | None = None  # pad mode: the index (in the documents given) of each row's document


def wrap_stream(docs: list[tuple[list[int], list[int]]], *, bos_id: int | None, eos_id: int | None) -> Packed:
    """One stream: ``[BOS]? doc [EOS]?`` for every document, in order."""
    ids: list[int] = []
    chars: list[int] = []
    nb = ne = 0
    for tok, cnt in docs:
        if not tok:
            continue
        if bos_id is not None:
            ids.append(bos_id)
            chars.append(0)
            nb += 1
        ids.extend(tok)
        chars.extend(cnt)
        if eos_id is not None:
            ids.append(eos_id)
            chars.append(0)
            ne += 1
    return Packed(torch.tensor(ids, dtype=torch.long), torch.tensor(chars, dtype=torch.int32),
                  bos_inserted=nb, eos_inserted=ne, documents=sum(1 for t, _ in docs if t))


def pad_rows(
    docs: list[tuple[list[int], list[int]]],
    seq_len: int,
    *,
    pad_id: int,
    bos_id: int | None,
    eos_id: int | None,
    overflow: str = "split",
) -> Packed:
    """One row per document (or per ``seq_len`` piece of it when ``overflow='split'``)."""
    rows: list[tuple[list[int], list[int]]] = []
    row_doc: list[int] = []
    nb = ne = dropped = 0
    for d, (tok, cnt) in enumerate(docs):
        if not tok:
            continue
        ids = ([bos_id] if bos_id is not None else []) + list(tok) + ([eos_id] if eos_id is not None else [])
        ch = ([0] if bos_id is not None else []) + list(cnt) + ([0] if eos_id is not None else [])
        if len(ids) <= seq_len or overflow == "split":
            nb += bos_id is not None
            ne += eos_id is not None
            for s in range(0, len(ids), seq_len):
                rows.append((ids[s : s + seq_len], ch[s : s + seq_len]))
                row_doc.append(d)
        else:  # truncate, as MDLM's tokenizer(truncation=True) does: the tail is lost
            nb += bos_id is not None
            keep_ids, keep_ch = ids[:seq_len], ch[:seq_len]
            if eos_id is not None:  # keep the end marker, so rows still say where text stops
                keep_ids[-1], keep_ch[-1] = eos_id, 0
                ne += 1
            dropped += len(ids) - seq_len
            rows.append((keep_ids, keep_ch))
            row_doc.append(d)
    x = torch.full((len(rows), seq_len), pad_id, dtype=torch.long)
    c = torch.zeros((len(rows), seq_len), dtype=torch.int32)
    valid = torch.zeros((len(rows), seq_len), dtype=torch.bool)
    for r, (ids, ch) in enumerate(rows):
        x[r, : len(ids)] = torch.tensor(ids)
        c[r, : len(ch)] = torch.tensor(ch, dtype=torch.int32)
        valid[r, : len(ids)] = True
    return Packed(x, c, valid, bos_inserted=nb, eos_inserted=ne, truncated_tokens=dropped,
                  documents=sum(1 for t, _ in docs if t), row_document=torch.tensor(row_doc, dtype=torch.long))
