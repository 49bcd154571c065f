"""Source -> target pairs by concatenation (Diffusion-EAGS' conditional setting).

A JSONL file holds one object per line with a source and a target string (field names
configurable: ``{"src": ..., "tgt": ...}`` by default). Each pair becomes one row

    [BOS] source [EOS]*separators target [EOS] [PAD] ...

(RoBERTa's pair format ``<s> c </s></s> y </s>`` is ``separators: 2``). ``[BOS]``, the
source and the separators are *fixed*: visible to the model, never masked, never
scored, so training minimises the conditional NELBO of the target (and its closing
[EOS]); padding is invalid. At sampling time the same layout is built from a source
alone (:meth:`PairData.source_condition`), with a target length given or drawn from
the training pairs' target lengths (:math:`p(y \\mid c) = p(|y|)\\,p(y \\mid c, |y|)`).

Files are read on first use, so a checkpoint can sample from a given source with
``condition.target_length`` set even when the training file is gone. Every bad line is
an error naming the file and line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import Tensor

from seqdiff.data import Batch, PairedSource
from seqdiff.errors import ConfigError, DataError
from seqdiff.utils.seeding import derive_seed, generator

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Pair:
    source: str
    target: str
    where: str  # "file:line"


def read_pairs(path: str | Path, source_field: str = "src", target_field: str = "tgt") -> list[Pair]:
    """Every pair of a JSONL file; blank lines are skipped, anything else malformed is a
    :class:`DataError` naming ``file:line``."""
    f = Path(path).expanduser()
    if not f.is_file():
        raise DataError(f"{f}: no such pairs file (data.path)")
    raw = f.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{f}:{line}: invalid UTF-8 at byte offset {e.start}") from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{f}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object with fields {source_field!r} and {target_field!r}, "
                            f"got {type(obj).__name__}")
        for key in (source_field, target_field):
            if key not in obj:
                raise DataError(f"{where}: no field {key!r} (found {sorted(obj)}); set data.source_field / data.target_field")
            if not isinstance(obj[key], str):
                raise DataError(f"{where}: field {key!r} is {type(obj[key]).__name__}, expected a string")
        if not obj[target_field].strip():
            raise DataError(f"{where}: empty target in field {target_field!r}")
        out.append(Pair(obj[source_field], obj[target_field], where))
    if not out:
        raise DataError(f"{f}: no pairs (the file is empty)")
    return out


class PairData(PairedSource):
    """Fixed-source / generated-target rows from JSONL pairs (see the module docstring).

    Args:
        domain: a text domain (``encode``, ``vocab``, ``bos_id``, ``eos_id``).
        path: the JSONL pairs; split by a hash of the line index unless ``valid_path`` /
            ``test_path`` are given (their share of ``split_fractions`` then trains).
        source_field, target_field: the JSON keys.
        seq_len: row length in tokens (source + target + specials).
        separators: [EOS] tokens between source and target (RoBERTa: 2).
        max_source_tokens: sources longer than this keep their first tokens (default
            half the row); targets are then cut to fit. ``overflow: error`` refuses instead.
        bos, eos: kept for the domain's interpolation (``domain.bos: ${data.bos}``); the
            layout needs both, so both must be true.
    """

    unit = "token"

    def __init__(
        self,
        domain,
        path: str,
        valid_path: str | None = None,
        test_path: str | None = None,
        source_field: str = "src",
        target_field: str = "tgt",
        split_fractions: Sequence[float] = (0.9, 0.05, 0.05),
        split_seed: int = 0,
        seq_len: int = 128,
        separators: int = 1,
        max_source_tokens: int | None = None,
        overflow: str = "truncate",
        bos: bool = True,
        eos: bool = True,
        seed: int = 0,
    ) -> None:
        if not path:
            raise ConfigError("data.path: give the JSONL file of source/target pairs")
        if overflow not in ("truncate", "error"):
            raise ConfigError(f"data.overflow must be truncate or error, got {overflow!r}")
        if not (bos and eos):
            raise ConfigError("data.bos and data.eos must be true: a pair row is [BOS] source [EOS] target [EOS]")
        for role in ("bos", "eos"):
            rid = domain.bos_id if role == "bos" else domain.eos_id
            if rid is None:
                raise ConfigError(f"data: the {domain.name} tokenizer has no {role.upper()} token")
            if rid in domain.vocab.never_generate:
                raise ConfigError(f"data: [{role.upper()}] is never generated by the domain; set domain.{role}=true")
        fr = [float(x) for x in split_fractions]
        if len(fr) != 3 or any(x < 0 for x in fr) or abs(sum(fr) - 1) > 1e-6 or fr[0] <= 0:
            raise ConfigError(f"data.split_fractions must be 3 non-negative numbers summing to 1, got {list(split_fractions)}")
        self.domain = domain
        self.paths = {"train": path, "valid": valid_path, "test": test_path}
        self.source_field, self.target_field = source_field, target_field
        self.fractions, self.split_seed = fr, int(split_seed)
        self.seq_len, self.separators = int(seq_len), int(separators)
        self.max_source_tokens = int(max_source_tokens) if max_source_tokens else self.seq_len // 2
        self.overflow, self.seed = overflow, int(seed)
        if self.separators < 1 or self.seq_len < self.separators + 4:
            raise ConfigError(f"data.seq_len={seq_len} is too short for [BOS] + source + {separators} separators + target + [EOS]")
        self.pad_id = domain.vocab.pad_id

    # ------------------------------------------------------------------ layout
    def layout(self, source: list[int], target: list[int], where: str = "pair") -> tuple[list[int], int, bool]:
        """``(ids, fixed_prefix_length, truncated)`` of one row (unpadded)."""
        bos, eos = self.domain.bos_id, self.domain.eos_id
        room = self.seq_len - 2 - self.separators  # minus [BOS], separators, closing [EOS]
        cut = False
        if len(source) > self.max_source_tokens or len(source) + len(target) > room:
            if self.overflow == "error":
                raise DataError(f"{where}: {len(source)} source + {len(target)} target tokens do not fit in "
                                f"data.seq_len={self.seq_len} (max_source_tokens={self.max_source_tokens}); "
                                "raise data.seq_len or set data.overflow=truncate")
            source = source[: min(len(source), self.max_source_tokens, room - 1)]
            target = target[: room - len(source)]
            cut = True
        prefix = [bos, *source, *([eos] * self.separators)]
        return prefix + target + [eos], len(prefix), cut

    def _encode_rows(self, pairs: list[Pair]) -> tuple[Tensor, Tensor, Tensor, int]:
        L = self.seq_len
        x = torch.full((len(pairs), L), self.pad_id, dtype=torch.long)
        valid = torch.zeros(len(pairs), L, dtype=torch.bool)
        fixed = torch.zeros(len(pairs), L, dtype=torch.bool)
        truncated = 0
        for i, p in enumerate(pairs):
            src = self.domain.encode(p.source, where=f"{p.where} ({self.source_field})")
            tgt = self.domain.encode(p.target, where=f"{p.where} ({self.target_field})")
            ids, m, cut = self.layout(src, tgt, p.where)
            truncated += cut
            x[i, : len(ids)] = torch.tensor(ids)
            valid[i, : len(ids)] = True
            fixed[i, :m] = True
        return x, valid, fixed, truncated

    @cached_property
    def rows(self) -> dict[str, tuple[Tensor, Tensor, Tensor]]:
        """``split -> (x, valid, fixed)``, read on first use."""
        main = read_pairs(self.paths["train"], self.source_field, self.target_field)
        fr = list(self.fractions)
        for i, s in ((1, "valid"), (2, "test")):
            if self.paths[s]:
                fr[0], fr[i] = fr[0] + fr[i], 0.0
        splits: dict[str, list[Pair]] = {s: [] for s in SPLITS}
        for i, p in enumerate(main):  # hashed by line index: stable when lines are appended
            u = derive_seed(self.split_seed, i) / 2.0**63
            splits["train" if u < fr[0] else "valid" if u < fr[0] + fr[1] else "test"].append(p)
        for s in ("valid", "test"):
            if self.paths[s]:
                splits[s] = read_pairs(self.paths[s], self.source_field, self.target_field)
        if not splits["train"]:
            raise DataError(f"{self.paths['train']}: the training split has no pairs")
        out, self.truncated = {}, {}
        for s in SPLITS:
            *r, self.truncated[s] = self._encode_rows(splits[s])
            out[s] = tuple(r)
        print("data: " + ", ".join(f"{s} {len(out[s][0]):,} pairs" for s in SPLITS)
              + (f" ({sum(self.truncated.values())} truncated to fit seq_len {self.seq_len})" if any(self.truncated.values()) else ""),
              file=sys.stderr)
        return out

    # ------------------------------------------------------------------ batches
    def train_batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Batch:
        x, valid, fixed = self.rows["train"]
        idx = torch.randint(len(x), (batch_size * world_size,), generator=generator(self.seed, int(step)))
        idx = idx[rank * batch_size : (rank + 1) * batch_size]
        return Batch(x[idx], valid[idx], fixed[idx])

    def _split(self, split: str, max_sequences: int | None):
        if split not in SPLITS:
            raise ConfigError(f"eval split must be one of {SPLITS}, got {split!r}")
        x, valid, fixed = self.rows[split]
        if len(x) == 0:
            raise DataError(f"the {split} split has no pairs; evaluate another split or give data.{split}_path")
        n = len(x) if max_sequences is None else max_sequences
        return x[:n], valid[:n], fixed[:n]

    def eval_batches(self, split: str = "valid", batch_size: int = 64, max_sequences: int | None = None) -> Iterator[Batch]:
        x, valid, fixed = self._split(split, max_sequences)
        for i in range(0, len(x), batch_size):
            yield Batch(x[i : i + batch_size], valid[i : i + batch_size], fixed[i : i + batch_size])

    def num_tokens(self, split: str) -> int:
        x, valid, fixed = self.rows[split]
        return int((valid & ~fixed).sum())

    # ------------------------------------------------------------------ sampling
    def source_condition(self, sources: Sequence[str], num_samples: int = 1, *, target_length: int | None = None,
                         seed: int = 0):
        """A per-row :class:`~seqdiff.samplers.Condition`: each source ``num_samples``
        times (source-major), its target region free. ``target_length`` (tokens, without
        the closing [EOS], which is generated too) or, if None, drawn from the training
        targets' lengths (this reads the training file). The closing [EOS] is fixed."""
        from seqdiff.samplers import Condition

        n = len(sources) * num_samples
        if target_length is None:
            x, valid, fixed = self.rows["train"]
            lengths = (valid & ~fixed).sum(1) - 1  # minus the closing [EOS]
            pick = lengths[torch.randint(len(lengths), (n,), generator=generator(self.seed, seed, 0x5A1))].tolist()
        else:
            pick = [int(target_length)] * n
        tokens = torch.full((n, self.seq_len), self.pad_id, dtype=torch.long)
        fixed = torch.zeros(n, self.seq_len, dtype=torch.bool)
        valid = torch.zeros(n, self.seq_len, dtype=torch.bool)
        for j, src in enumerate(sources):
            ids = self.domain.encode(str(src), where=f"condition.source[{j}]")
            for r in range(j * num_samples, (j + 1) * num_samples):
                row, m, _ = self.layout(ids, [self.pad_id] * max(1, pick[r]), f"condition.source[{j}]")
                tokens[r, :m] = torch.tensor(row[:m])
                fixed[r, :m] = True
                # The closing [EOS] sits at the last valid position, as in every training row
                # (the valid mask already tells the model where it is): fix it.
                tokens[r, len(row) - 1], fixed[r, len(row) - 1] = self.domain.eos_id, True
                valid[r, : len(row)] = True
        return Condition(tokens, fixed, valid)

    def sample_condition(self, n: int, seed: int = 0):
        """Unconditional-looking samples of ``seqdiff eval``: held-out sources (valid, else
        train) with their true target lengths."""
        from seqdiff.samplers import Condition

        split = "valid" if len(self.rows["valid"][0]) else "train"
        x, valid, fixed = self.rows[split]
        idx = torch.arange(n) % len(x)
        return Condition(x[idx].masked_fill(~fixed[idx], 0), fixed[idx], valid[idx])

    def decode_target(self, row: Tensor) -> str:
        """The generated part of a row (after the separators, without [EOS]/padding)."""
        ids = [int(i) for i in row]
        eos = self.domain.eos_id
        # the target starts after the first run of separators that follows the source
        try:
            start = ids.index(eos) + self.separators
        except ValueError:
            start = 0
        body = [i for i in ids[start:] if i not in (eos, self.pad_id)]
        return self.domain.decode(body)

    def reference(self) -> dict:
        return {
            "counting": f"target tokens and the closing [EOS]; [BOS], source and {self.separators} separator(s) given, not scored",
            "splits": {s: {"pairs": len(self.rows[s][0]), "target_tokens": self.num_tokens(s),
                           "truncated": self.truncated[s]} for s in SPLITS},
            "policy": {"seq_len": self.seq_len, "separators": self.separators, "max_source_tokens": self.max_source_tokens,
                       "overflow": self.overflow, "fields": [self.source_field, self.target_field]},
        }
