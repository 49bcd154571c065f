"""Read a local Hugging Face model directory (config + tensors) without running its code.

Tensors come from ``model.safetensors``, from the shards listed in
``model.safetensors.index.json``, or -- only when neither exists -- from
``pytorch_model.bin`` loaded with ``torch.load(weights_only=True)``, PyTorch's restricted
unpickler that builds tensors and containers but never calls arbitrary code. A ``.bin``
that needs more than that is refused with the command that converts it. Every problem is
one line naming the file (:class:`~seqdiff.errors.CheckpointError`).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from seqdiff.errors import CheckpointError
from seqdiff.interop.hf import _short, read_json
from seqdiff.utils.io import sha256_file

SAFETENSORS = "model.safetensors"
INDEX = "model.safetensors.index.json"
BIN = "pytorch_model.bin"
CONVERT = (
    "convert it on a machine where you trust the file: python -c \"import torch; from safetensors.torch import "
    "save_file; sd = torch.load('pytorch_model.bin', weights_only=False); save_file({k: v.contiguous() for k, v "
    "in sd.items()}, 'model.safetensors')\""
)


@dataclass
class HFDirectory:
    """A model directory's ``config.json`` and its tensors (names as stored)."""

    path: Path
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    files: list[Path]

    @property
    def weights_name(self) -> str:
        return ", ".join(f.name for f in self.files)

    def sha256(self) -> dict[str, str]:
        return {f.name: sha256_file(f) for f in self.files}


def read_config(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise CheckpointError(f"{p}: no such directory (expected a Hugging Face model directory with config.json)")
    return read_json(p / "config.json", "JSON object (a model config)")


def _safetensors(f: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(f))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{f}: not a readable safetensors file ({_short(e)})") from None


def _sharded(index: Path) -> tuple[dict[str, torch.Tensor], list[Path]]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted({str(v) for v in weight_map.values()})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{index}: not a safetensors index with a weight_map ({_short(e)})") from None
    tensors: dict[str, torch.Tensor] = {}
    files = []
    for name in shards:
        f = index.parent / name
        if Path(name).name != name or not f.is_file():
            raise CheckpointError(f"{index}: shard {name!r} is not a file in {index.parent}")
        files.append(f)
        tensors.update(_safetensors(f))
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise CheckpointError(f"{index}: lists {missing[0]!r} ({len(missing)} tensors in all) but no shard holds it")
    return tensors, files


def _bin(f: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(str(f), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = _short(e).split(" Please file")[0]
        raise CheckpointError(f"{f}: refused: loading it would run pickled code ({first[:160]}); {CONVERT}") from None
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise CheckpointError(f"{f}: not a readable PyTorch file ({_short(e)})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CheckpointError(f"{f}: expected a dict of named tensors (a state dict), got {type(obj).__name__}")
    return dict(obj)


def read_hf_directory(path: str | Path) -> HFDirectory:
    """``config.json`` and every tensor of a local HF model directory (nothing executed)."""
    p = Path(path).expanduser()
    cfg = read_config(p)
    if (p / SAFETENSORS).is_file():
        return HFDirectory(p, cfg, _safetensors(p / SAFETENSORS), [p / SAFETENSORS])
    if (p / INDEX).is_file():
        tensors, files = _sharded(p / INDEX)
        return HFDirectory(p, cfg, tensors, files)
    if (p / BIN).is_file():
        return HFDirectory(p, cfg, _bin(p / BIN), [p / BIN])
    raise CheckpointError(f"{p}: no weights found (expected {SAFETENSORS}, {INDEX} or {BIN})")
