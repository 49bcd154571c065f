"""An imported checkpoint as a normal seqdiff run directory, and a run as an HF-style directory.

``import_checkpoint(hf_dir, out, compose)``: read ``config.json`` and the tensors, pick the
format by ``model_type``, compose the run configuration around it (``compose`` turns Hydra
overrides into the resolved run sections; the CLI passes Hydra's, tests may pass their own),
map the tensors onto the seqdiff backbone, load them with ``strict=True`` and write
``out/checkpoints/step-00000000`` with :func:`~seqdiff.io.checkpoint.save_checkpoint`
(the domain's artifacts, e.g. the GPT-2 tokenizer, inside). ``seqdiff.load(out)``,
``seqdiff sample checkpoint=out``, ``seqdiff eval checkpoint=out`` and
``seqdiff train init_from=out`` then work as for any run. Nothing is written until every
check has passed.

``export_run(run, out)``: the inverse for seqdiff's own DiT / Caduceus runs: ``config.json`` +
``model.safetensors`` in the public layout, plus tokenizer files; ``import_checkpoint`` of
that directory gives back the same tensors bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from seqdiff.errors import CheckpointError, ConfigError
from seqdiff.run import build_run, load
from seqdiff.interop.hf import CONFIG, read_config, read_tensors, write_hf_dir
from seqdiff.interop.registry import format_for_backbone, get_format
from seqdiff.io.checkpoint import save_checkpoint
from seqdiff.utils.instantiate import instantiate

Compose = Callable[[list[str]], dict[str, Any]]


def _empty_or_missing(out: Path, what: str) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{what}={out}: exists and is not empty (choose a new directory)")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_checkpoint(hf_dir: str | Path, out: str | Path, compose: Compose, *, tokenizer: str | None = None,
                      overrides: list[str] = ()) -> Path:
    """Write the seqdiff run for the public checkpoint in ``hf_dir`` to ``out``; returns ``out``."""
    hf_dir, out = Path(hf_dir).expanduser(), Path(out).expanduser()
    _empty_or_missing(out, "out")
    hf = read_config(hf_dir)
    fmt = get_format(hf.get("model_type"), str(hf_dir / CONFIG))
    tensors, wfile = read_tensors(hf_dir)
    run_overrides = [*fmt.run_overrides(hf_dir, hf, tokenizer), *overrides]
    run_config = compose(run_overrides)
    domain = instantiate(run_config["domain"], section="domain")
    backbone, state = fmt.to_seqdiff(hf, tensors, domain.vocab, wfile, hf_dir / CONFIG)
    run_config["backbone"] = backbone
    run_config["overrides"] = run_overrides
    source = {"path": str(hf_dir.resolve()), "model_type": fmt.MODEL_TYPE, "weights": wfile.name, "sha256": _sha256(wfile)}
    exp = build_run(run_config)
    missing, unexpected = exp.model.load_state_dict(state, strict=False)
    if missing or unexpected:  # a mapping bug, not a user error, but say which tensor
        raise CheckpointError(f"{wfile}: the mapped weights do not fit {backbone['_target_']} "
                              f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    created = not out.exists()
    try:
        save_checkpoint(out / "checkpoints", 0, model=exp.model, config=run_config, vocab=exp.vocab,
                        meta={"imported_from": source}, artifacts=exp.domain)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return out


def export_run(run: str | Path, out: str | Path, *, ema: bool = True) -> Path:
    """Write ``run`` (a seqdiff DiT / Caduceus run) as an HF-style directory ``out``."""
    out = Path(out).expanduser()
    _empty_or_missing(out, "out")
    exp = load(run, ema=ema)
    where = str(exp.checkpoint.path)
    fmt = format_for_backbone(exp.config["backbone"].get("_target_"), where)
    state = {k: v.detach().cpu() for k, v in exp.model.state_dict().items()}
    length = int((exp.config.get("data") or {}).get("seq_len", 1024))
    hf_config, tensors = fmt.from_seqdiff(exp.config["backbone"], state, exp.vocab, length, where,
                                          domain=exp.config.get("domain"))
    hf_config["seqdiff"] = {"exported_from": where, "weights": exp.weights, "step": exp.checkpoint.step}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        write_hf_dir(tmp, hf_config, tensors)
        files = getattr(fmt, "tokenizer_files", None)
        if callable(files):
            for name, obj in files(length).items():
                (tmp / name).write_text(json.dumps(obj, indent=2) + "\n")
        elif exp.domain.uses_artifacts:
            exp.domain.save_artifacts(tmp)  # e.g. the text domain's tokenizer.json
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Names whose tensors differ (bitwise) or exist on one side only."""
    return sorted(k for k in set(a) | set(b) if k not in a or k not in b or not torch.equal(a[k], b[k]))
