"""DNA tokens: A, C, G, T, N, then [MASK], [PAD] (ids 0..6), optionally [BOS]/[EOS].

:class:`DNADomain` is :class:`seqdiff_recipes.alphabet.AlphabetDomain` with DNA's input
conventions made explicit and selectable from ``configs/domain/dna.yaml``:

* **soft-masking** (lower-case repeats, as in UCSC hg38): ``uppercase: true`` (the
  default) folds it away, as HyenaDNA/Caduceus do; ``uppercase: false`` rejects
  lower case with the position. The soft-mask itself is not lost: it is available as a
  separate boolean *channel* (:meth:`softmask_channel`), which the FASTA data source
  can use to exclude repeats from the loss (``data.softmask=ignore``).
* **IUPAC ambiguity codes** (R, Y, S, W, K, M, B, D, H, V): ``iupac: reject`` (the
  default; the error names the position) or ``iupac: to_n`` (map them to ``N``, which is
  what most genomics pipelines do).
* ``bos``/``eos`` reserve ``[BOS]``/``[EOS]`` ids after ``[PAD]`` (7, 8), never generated.
  The FASTA source does not append EOS to windows (see ``recipes/dna/data.py``); the ids
  exist for adapters and conditions that need them.

With the defaults the vocabulary is identical (ids, complement, tokens) to the
``AlphabetDomain`` the quickstart's checkpoints were trained with.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from seqdiff_recipes.alphabet import AlphabetDomain
from seqdiff.domains import RegionDomain
from seqdiff.errors import ConfigError, DataError

#: IUPAC nucleotide ambiguity codes other than N (which is a symbol of the alphabet).
IUPAC_AMBIGUOUS = "RYSWKMBDHV"
WATSON_CRICK = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}
BOS, EOS = "[BOS]", "[EOS]"
IUPAC_MODES = ("reject", "to_n")


class DNADomain(AlphabetDomain, RegionDomain):
    """Tokenizer and vocabulary for DNA; reads flank conditions from genome regions
    (:class:`~seqdiff.domains.RegionDomain`).

    Args:
        alphabet: the symbols (default ``"ACGTN"``; ids follow this order).
        uppercase: fold lower-case (soft-masked) bases to upper case; if False they are
            rejected with their position.
        iupac: ``"reject"`` or ``"to_n"`` (ambiguity codes become ``N``; needs N in the
            alphabet). ``"N"`` is accepted as a synonym of ``"to_n"``.
        bos, eos: add ``[BOS]``/``[EOS]`` specials (never generated).
        complement: symbol -> complement; default Watson-Crick with N<->N.
        extra_specials, never_generate, mask_char, name: as in ``AlphabetDomain``.
    """

    def __init__(
        self,
        alphabet: str | Sequence[str] = "ACGTN",
        name: str = "dna",
        uppercase: bool = True,
        iupac: str = "reject",
        bos: bool = False,
        eos: bool = False,
        complement: Mapping[str, str] | None = None,
        extra_specials: Sequence[str] = (),
        never_generate: Sequence[str] = (),
        mask_char: str = "_",
    ) -> None:
        iupac = "to_n" if str(iupac) == "N" else str(iupac)
        if iupac not in IUPAC_MODES:
            raise ConfigError(f"DNADomain: iupac must be one of {IUPAC_MODES}, got {iupac!r}")
        symbols = list(alphabet)
        if iupac == "to_n" and "N" not in symbols:
            raise ConfigError("DNADomain: iupac=to_n needs N in the alphabet")
        if complement is None:
            missing = [s for s in symbols if s not in WATSON_CRICK]
            if missing:
                raise ConfigError(f"DNADomain: give a complement map for symbols {missing}")
            complement = {s: WATSON_CRICK[s] for s in symbols}
        specials = list(extra_specials)
        # [BOS]/[EOS] go right after [MASK]/[PAD] so the base ids never move.
        for flag, tok in ((eos, EOS), (bos, BOS)):
            if flag and tok not in specials:
                specials.insert(0, tok)
        never = list(never_generate) + [t for t in (BOS, EOS) if t in specials and t not in never_generate]
        super().__init__(
            symbols,
            name=name,
            uppercase=bool(uppercase),
            complement=complement,
            extra_specials=specials,
            never_generate=never,
            mask_char=mask_char,
        )
        self.iupac = iupac
        self.bos_id = self.ids.get(BOS)
        self.eos_id = self.ids.get(EOS)
        # One byte -> id table drives both encode() and the FASTA reader (vectorised).
        table = np.full(256, -1, dtype=np.int16)
        for i, s in enumerate(self.symbols):
            table[ord(s)] = i
            if self.uppercase:
                table[ord(s.lower())] = i
        if iupac == "to_n":
            for c in IUPAC_AMBIGUOUS:
                table[ord(c)] = self.ids["N"]
                if self.uppercase:
                    table[ord(c.lower())] = self.ids["N"]
        self._table = table
        self._table.setflags(write=False)

    # ------------------------------------------------------------------ encoding
    def byte_table(self) -> np.ndarray:
        """``int16[256]``: id of each byte, -1 where the byte is not accepted."""
        return self._table

    def why_invalid(self, ch: str) -> str:
        """Why ``ch`` is rejected, with the fix: "is ... (set ...)"."""
        up = ch.upper()
        if ch != up and len(up) == 1 and ord(up) < 128 and (self._table[ord(up)] >= 0 or up in IUPAC_AMBIGUOUS):
            return "is a lower-case (soft-masked) base (set domain.uppercase=true to fold soft-masking)"
        if up in IUPAC_AMBIGUOUS and "N" in self.ids:
            return "is an IUPAC ambiguity code (set domain.iupac=to_n to read ambiguity codes as N)"
        return f"is not a DNA base ({', '.join(self.symbols)}) or IUPAC ambiguity code"

    def encode(self, text: str, *, where: str = "input") -> list[int]:
        """Map a string to ids; a rejected character raises with its position."""
        try:
            raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        except UnicodeEncodeError:
            pos = next(i for i, c in enumerate(text) if ord(c) > 127)
            raise DataError(f"{where}: character {text[pos]!r} at position {pos} {self.why_invalid(text[pos])}") from None
        ids = self._table[raw]
        bad = np.flatnonzero(ids < 0)
        if bad.size:
            pos = int(bad[0])
            raise DataError(f"{where}: character {text[pos]!r} at position {pos} {self.why_invalid(text[pos])}")
        return ids.astype(np.int64).tolist()

    @staticmethod
    def softmask_channel(text: str) -> list[bool]:
        """True where the base is lower case (soft-masked repeat) in ``text``."""
        return [c.islower() for c in text]

    def condition_from_region(self, cond: Mapping[str, Any]) -> "Condition":  # noqa: F821
        """``condition.region`` of ``condition.fasta`` with its middle masked (the CLI's
        ``seqdiff sample ... condition.region=chr:start-end``)."""
        from seqdiff_recipes.dna.conditioning import region_condition

        return region_condition(self, cond)

    def describe(self) -> dict:
        return {**super().describe(), "uppercase": self.uppercase, "iupac": self.iupac}


def byte_table(domain) -> np.ndarray:
    """The byte -> id table of any domain: its own, or one probed through ``encode``."""
    if hasattr(domain, "byte_table"):
        return domain.byte_table()
    table = np.full(256, -1, dtype=np.int16)
    for b in range(1, 128):
        try:
            ids = domain.encode(chr(b), where="probe")
        except ValueError:
            continue
        if len(ids) == 1:
            table[b] = ids[0]
    return table


def why_invalid(domain, ch: str) -> str:
    """The predicate of "character 'X' ..." for any domain."""
    if hasattr(domain, "why_invalid"):
        return domain.why_invalid(ch)
    return f"is not in the {getattr(domain, 'name', 'domain')} alphabet"
