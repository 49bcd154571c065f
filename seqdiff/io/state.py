"""Nested state (optimizer, RNG) split into tensors for safetensors and JSON for the rest.

Checkpoints never go through pickle: ``torch.save`` of an optimizer state would be
loaded with ``torch.load``, which can execute code from a crafted file.
"""

from __future__ import annotations

from typing import Any

import torch

_TENSOR = "__tensor__"


def flatten_state(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Return ``(tensors, skeleton)``: tensors keyed by path, and a JSON-able skeleton
    where each tensor is replaced by ``{"__tensor__": path}``."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(o: Any, path: str) -> Any:
        if isinstance(o, torch.Tensor):
            tensors[path] = o.detach().cpu().contiguous()
            return {_TENSOR: path}
        if isinstance(o, dict):
            return {"__dict__": [[_key(k), walk(v, f"{path}.{k}")] for k, v in o.items()]}
        if isinstance(o, (list, tuple)):
            return {"__list__": [walk(v, f"{path}.{i}") for i, v in enumerate(o)], "tuple": isinstance(o, tuple)}
        if o is None or isinstance(o, (bool, int, float, str)):
            return o
        raise TypeError(f"flatten_state: cannot store object of type {type(o).__name__} at {path or '<root>'}")

    return tensors, walk(obj, prefix)


def unflatten_state(tensors: dict[str, torch.Tensor], skeleton: Any) -> Any:
    def walk(o: Any) -> Any:
        if isinstance(o, dict):
            if _TENSOR in o:
                return tensors[o[_TENSOR]]
            if "__dict__" in o:
                return {_unkey(k): walk(v) for k, v in o["__dict__"]}
            if "__list__" in o:
                items = [walk(v) for v in o["__list__"]]
                return tuple(items) if o.get("tuple") else items
        return o

    return walk(skeleton)


def _key(k: Any) -> Any:
    if isinstance(k, (str, int)) and not isinstance(k, bool):
        return k
    raise TypeError(f"flatten_state: dict key {k!r} must be str or int")


def _unkey(k: Any) -> Any:
    return k
