"""Checkpoints as directories, written atomically and verified on load.

``RUN/checkpoints/step-00001000/`` holds ``config.json`` (the resolved run config,
vocabulary and step), ``model.safetensors``, ``ema.safetensors``,
``optimizer.safetensors`` + ``optimizer.json``, ``trainer_state.safetensors`` +
``trainer_state.json``, and last ``manifest.json`` (size and SHA-256 of every file).
The directory is assembled under a temporary name and renamed into place, then
``RUN/checkpoints/latest`` is replaced atomically, so a killed run leaves either the
previous checkpoint or the new one, never a half-written one. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

from seqdiff.errors import CheckpointError
from seqdiff.utils.io import atomic_write_json, atomic_write_text, fsync_dir, sha256_file
from seqdiff.io.state import flatten_state, unflatten_state
from seqdiff.vocab import VocabSpec

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARTIFACTS = "artifacts"  # domain files (tokenizer, ...) saved inside the checkpoint


class Artifacts(Protocol):
    """What the checkpoint writer reads of a domain (:class:`seqdiff.domains.Domain` has it):
    whether it has files of its own, and how to write them into a directory."""

    uses_artifacts: bool

    def save_artifacts(self, directory: Path) -> None: ...


@dataclass
class Checkpoint:
    path: Path
    step: int
    config: dict
    vocab: VocabSpec
    meta: dict = field(default_factory=dict)

    def load_model(self, model: torch.nn.Module, ema: bool = True) -> str:
        """Load weights into ``model``; EMA weights when present and ``ema``. Returns which."""
        which = "ema" if ema and (self.path / "ema.safetensors").exists() else "model"
        try:
            if which == "ema":
                state = load_file(self.path / "ema.safetensors")
                missing, unexpected = model.load_state_dict(state, strict=False)
                missing = [k for k in missing if k in dict(model.named_parameters())]
                if missing or unexpected:
                    raise RuntimeError(f"missing {missing[:3]} unexpected {unexpected[:3]}")
            else:
                load_model(model, self.path / "model.safetensors", strict=True)
        except SafetensorError as e:
            raise CheckpointError(f"{self.path / (which + '.safetensors')}: not a valid safetensors file ({_short(e)})") from None
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(
                f"{self.path / (which + '.safetensors')}: weights do not fit the configured backbone ({_short(e)})"
            ) from None
        return which

    def model_tensors(self) -> dict[str, torch.Tensor]:
        """``model.safetensors`` as a full state dict: names that ``save_model`` dropped
        as aliases of a shared (tied) tensor are put back from the file's metadata."""
        f = self.path / "model.safetensors"
        state = self.tensors("model")
        try:
            with safe_open(str(f), framework="pt") as h:
                aliases = h.metadata() or {}
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{f}: not a readable safetensors file ({_short(e)})") from None
        for name, kept in aliases.items():
            if name not in state and kept in state:
                state[name] = state[kept]
        return state

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        f = self.path / f"{name}.safetensors"
        try:
            return load_file(f)
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{f}: not a readable safetensors file ({_short(e)})") from None

    def state(self, name: str) -> Any:
        """A nested state saved by :func:`save_checkpoint` (``optimizer``, ``trainer_state``)."""
        f = self.path / f"{name}.json"
        try:
            skel = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{f}: unreadable ({_short(e)})") from None
        tensors = self.tensors(name) if (self.path / f"{name}.safetensors").exists() else {}
        try:
            return unflatten_state(tensors, skel)
        except KeyError as e:
            raise CheckpointError(f"{f}: refers to tensor {e} missing from {name}.safetensors") from None


