"""Turn the CLI's ``condition.*`` strings into a core :class:`Condition`.

Strings are in the domain's alphabet and are encoded with ``domain.encode``, so the
same keys work for DNA flanks, protein motifs or a text prefix.
"""

from __future__ import annotations

from typing import Any, Mapping

from seqdiff.errors import ConfigError
from seqdiff.samplers.base import Condition


def condition_from_config(domain: Any, cond: Mapping[str, Any] | None, length: int) -> Condition | None:
    """``prefix``/``left`` fix the start, ``suffix``/``right`` the end, ``motif`` at
    ``motif_at``; ``region`` (with ``fasta``) fixes the flanks of a genome region;
    returns None when nothing is fixed."""
    if not cond:
        return None
    if cond.get("region") not in (None, ""):
        # A genome region with its middle generated: the domain knows how to read one.
        reader = getattr(domain, "condition_from_region", None)
        if reader is None:
            raise ConfigError(f"condition.region: the {getattr(domain, 'name', 'run')} domain cannot read regions (use a DNA domain)")
        return reader(cond)
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
        segments[int(at)] = motif
    if not segments:
        return None
    try:
        return Condition.from_segments(length, segments)
    except ValueError as e:
        raise ConfigError(f"condition: {e} (sequence length {length}; set length=...)") from None
