"""What installed packages add to seqdiff: commands, judges, protocols, named domains and data.

The core never names a package below it. A package (the repository's own recipes,
``seqdiff_recipes``, included) declares Python entry points in its ``pyproject.toml``::

    [project.entry-points."seqdiff.commands"]
    download = "seqdiff_recipes.dna.download:main"

and the core finds them here, through :mod:`importlib.metadata`, in every installed
distribution alike. The groups (:data:`GROUPS`):

``seqdiff.trusted``
    ``name = "top_level_module"``: config ``_target_``\\ s under ``top_level_module.`` may be
    imported from a checkpoint's ``config.json`` without ``trust_code`` (``seqdiff.`` always
    may). Installing a package already lets it run code, so registering is the trust.
``seqdiff.commands``
    ``name = "module:function"``: ``seqdiff NAME ARGS...`` calls ``function(ARGS) -> int``
    (plain argparse, no Hydra); ``seqdiff --help`` lists it with the first line of the
    module's docstring (read without importing the module).
``seqdiff.judges``
    ``name = "module:Class"``: a generative-perplexity judge built as
    ``Class(path, device=..., batch_size=...)``; ``hf_causal_lm`` is the one
    :func:`seqdiff.eval.judge.load_judge` uses for a Hugging Face model directory.
``seqdiff.protocols``
    ``name = "module:function"``: ``eval.protocol=NAME`` turns the data section into the
    protocol's, ``function(data, dataset=..., seq_len=...) -> data``.
``seqdiff.domain_classes`` / ``seqdiff.data_sources``
    ``name = "module:Class"``: a domain / data source by name, for code that writes a run's
    configuration without composing YAML (the HyenaDNA importer: ``dna``, ``fasta``).

A name registered twice with different targets is an error naming both distributions.
The lookups are cached per process; :func:`refresh` forgets them (after installing a
package into a running interpreter).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from seqdiff.errors import ConfigError

GROUPS: dict[str, str] = {
    "seqdiff.trusted": "packages whose _target_s a checkpoint may name",
    "seqdiff.commands": "seqdiff subcommands",
    "seqdiff.judges": "generative-perplexity judges",
    "seqdiff.protocols": "eval.protocol options",
    "seqdiff.domain_classes": "domains by name",
    "seqdiff.data_sources": "data sources by name",
}
#: The core's own package: always trusted, never registered.
CORE = "seqdiff"
_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ValueError(f"registry: unknown entry point group {group!r} (known: {', '.join(GROUPS)})")


def _dist(ep: EntryPoint) -> str:
    d = getattr(ep, "dist", None)
    return f"{d.name} {d.version}" if d is not None else "an unknown distribution"


@functools.cache
def entries(group: str) -> Mapping[str, EntryPoint]:
    """The entry points of ``group`` by name, sorted (one per name)."""
    _check_group(group)
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        prev = found.get(ep.name)
        if prev is not None and prev.value != ep.value:
            raise ConfigError(f"entry point {group}:{ep.name} is registered twice: {prev.value!r} by {_dist(prev)} "
                              f"and {ep.value!r} by {_dist(ep)}; uninstall one")
        found[ep.name] = ep
    return MappingProxyType(dict(sorted(found.items())))


def refresh() -> None:
    """Forget the cached lookups (the next call reads the installed distributions again)."""
    entries.cache_clear()
    trusted_prefixes.cache_clear()


def names(group: str) -> list[str]:
    return list(entries(group))


def get(group: str, name: str, *, section: str) -> EntryPoint:
    """The entry point ``name`` of ``group``; a :class:`ConfigError` naming ``section`` and the
    registered names if there is none."""
    found = entries(group)
    if name not in found:
        known = ", ".join(found) or "none is installed"
        raise ConfigError(f"{section}: {name!r} is not registered (entry point group {group}: {known})")
    return found[name]


def load(group: str, name: str, *, section: str) -> Any:
    """Import and return the object registered as ``name`` in ``group``."""
    ep = get(group, name, section=section)
    try:
        return ep.load()
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{section}: {group}:{name} = {ep.value!r} (from {_dist(ep)}) cannot be loaded: {e}") from None


def target(group: str, name: str, *, section: str) -> str:
    """The dotted ``_target_`` path (``module.attr``) of the class or function registered as
    ``name``, for a configuration written in code; nothing is imported."""
    ep = get(group, name, section=section)
    if not ep.attr:
        raise ConfigError(f"{section}: {group}:{name} = {ep.value!r} names a module, not a class or function")
    return f"{ep.module}.{ep.attr}"


@functools.cache
def trusted_prefixes() -> tuple[str, ...]:
    """``_target_`` prefixes a checkpoint may name without ``trust_code``: ``seqdiff.`` and
    every registered ``seqdiff.trusted`` module (``seqdiff_recipes.`` in this repository)."""
    out = [CORE + "."]
    for name, ep in entries("seqdiff.trusted").items():
        if not _MODULE.match(ep.value.strip()):
            raise ConfigError(f"entry point seqdiff.trusted:{name} = {ep.value!r} (from {_dist(ep)}): "
                              "expected a module name such as 'mypackage'")
        prefix = ep.value.strip() + "."
        if prefix not in out:
            out.append(prefix)
    return tuple(out)


def summary(ep: EntryPoint) -> str:
    """The first line of the docstring of ``ep``'s module, read from its source without
    importing it (``seqdiff --help`` stays fast); ``ep.value`` when there is none."""
    path = _module_file(ep.module)
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) if path is not None else None
    except (OSError, SyntaxError, UnicodeDecodeError):
        doc = None
    first = doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""
    return first.replace("``", "") or ep.value


def _module_file(module: str) -> Path | None:
    """``module``'s source file, found through its top-level package's search path only
    (finding a submodule's spec would import the packages above it)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    for base in spec.submodule_search_locations or ():
        p = Path(base, *rest)
        for f in (p.with_suffix(".py"), p / "__init__.py"):
            if f.is_file():
                return f
    return None
