"""Build objects from ``{"_target_": "pkg.Class", ...}`` dictionaries, without Hydra.

Hydra composes the YAML; this turns the resolved plain dict into objects, both at
training time and when a checkpoint's ``config.json`` is loaded back (where Hydra may
not even be installed). Unknown keys are reported with the accepted ones. Targets
from a checkpoint are restricted to trusted packages, since importing a module named
by a file someone sent you runs that module's code.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from typing import Any, Iterable, Union

from seqdiff.errors import ConfigError, SeqdiffError


def __getattr__(name: str) -> Any:
    """``TRUSTED_PREFIXES``: ``seqdiff.`` and the packages registered as trusted
    (:func:`seqdiff.registry.trusted_prefixes`), read when first asked for (PEP 562), so that
    importing this module reads no package metadata."""
    if name == "TRUSTED_PREFIXES":
        from seqdiff.registry import trusted_prefixes

        return trusted_prefixes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def locate(path: str, *, section: str = "config", trusted: Iterable[str] | None = None) -> Any:
    if not isinstance(path, str) or "." not in path:
        raise ConfigError(f"{section}: _target_ must be a dotted path like 'package.Class', got {path!r}")
    if trusted is not None and not path.startswith(tuple(trusted)):
        raise ConfigError(
            f"{section}: refusing to import untrusted _target_ {path!r} (allowed: {', '.join(trusted)}; "
            "pass trust_code=True if you trust this checkpoint)"
        )
    module_name, _, attr = path.rpartition(".")
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):  # allow nested attributes: pkg.mod.Class.method
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as e:
            if e.name and not ".".join(parts[:i]).startswith(e.name):
                raise ConfigError(f"{section}: importing {path!r} failed: {e}") from None
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            raise ConfigError(f"{section}: {'.'.join(parts[:i])!r} has no attribute {'.'.join(parts[i:])!r}") from None
        return obj
    raise ConfigError(f"{section}: cannot import {module_name!r} for _target_ {path!r}")


def check_kwargs(fn: Any, kwargs: dict[str, Any], *, section: str) -> None:
    """Raise a :class:`ConfigError` listing unknown (and missing) keyword arguments."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"{section}: unknown key{'s' if len(unknown) > 1 else ''} {unknown} for {_name(fn)}; accepted: {accepted}"
        )
    missing = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and n not in kwargs
    ]
    if missing:
        raise ConfigError(f"{section}: missing required key{'s' if len(missing) > 1 else ''} {missing} for {_name(fn)}")
    check_types(fn, kwargs, section=section)


_SCALARS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _scalar_options(hint: Any) -> list[Any] | None:
    """The scalar types (and None) an annotation allows; None if it is not just scalars."""
    if hint in _SCALARS:
        return [hint]
    if typing.get_origin(hint) in (Union, types.UnionType):
        out = []
        for a in typing.get_args(hint):
            if a is type(None):
                out.append(None)
            elif a in _SCALARS:
                out.append(a)
            else:
                return None
        return out
    return None


def _fits(value: Any, t: Any) -> bool:
    if t is None:
        return value is None
    if t is bool:
        return isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, t)


def check_types(fn: Any, kwargs: dict[str, Any], *, section: str) -> None:
    """Raise a :class:`ConfigError` for a value whose type cannot be what a scalar
    annotation (``int``, ``float``, ``bool``, ``str``, optionally ``| None``) asks for,
    e.g. ``backbone.d_model=wide``; integral floats given for an ``int`` become ints.
    ``None`` is left to the callee, whose own message says what to set."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: nothing to check against
        return
    for key, value in kwargs.items():
        if value is None:  # a required value left unset: the callee says what to give
            continue
        options = _scalar_options(hints.get(key))
        if options is None or any(_fits(value, t) for t in options):
            if isinstance(value, float) and int in options and float not in options:
                kwargs[key] = int(value)
            continue
        want = " or ".join([_SCALARS[t] for t in options if t is not None] + (["null"] if None in options else []))
        raise ConfigError(f"{section}.{key}: expected {want}, got {value!r}")


def _name(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"


def instantiate(cfg: Any, *, section: str = "config", trusted: Iterable[str] | None = None, **extra: Any) -> Any:
    """Recursively build ``_target_`` dicts; ``extra`` kwargs go to the outermost call."""
    if isinstance(cfg, list):
        return [instantiate(v, section=f"{section}[{i}]", trusted=trusted) for i, v in enumerate(cfg)]
    if not isinstance(cfg, dict):
        return cfg
    if "_target_" not in cfg:
        return {k: instantiate(v, section=f"{section}.{k}", trusted=trusted) for k, v in cfg.items()}
    fn = locate(cfg["_target_"], section=section, trusted=trusted)
    kwargs = {
        k: instantiate(v, section=f"{section}.{k}", trusted=trusted) for k, v in cfg.items() if not k.startswith("_")
    }
    kwargs.update(extra)
    check_kwargs(fn, kwargs, section=section)
    try:
        return fn(**kwargs)
    except SeqdiffError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{section}: {e}") from e
