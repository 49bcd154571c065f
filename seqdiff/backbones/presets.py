"""Named model sizes: each backbone class keeps its published sizes in one ``PRESETS`` table.

A backbone with sizes takes ``preset`` (a key of its table, or None) and its shape arguments
default to None: an argument given (not None) wins, else the preset's value, else the class's
own default. The YAMLs name a preset and leave its keys null (``configs/backbone/dit_small.yaml``:
``preset: small``), so each size lives only in the code that documents and tests it, and
``backbone.n_layers=6`` still changes one number of it.
"""

from __future__ import annotations

from typing import Any, Mapping

from seqdiff.errors import ConfigError


def resolve(who: str, presets: Mapping[str, Mapping[str, Any]], preset: str | None,
            defaults: Mapping[str, Any], **given: Any) -> dict[str, Any]:
    """``given`` with each None replaced by ``presets[preset]``'s value, else ``defaults``'."""
    if preset is not None and preset not in presets:
        raise ConfigError(f"{who}: unknown preset {preset!r}; choose from {sorted(presets)}")
    base = {**defaults, **(presets[preset] if preset is not None else {})}
    return {k: base.get(k) if v is None else v for k, v in given.items()}
