"""Reading and writing Hugging Face model directories without running their code.

A directory holds ``config.json`` and its tensors as ``model.safetensors`` (or shards listed
in ``model.safetensors.index.json``). A legacy ``pytorch_model.bin`` is a pickle: it is read
with ``torch.load(weights_only=True)``, which unpickles tensors and plain containers only and
refuses anything that would import or call code; a file that needs more is refused with a
one-line error saying how to convert it. Every problem is a :class:`CheckpointError` naming the
file and the key.

:class:`Tensors` hands out the tensors of a layout one key at a time with the expected shape,
so a format module reads like its layout table and every missing, mis-shaped or left-over
tensor is reported by name.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from seqdiff.errors import CheckpointError
from seqdiff.io.checkpoint import is_hf_model_dir  # noqa: F401  (re-exported: the format test lives with the checkpoint format)

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE = "pytorch_model.bin"


def _short(e: BaseException, n: int = 200) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def shape_str(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def read_json(path: Path, what: str = "JSON object") -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not readable as JSON ({_short(e)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a {what}, found a JSON {type(obj).__name__}")
    return obj


def read_config(hf_dir: str | Path) -> dict[str, Any]:
    d = Path(hf_dir).expanduser()
    if not d.is_dir():
        raise CheckpointError(f"{d}: no such directory (give hf_dir=a local Hugging Face model directory)")
    return read_json(d / CONFIG, "JSON object (a model config)")


def weights_file(hf_dir: str | Path) -> Path:
    """The tensor file the directory is read from (safetensors preferred)."""
    d = Path(hf_dir).expanduser()
    for name in (SAFETENSORS, SAFETENSORS_INDEX, PICKLE):
        if (d / name).is_file():
            return d / name
    raise CheckpointError(f"{d}: no {SAFETENSORS} (or {SAFETENSORS_INDEX}, {PICKLE}) next to {CONFIG}")


def read_tensors(hf_dir: str | Path) -> tuple[dict[str, torch.Tensor], Path]:
    """All tensors of the directory and the file they came from."""
    f = weights_file(hf_dir)
    if f.name == SAFETENSORS:
        return _safetensors(f), f
    if f.name == SAFETENSORS_INDEX:
        index = read_json(f, "JSON object (a safetensors index)")
        wmap = index.get("weight_map")
        if not isinstance(wmap, dict) or not wmap:
            raise CheckpointError(f"{f}: no 'weight_map' object mapping tensor names to shard files")
        out: dict[str, torch.Tensor] = {}
        for shard in sorted(set(wmap.values())):
            part = _safetensors(f.parent / str(shard))
            out.update({k: v for k, v in part.items() if wmap.get(k) == shard})
        missing = sorted(set(wmap) - set(out))
        if missing:
            raise CheckpointError(f"{f}: tensor {missing[0]!r} is listed in weight_map but not in {wmap[missing[0]]}")
        return out, f
    return _pickle(f), f


def _safetensors(f: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(f))
    except FileNotFoundError:
        raise CheckpointError(f"{f}: missing") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{f}: not a readable safetensors file ({_short(e)})") from None


def _pickle(f: Path) -> dict[str, torch.Tensor]:
    how = (f"convert it where you trust it: python -c \"import torch; from safetensors.torch import save_file; "
           f"save_file(torch.load('{f.name}'), 'model.safetensors')\" (run inside {f.parent})")
    try:
        obj = torch.load(str(f), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, TypeError, ValueError, OSError) as e:
        raise CheckpointError(f"{f}: refused: torch.load(weights_only=True) cannot read it safely ({_short(e, 120)}); {how}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CheckpointError(f"{f}: expected a flat dict of named tensors, found {type(obj).__name__}; {how}")
    return obj


def write_hf_dir(out: str | Path, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Path:
    """``config.json`` + ``model.safetensors`` (contiguous CPU copies; no aliasing)."""
    d = Path(out).expanduser()
    d.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, str(d / SAFETENSORS))
    (d / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return d


@dataclass
class Tensors:
    """Named tensors of one file, handed out by key with the expected shape.

    ``take(key, shape)`` removes and returns the tensor as float32 (float64 with
    ``dtype=torch.float64``); ``finish()`` reports whatever was not taken. ``why`` names the
    config keys a shape came from, for the error message.
    """

    state: dict[str, torch.Tensor]
    file: Path
    prefix: str = ""
    taken: set[str] = field(default_factory=set)

    def has(self, key: str) -> bool:
        return self.prefix + key in self.state

    def shape(self, key: str) -> tuple[int, ...] | None:
        t = self.state.get(self.prefix + key)
        return None if t is None else tuple(t.shape)

    def take(self, key: str, shape: Sequence[int], why: str = "", *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        name = self.prefix + key
        if name not in self.state:
            raise CheckpointError(f"{self.file}: missing tensor {name!r} (expected shape {shape_str(shape)}{_why(why)})")
        t = self.state[name]
        if tuple(t.shape) != tuple(int(s) for s in shape):
            raise CheckpointError(
                f"{self.file}: tensor {name!r} has shape {shape_str(t.shape)}, expected {shape_str(shape)}{_why(why)}"
            )
        if t.dtype.is_floating_point != dtype.is_floating_point:
            raise CheckpointError(f"{self.file}: tensor {name!r} has dtype {t.dtype}, expected a {dtype} tensor")
        self.taken.add(name)
        return t.to(dtype)

    def take_tied(self, key: str, like: torch.Tensor, tied_to: str) -> None:
        """An optional duplicate of a tied tensor (HF writers drop one name of a shared pair):
        absent is fine, present must equal ``like`` exactly."""
        name = self.prefix + key
        if name not in self.state:
            return
        t = self.take(key, like.shape, f"tied to {self.prefix + tied_to}", dtype=like.dtype)
        if not torch.equal(t, like):
            diff = float((t.double() - like.double()).abs().max())
            raise CheckpointError(
                f"{self.file}: tensor {name!r} should be tied to {self.prefix + tied_to!r} but differs (max |diff| {diff:.3g})"
            )

    def finish(self, layout: str) -> None:
        left = sorted(set(self.state) - self.taken)
        if left:
            more = f" (and {len(left) - 1} more)" if len(left) > 1 else ""
            raise CheckpointError(
                f"{self.file}: unexpected tensor {left[0]!r} {shape_str(self.state[left[0]].shape)}{more}: "
                f"not part of the {layout} layout that config.json describes"
            )


def _why(why: str) -> str:
    return f" from {why}" if why else ""


def config_value(cfg: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path, default: Any = ...) -> Any:
    """``cfg[key]`` checked against ``kind`` (bool is not an int here); one-line errors."""
    if key not in cfg:
        if default is ...:
            raise CheckpointError(f"{where}: missing key {key!r}")
        return default
    v = cfg[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)
    if float in kinds and isinstance(v, int) and not isinstance(v, bool):
        ok = True
    if not ok:
        names = " or ".join(k.__name__ for k in kinds)
        raise CheckpointError(f"{where}: key {key!r} is {v!r}, expected {names}")
    return v
