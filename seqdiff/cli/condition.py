"""Turn the CLI's ``condition.*`` strings into a core :class:`Condition`.

Strings are in the domain's alphabet and are encoded with ``domain.encode``, so the
same keys work for DNA flanks, protein motifs or a text prefix.
"""

from __future__ import annotations

from typing import Any, Mapping

from seqdiff.domains import Domain, RegionDomain
from seqdiff.errors import ConfigError
from seqdiff.samplers.base import Condition
from seqdiff.samplers.keywords import PLACEMENTS, KeywordCondition, keyword_variants


def condition_from_config(domain: Domain, cond: Mapping[str, Any] | None, length: int) -> Condition | None:
    """``prefix``/``left`` fix the start, ``suffix``/``right`` the end, ``motif`` at
    ``motif_at``; ``region`` (with ``fasta``) fixes the flanks of a genome region;
    returns None when nothing is fixed."""
    if not cond:
        return None
    if cond.get("region") not in (None, ""):
        # A genome region with its middle generated: a declared capability of the domain.
        if not isinstance(domain, RegionDomain):
            raise ConfigError(f"condition.region: the {domain.name} domain cannot read regions (use a DNA domain)")
        return domain.condition_from_region(cond)
    segments: dict[int, list[int]] = {}

    def enc(key: str) -> list[int] | None:
        value = cond.get(key)
        if value in (None, ""):
            return None
        return domain.encode(str(value), where=f"condition.{key}")

    start = [v for v in (enc("prefix"), enc("left")) if v is not None]
    end = [v for v in (enc("suffix"), enc("right")) if v is not None]
    if len(start) > 1 or len(end) > 1:
        raise ConfigError("condition: give at most one of prefix/left and one of suffix/right")
    if start:
        segments[0] = start[0]
    if end:
        segments[-len(end[0])] = end[0]
    motif = enc("motif")
    if motif is not None:
        at = cond.get("motif_at")
        if at is None:
            raise ConfigError("condition: motif needs motif_at (its 0-based start position)")
        at, n = int(at), len(motif)
        if n > length:
            raise ConfigError(f"condition.motif: {n} tokens do not fit in a sequence of {length} (set length=...)")
        if not -length <= at <= length - n or (at < 0 and at + n > 0):
            last = length - n
            raise ConfigError(f"condition.motif_at: expected an integer in [0, {last}] (or [{-length}, {-n}] from the end) "
                              f"for a {n}-token motif in {length} tokens, got {at}")
        segments[at] = motif
    if not segments:
        return None
    try:
        return Condition.from_segments(length, segments)
    except ValueError as e:
        raise ConfigError(f"condition: {e} (sequence length {length}; set length=...)") from None


def with_keywords(domain: Domain, cond: Mapping[str, Any] | None, given: Condition | None, length: int) -> Condition | None:
    """``condition.keywords`` on top of ``given`` (prefix, flanks, a source, padded lengths):
    an unplaced :class:`KeywordCondition` that :meth:`seqdiff.Run.generate` places
    with the model. Each keyword is a string in the domain's alphabet (text: a word, tried
    with and without a leading space)."""
    words = (cond or {}).get("keywords")
    if words in (None, "", []):
        return given
    if isinstance(words, str):
        words = [words]
    placement = str(cond.get("placement") or "model")
    if placement not in PLACEMENTS:
        raise ConfigError(f"condition.placement must be one of {PLACEMENTS}, got {placement!r}")
    try:
        variants = [keyword_variants(domain, str(w), where=f"condition.keywords[{i}]") for i, w in enumerate(words)]
    except ValueError as e:
        raise ConfigError(str(e)) from None
    given = given if given is not None else Condition.unconditional(length)
    temp = cond.get("placement_temperature")
    return KeywordCondition(given.tokens, given.fixed, given.valid, keywords=variants, placement=placement,
                            temperature=1.0 if temp is None else float(temp))