def _short(e: BaseException, n: int = 240) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def save_checkpoint(
    root: str | os.PathLike,
    step: int,
    *,
    model: torch.nn.Module,
    config: dict,
    vocab: VocabSpec,
    ema: dict[str, torch.Tensor] | None = None,
    states: dict[str, Any] | None = None,
    meta: dict | None = None,
    keep_last: int | None = 2,
    artifacts: Artifacts | None = None,
) -> Path:
    """Write ``root/step-XXXXXXXX`` atomically and point ``root/latest`` at it.

    ``artifacts``: the run's domain; if it declares ``uses_artifacts`` (e.g. a text domain's
    tokenizer), its ``save_artifacts`` writes into ``artifacts/`` before the manifest, so
    a checkpoint carries everything needed to use it on another machine.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        info = {
            "format_version": FORMAT_VERSION,
            "seqdiff_version": _version(),
            "step": int(step),
            "vocab": vocab.to_dict(),
            "config": config,
            "meta": meta or {},
        }
        (tmp / "config.json").write_text(json.dumps(info, indent=2) + "\n")
        save_model(model, str(tmp / "model.safetensors"))
        if ema is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in ema.items()}, str(tmp / "ema.safetensors"))
        if artifacts is not None and artifacts.uses_artifacts:  # a declared capability of the domain
            (tmp / ARTIFACTS).mkdir()
            artifacts.save_artifacts(tmp / ARTIFACTS)
        for name, obj in (states or {}).items():
            tensors, skel = flatten_state(obj)
            if tensors:
                save_file(tensors, str(tmp / f"{name}.safetensors"))
            (tmp / f"{name}.json").write_text(json.dumps(skel) + "\n")
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        for name in files:
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        manifest = {n: {"size": (tmp / n).stat().st_size, "sha256": sha256_file(tmp / n)} for n in files}
        atomic_write_json(tmp / MANIFEST, {"format_version": FORMAT_VERSION, "step": int(step), "files": manifest})
        fsync_dir(tmp)
        if final.exists():  # re-saving a step (e.g. after resume): swap, then drop the old copy
            old = root / f".old-{final.name}-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / "latest", final.name + "\n")
    if keep_last:
        for old in list_checkpoints(root)[:-keep_last]:
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    return final


def _version() -> str:
    try:
        from seqdiff import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoint directories under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / MANIFEST).exists()]
    return sorted(dirs, key=lambda p: p.name)


def verify_checkpoint(path: str | os.PathLike, *, hashes: bool = True) -> None:
    """Raise :class:`CheckpointError` naming the first file that is missing or altered."""
    path = Path(path)
    mf = path / MANIFEST
    if not mf.exists():
        raise CheckpointError(f"{path}: not a complete seqdiff checkpoint (no {MANIFEST}; was the run killed while saving?)")
    try:
        manifest = json.loads(mf.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{mf}: unreadable manifest ({_short(e)})") from None
    for name, rec in files.items():
        f = path / name
        if not f.exists():
            raise CheckpointError(f"{f}: missing (listed in {MANIFEST})")
        size = f.stat().st_size
        if size != rec["size"]:
            raise CheckpointError(f"{f}: {size} bytes, manifest says {rec['size']} (truncated or overwritten)")
        if hashes and sha256_file(f) != rec["sha256"]:
            raise CheckpointError(f"{f}: SHA-256 does not match the manifest (corrupted)")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """Accept a checkpoint directory, a run directory, or a ``checkpoints/`` directory."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint or run directory")
    if (p / MANIFEST).exists() or (p / "config.json").exists() and (p / "model.safetensors").exists():
        return p
    for root in (p / "checkpoints", p):
        latest = root / "latest"
        if latest.exists():
            target = root / latest.read_text().strip()
            if target.is_dir():
                return target
            raise CheckpointError(f"{latest}: points at {target.name}, which does not exist")
        found = list_checkpoints(root)
        if found:
            return found[-1]
    raise CheckpointError(
        f"{p}: no checkpoint found (expected {MANIFEST} here, or checkpoints/latest in a run directory)"
    )


def load_checkpoint(path: str | os.PathLike, *, verify: bool = True) -> Checkpoint:
    p = resolve_checkpoint(path)
    if verify:
        verify_checkpoint(p)
    cfg_file = p / "config.json"
    try:
        info = json.loads(cfg_file.read_text())
        vocab = VocabSpec.from_dict(info["vocab"])
        return Checkpoint(path=p, step=int(info["step"]), config=info["config"], vocab=vocab, meta=info.get("meta", {}))
    except FileNotFoundError:
        raise CheckpointError(f"{cfg_file}: missing") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{cfg_file}: not a valid seqdiff checkpoint config ({_short(e)})") from None


def latest_valid_checkpoint(root: str | os.PathLike) -> tuple[Checkpoint | None, list[str]]:
    """Newest checkpoint under ``root`` that verifies; also the problems of newer ones."""
    problems = []
    for p in reversed(list_checkpoints(root)):
        try:
            return load_checkpoint(p), problems
        except CheckpointError as e:
            problems.append(str(e))
    return None, problems


def is_hf_model_dir(path: str | Path) -> bool:
    """Whether ``path`` is a Hugging Face model directory: a ``config.json`` naming a
    ``model_type`` (a seqdiff checkpoint's ``config.json`` has none). Never raises."""
    f = Path(path).expanduser() / "config.json"
    try:
        obj = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(obj, dict) and "model_type" in obj
