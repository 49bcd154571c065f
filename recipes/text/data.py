"""The text data source: corpus -> split -> tokens -> wrapped or padded rows.

``train_batch(step, B)`` is a pure function of ``(seed, step)``: wrapped rows start at
random offsets of the training stream (nanoGPT), padded rows are drawn uniformly.
``eval_batches`` tiles each held-out stream without overlap (the final partial window is
dropped: see :class:`seqdiff_recipes.windows.WindowData`) or lists its padded rows in order.

What the likelihood counts, stated in :meth:`reference` and printed by ``seqdiff eval``:
every position with ``valid=True`` is scored, i.e. document tokens plus the ``[BOS]`` /
``[EOS]`` this policy inserted (MDLM counted its inserted BOS/EOS too; our default
inserts no BOS, and EOS only as a document separator). Padding is never scored.
:meth:`eval_units` gives the characters of document text behind each row (specials
count 0), so the same NELBO is also reported in bits per character, which does not
depend on the tokenizer.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Iterator

import torch
from torch import Tensor

from seqdiff_recipes.text.corpus import SPLITS, CorpusSpec, split_corpus
from seqdiff_recipes.text.domain import TextDomain
from seqdiff_recipes.text.packing import Packed, pad_rows, wrap_stream
from seqdiff_recipes.windows import WindowData
from seqdiff.data import Batch, DataSource
from seqdiff.errors import ConfigError, DataError
from seqdiff.labels import LabelSpec
from seqdiff.utils.seeding import generator

MODES = ("wrap", "pad")


class TextData(DataSource):
    """Rows of ``seq_len`` tokens from a text corpus.

    Args:
        domain: a :class:`seqdiff_recipes.text.TextDomain` (any domain with ``encode``, ``vocab``
            and ``bos_id``/``eos_id`` works).
        corpus: corpus and split settings, see :class:`seqdiff_recipes.text.corpus.CorpusSpec`.
        seq_len: row length in tokens.
        mode: ``wrap`` or ``pad`` (see :mod:`seqdiff_recipes.text.packing`).
        bos, eos: insert ``[BOS]`` before / ``[EOS]`` after every document.
        row_specials: wrap only; MDLM's ``[BOS] ... [EOS]`` around every row.
        overflow: pad only; ``split`` long documents over several rows or ``truncate``.
        score_specials: ``False`` gives the specials whose position is known in advance
            (the row [BOS]/[EOS] of ``row_specials``; in pad mode the [BOS] starting a
            row) as fixed context: visible, never masked or scored (bd3lms'
            ``ignore_bos``). [EOS] after a document carries information (where the
            text ends) and is always scored.
        label_field: JSONL only, with ``mode=pad``: each record's field ``label_field`` is its
            label (``Batch.label``; every row of a document carries it). The names are the
            distinct labels of the training documents, sorted; a record without the field, or
            a held-out one whose label no training document has, is a one-line error naming
            the file and line.
        seed: training-row placement.
    """

    unit = "token"

    def __init__(
        self,
        domain,
        corpus: dict | CorpusSpec,
        seq_len: int = 256,
        mode: str = "wrap",
        bos: bool = False,
        eos: bool = True,
        row_specials: bool = False,
        overflow: str = "split",
        score_specials: bool = True,
        label_field: str | None = None,
        seed: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"data.mode must be one of {MODES}, got {mode!r}")
        if overflow not in ("split", "truncate"):
            raise ConfigError(f"data.overflow must be split or truncate, got {overflow!r}")
        if row_specials and mode != "wrap":
            raise ConfigError("data.row_specials is MDLM's wrapped-row format; with mode=pad use bos/eos")
        n_row = 2 if row_specials else 0
        if seq_len < 1 + n_row:
            raise ConfigError(f"data.seq_len must be at least {1 + n_row}, got {seq_len}")
        self.domain = domain
        self.spec = CorpusSpec.from_config(corpus)
        if label_field not in (None, ""):
            if mode != "pad":
                raise ConfigError(f"data.label_field={label_field}: labels need data.mode=pad (one document per row); "
                                  "a wrapped row spans documents")
            self.spec = replace(self.spec, label_field=str(label_field))
        self.seq_len, self.mode, self.seed = int(seq_len), mode, int(seed)
        self.bos, self.eos, self.row_specials, self.overflow = bool(bos), bool(eos), bool(row_specials), overflow
        self.score_specials = bool(score_specials)
        need = [r for r, on in (("bos", bos or row_specials), ("eos", eos or row_specials)) if on]
        for role in need:
            rid = domain.bos_id if role == "bos" else domain.eos_id
            if rid is None:
                raise ConfigError(f"data.{role}: the {domain.name} tokenizer has no {role.upper()} token")
            if rid in domain.vocab.never_generate:
                raise ConfigError(f"data inserts [{role.upper()}] but the domain marks it never-generated; "
                                  f"set domain.{role}=true")
        self.pad_id = domain.vocab.pad_id
        t0 = time.perf_counter()
        splits = split_corpus(self.spec)
        self._sizes = splits.sizes()
        self.packed: dict[str, Packed] = {}
        for s in SPLITS:
            docs = splits.get(s)
            enc = _encode(domain, docs)
            bos_id = domain.bos_id if bos else None
            eos_id = domain.eos_id if eos else None
            if mode == "wrap":
                self.packed[s] = wrap_stream(enc, bos_id=bos_id, eos_id=eos_id)
            else:
                self.packed[s] = pad_rows(enc, self.seq_len, pad_id=self.pad_id, bos_id=bos_id, eos_id=eos_id, overflow=overflow)
        self.row_labels = self._label_rows(splits) if self.spec.label_field else None
        self.prepare_seconds = time.perf_counter() - t0
        if self._num_tokens("train") == 0:
            raise DataError(f"{self.spec.path or self.spec.builtin}: the training split has no tokens")
        self._content_len = self.seq_len - n_row
        if mode == "wrap":
            streams = {s: [p.ids] for s, p in self.packed.items() if len(p.ids)}
            try:
                self._windows = WindowData(streams, self._content_len, seed=self.seed, pad_id=self.pad_id)
            except ValueError as e:
                raise DataError(f"{self.spec.path or self.spec.builtin}: {e}; lower data.seq_len") from None
        print(f"data: {self.describe_sizes()} ({self.prepare_seconds:.1f} s)", file=sys.stderr)

    def _label_rows(self, splits) -> dict[str, Tensor]:
        """The label vocabulary (:attr:`labels`, from the training documents) and each split's
        row labels ``[rows, 1]``."""
        names = sorted({d.label for d in splits.get("train")})
        if not names:
            raise DataError(f"{self.spec.path}: no training documents to take label names from")
        self.labels = LabelSpec(((self.spec.label_field, tuple(names)),))
        index = {n: i for i, n in enumerate(names)}
        out = {}
        for s in SPLITS:
            docs = splits.get(s)
            for d in docs:
                if d.label not in index:
                    raise DataError(f"{d.where}: label {d.label!r} of field {self.spec.label_field!r} is not among the "
                                    f"training documents' labels ({', '.join(names)})")
            ids = torch.tensor([index[d.label] for d in docs], dtype=torch.long)
            out[s] = ids[self.packed[s].row_document].unsqueeze(1) if len(ids) else torch.zeros(0, 1, dtype=torch.long)
        return out

    def label_prior(self) -> dict[str, Tensor] | None:
        """Each label's share of the training rows."""
        if self.row_labels is None:
            return None
        y = self.row_labels["train"][:, 0]
        counts = torch.bincount(y, minlength=self.labels.sizes[0]).double()
        return {self.labels.field_names[0]: counts / counts.sum()}

    # ------------------------------------------------------------------ sizes
    def _num_tokens(self, split: str) -> int:
        p = self.packed[split]
        return int(p.valid.sum()) if p.valid is not None else len(p.ids)

    def num_tokens(self, split: str) -> int:
        return self._num_tokens(split)

    def describe_sizes(self) -> str:
        return ", ".join(f"{s} {self._sizes[s]['characters']:,} chars / {self._num_tokens(s):,} tokens" for s in SPLITS)

    # ------------------------------------------------------------------ rows
    def _add_row_specials(self, x: Tensor) -> Tensor:
        if not self.row_specials:
            return x
        B = x.shape[0]
        bos = torch.full((B, 1), self.domain.bos_id, dtype=torch.long)
        eos = torch.full((B, 1), self.domain.eos_id, dtype=torch.long)
        return torch.cat([bos, x, eos], dim=1)

    def known_specials(self, x: Tensor) -> Tensor:
        """Positions whose token is known before reading the text: the row [BOS]/[EOS] of
        ``row_specials``; in pad mode a [BOS] in the first position."""
        known = torch.zeros_like(x, dtype=torch.bool)
        if self.row_specials:
            known[:, 0] = known[:, -1] = True
        elif self.mode == "pad" and self.bos:
            known[:, 0] = x[:, 0] == self.domain.bos_id  # continuation rows of split documents have none
        return known

    def _rows(self, x: Tensor, valid: Tensor, label: Tensor | None = None) -> Batch:
        return Batch(x, valid, None if self.score_specials else self.known_specials(x), label)

    def train_batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Batch:
        if self.mode == "wrap":
            x = self._windows.train_batch(step, batch_size, rank=rank, world_size=world_size).x0
            x = self._add_row_specials(x)
            return self._rows(x, torch.ones_like(x, dtype=torch.bool))
        p = self.packed["train"]
        gen = generator(self.seed, int(step))
        idx = torch.randint(len(p.ids), (batch_size * world_size,), generator=gen)[rank * batch_size : (rank + 1) * batch_size]
        return self._rows(p.ids[idx], p.valid[idx], None if self.row_labels is None else self.row_labels["train"][idx])

    def _eval_rows(self, split: str, max_sequences: int | None) -> tuple[Tensor, Tensor, Tensor]:
        """Held-out rows, their valid masks and characters per row."""
        if split not in SPLITS:
            raise ConfigError(f"eval split must be one of {SPLITS}, got {split!r}")
        p = self.packed[split]
        if self.mode == "wrap":
            L = self._content_len
            n = (len(p.ids) // L) * L
            if len(p.ids) == 0:
                raise DataError(f"the {split} split is empty (data.corpus.split_fractions gives it nothing); "
                                f"evaluate another split, e.g. eval.split={'valid' if split != 'valid' else 'test'}")
            if n == 0:
                raise DataError(
                    f"{split} split: {len(p.ids)} tokens, fewer than one row of {L}; "
                    "lower data.seq_len or give it a larger share (data.corpus.split_fractions)"
                )
            x = self._add_row_specials(p.ids[:n].view(-1, L))
            chars = p.chars[:n].view(-1, L).sum(1)
            valid = torch.ones_like(x, dtype=torch.bool)
        else:
            if len(p.ids) == 0:
                raise DataError(f"the {split} split is empty (data.corpus.split_fractions gives it nothing); "
                                f"evaluate another split, e.g. eval.split={'valid' if split != 'valid' else 'test'}")
            x, valid, chars = p.ids, p.valid, p.chars.sum(1)
        if max_sequences is not None:
            x, valid, chars = x[:max_sequences], valid[:max_sequences], chars[:max_sequences]
        return x, valid, chars.long()

    def eval_batches(self, split: str = "valid", batch_size: int = 64, max_sequences: int | None = None) -> Iterator[Batch]:
        x, valid, _ = self._eval_rows(split, max_sequences)
        y = None if self.row_labels is None else self.row_labels[split][: len(x)]
        for i in range(0, len(x), batch_size):
            yield self._rows(x[i : i + batch_size], valid[i : i + batch_size], None if y is None else y[i : i + batch_size])

    def eval_units(self, split: str = "valid", max_sequences: int | None = None) -> tuple[str, Tensor]:
        """Characters of document text in each eval row (same order as eval_batches)."""
        return "char", self._eval_rows(split, max_sequences)[2]

    # ------------------------------------------------------------------ sampling helpers
    def sample_condition(self, n: int, seed: int = 0):
        """What unconditional samples are conditioned on, like the data: in pad mode each
        row's length is drawn from the training rows (p(x) = p(len) p(x | len)) and a
        leading [BOS] is fixed; with ``row_specials`` the row [BOS]/[EOS]. None otherwise."""
        from seqdiff.samplers import Condition

        L = self.seq_len
        if self.mode == "pad":
            lengths = self.packed["train"].valid.sum(1)
            pick = lengths[torch.randint(len(lengths), (n,), generator=generator(self.seed, seed, 0x1E4))]
            valid = torch.arange(L).unsqueeze(0) < pick.unsqueeze(1)
            tokens = torch.zeros(n, L, dtype=torch.long)
            fixed = torch.zeros(n, L, dtype=torch.bool)
            if self.bos:
                tokens[:, 0], fixed[:, 0] = self.domain.bos_id, True
            return Condition(tokens, fixed, valid)
        if self.row_specials:
            tokens = torch.zeros(L, dtype=torch.long)
            tokens[0], tokens[-1] = self.domain.bos_id, self.domain.eos_id
            fixed = torch.zeros(L, dtype=torch.bool)
            fixed[0] = fixed[-1] = True
            return Condition(tokens, fixed)
        return None

    def real_rows(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        x, valid, _ = self._eval_rows(split, n)
        return x, valid

    # ------------------------------------------------------------------ reports
    def counting(self) -> str:
        """One line: what the perplexity counts (printed by ``seqdiff eval``)."""
        parts = [f"{self.mode} mode"]
        given = "given as context, not scored" if not self.score_specials else "counted (as MDLM did)"
        if self.row_specials:
            parts.append(f"[BOS]/[EOS] around every row (MDLM's format): {given}")
        ins = [r for r, on in (("[BOS] before", self.bos), ("[EOS] after", self.eos)) if on]
        parts.append((" and ".join(ins) + " each document, counted as tokens") if ins else "no BOS/EOS inserted")
        if self.mode == "pad" and self.bos and not self.score_specials:
            parts.append(f"the [BOS] starting each row {given}")
        if self.mode == "pad":
            parts.append("padding never scored" + (", long documents truncated" if self.overflow == "truncate" else ""))
        parts.append("bits/char divide by document characters (specials count 0)")
        return "; ".join(parts)

    def reference(self) -> dict:
        splits = {}
        for s in SPLITS:
            p = self.packed[s]
            splits[s] = {
                **self._sizes[s],
                "tokens": self._num_tokens(s),
                "bos_inserted": p.bos_inserted,
                "eos_inserted": p.eos_inserted,
                "truncated_tokens": p.truncated_tokens,
            }
        train = splits["train"]
        return {
            "counting": self.counting(),
            "policy": {"mode": self.mode, "bos": self.bos, "eos": self.eos, "row_specials": self.row_specials,
                       "overflow": self.overflow, "score_specials": self.score_specials, "seq_len": self.seq_len},
            "corpus": self.spec.describe(),
            "splits": splits,
            "chars_per_token": train["characters"] / max(1, train["tokens"]),
            "tokenizer": self.domain.describe(),
        }

    def score_samples(self, tokens: Tensor) -> dict:
        """Text sample statistics next to the same statistics of real held-out rows."""
        from seqdiff_recipes.text.metrics import text_sample_stats

        return text_sample_stats(self, tokens)


def _encode(domain, docs) -> list[tuple[list[int], list[int]]]:
    """Token ids and characters per token of every document."""
    if isinstance(domain, TextDomain):  # a tokenizer: its own character counts per token
        return list(domain.tokenizer.encode_batch_with_counts([d.text for d in docs], where=[d.where for d in docs]))
    out = []  # a character domain (e.g. seqdiff_recipes.alphabet.AlphabetDomain): one character per id
    for d in docs:
        ids = domain.encode(d.text, where=d.where)
        out.append((ids, [1] * len(ids)))
    return out
