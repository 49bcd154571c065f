"""A character-alphabet domain defined entirely by configuration.

DNA, RNA, protein or any other symbol set is one YAML file (``configs/domain/``):
the alphabet, optional case folding, an optional complement map, and the special
tokens. Ids are the alphabet symbols in order, then ``[MASK]``, ``[PAD]`` and any
extra specials (``[BOS]``, ``[EOS]``, ...), so the symbol ids never depend on which
specials a run enables.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import torch

from seqdiff.domains import Domain
from seqdiff.errors import ConfigError, DataError
from seqdiff.vocab import VocabSpec

MASK, PAD = "[MASK]", "[PAD]"


class AlphabetDomain(Domain):
    """Tokenizer and vocabulary for single-character symbols (a :class:`~seqdiff.domains.Domain`).

    Args:
        alphabet: the symbols, e.g. ``"ACGTN"``; each a single character.
        name: domain name shown in logs and checkpoints.
        uppercase: fold input to upper case before lookup (DNA soft-masking).
        complement: optional symbol -> complement map; every symbol must appear and
            the map must be an involution. Specials complement to themselves.
        extra_specials: additional special tokens after ``[MASK]``/``[PAD]``.
        never_generate: symbols or specials the model must never produce.
        mask_char: how ``[MASK]`` is rendered by :meth:`decode`.
    """

    def __init__(
        self,
        alphabet: str | Sequence[str],
        name: str = "alphabet",
        uppercase: bool = False,
        complement: Mapping[str, str] | None = None,
        extra_specials: Sequence[str] = (),
        never_generate: Sequence[str] = (),
        mask_char: str = "_",
    ) -> None:
        symbols = list(alphabet)
        if not symbols or any(len(s) != 1 for s in symbols):
            raise ConfigError(f"AlphabetDomain {name!r}: alphabet must be non-empty single characters, got {symbols!r}")
        if len(set(symbols)) != len(symbols):
            dup = sorted({s for s in symbols if symbols.count(s) > 1})
            raise ConfigError(f"AlphabetDomain {name!r}: repeated symbols {dup}")
        if uppercase and any(s != s.upper() for s in symbols):
            raise ConfigError(f"AlphabetDomain {name!r}: uppercase=true needs an upper-case alphabet")
        self.name = name
        self.symbols = symbols
        self.uppercase = uppercase
        self.mask_char = mask_char
        specials = [MASK, PAD, *extra_specials]
        self.tokens = [*symbols, *specials]
        self.ids = {tok: i for i, tok in enumerate(self.tokens)}
        unknown = [t for t in never_generate if t not in self.ids]
        if unknown:
            raise ConfigError(f"AlphabetDomain {name!r}: never_generate names unknown tokens {unknown}")
        comp = None
        if complement is not None:
            comp = list(range(len(self.tokens)))
            missing = [s for s in symbols if s not in complement]
            if missing:
                raise ConfigError(f"AlphabetDomain {name!r}: complement map lacks symbols {missing}")
            for a, b in complement.items():
                if a not in self.ids or b not in self.ids:
                    raise ConfigError(f"AlphabetDomain {name!r}: complement {a!r}->{b!r} uses unknown symbols")
                comp[self.ids[a]] = self.ids[b]
        self.vocab = VocabSpec(
            size=len(self.tokens),
            mask_id=self.ids[MASK],
            pad_id=self.ids[PAD],
            never_generate=tuple(self.ids[t] for t in never_generate),
            complement=None if comp is None else tuple(comp),
            tokens=tuple(self.tokens),
        )
        self._lut = {ord(s): i for i, s in enumerate(symbols)}

    @property
    def num_symbols(self) -> int:
        return len(self.symbols)

    def encode(self, text: str, *, where: str = "input") -> list[int]:
        """Map a string to ids; an unknown character raises with its position."""
        s = text.upper() if self.uppercase else text
        out = []
        for i, ch in enumerate(s):
            idx = self._lut.get(ord(ch))
            if idx is None:
                raise DataError(
                    f"{where}: character {text[i]!r} at position {i} is not in the {self.name} alphabet {''.join(self.symbols)!r}"
                )
            out.append(idx)
        return out

    def encode_tensor(self, text: str, *, where: str = "input") -> torch.Tensor:
        return torch.tensor(self.encode(text, where=where), dtype=torch.long)

    def decode(self, ids: Iterable[int], *, skip_pad: bool = True) -> str:
        chars = []
        for i in ids:
            i = int(i)
            if i == self.vocab.mask_id:
                chars.append(self.mask_char)
            elif i == self.vocab.pad_id:
                if not skip_pad:
                    chars.append(" ")
            elif i < len(self.symbols):
                chars.append(self.symbols[i])
            else:
                chars.append(self.tokens[i])
        return "".join(chars)

    def describe(self) -> dict:
        return {"name": self.name, "alphabet": "".join(self.symbols), "vocab_size": self.vocab.size}
