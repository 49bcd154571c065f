"""The domain contract: a vocabulary, and the way between text and its ids.

A domain (DNA bases, a protein alphabet, a text tokenizer) is written against this page.
The core sees only ids and the :class:`~seqdiff.vocab.VocabSpec`; a domain turns the strings
a user types (a prefix, flanks, keywords) into ids, saying where an unknown character is,
and turns generated ids back into text.

A domain whose state is not all in its configuration (a trained tokenizer) declares
``uses_artifacts = True``: it writes that state with :meth:`save_artifacts` into every
checkpoint, and its constructor takes ``artifacts_dir=`` to read it back, so a checkpoint
samples and evaluates without the original files.

Optional capabilities are small mixins, declared by subclassing them (never found by
probing): :class:`RegionDomain` reads a condition from a region of a reference sequence.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

from seqdiff.vocab import VocabSpec

if TYPE_CHECKING:  # the condition type only; samplers are not imported at run time
    from seqdiff.samplers.base import Condition


class Domain(ABC):
    """Attributes:
        name: shown in logs and reports.
        vocab: sizes and special ids (mask, pad, never-generate, complement map).
        bos_id, eos_id: the domain's begin/end-of-sequence ids, if it has them (a judge
            that re-tokenises samples keeps document separators through them).
        uses_artifacts: see the module docstring.
    """

    name: str = "domain"
    vocab: VocabSpec
    bos_id: int | None = None
    eos_id: int | None = None
    uses_artifacts: ClassVar[bool] = False

    @abstractmethod
    def encode(self, text: str, *, where: str = "input") -> list[int]:
        """Ids of ``text``; a character or piece the domain cannot encode raises a
        :class:`~seqdiff.errors.DataError` naming ``where`` and the position."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of a row of ids (padding skipped, [MASK] rendered visibly)."""

    def save_artifacts(self, directory: str | Path) -> None:
        """Write what :attr:`uses_artifacts` domains need to be rebuilt (default: nothing)."""

    def describe(self) -> dict:
        return {"name": self.name, "vocab_size": self.vocab.size}


class RegionDomain(Domain):
    """A domain that reads a condition from a region of a reference sequence: a genome
    region with its middle to generate (``seqdiff sample ... condition.fasta=genome.fa
    condition.region=chr1:10001-11024``). The CLI calls :meth:`condition_from_region`
    with the ``condition`` section; a domain without this capability refuses
    ``condition.region`` with a one-line error."""

    @abstractmethod
    def condition_from_region(self, cond: Mapping[str, Any]) -> "Condition":
        """The :class:`~seqdiff.samplers.Condition` for ``cond["region"]`` (and the
        section's other keys: ``fasta``, ``infill``, ``strand``, ...); bad values raise
        a :class:`~seqdiff.errors.ConfigError` naming the key."""
