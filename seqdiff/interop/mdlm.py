r"""MDLM's DiT checkpoints (``kuleshov-group/mdlm-owt``, ``model_type: mdlm``) <-> seqdiff's DiT.

Layout (MDLM's ``models/dit.py`` under the HF wrapper's ``backbone.`` prefix). ``config.json``:
``vocab_size`` (GPT-2's 50,257 + [MASK] = 50,258), ``model_length``, ``hidden_dim`` D,
``cond_dim`` C, ``n_blocks``, ``n_heads``, ``dropout``, ``time_conditioning``. Tensors:

=====================================================  =================
``vocab_embed.embedding``                               [V, D]
``sigma_map.mlp.0.{weight,bias}``                       [C, F], [C]  (F = 256 frequencies)
``sigma_map.mlp.2.{weight,bias}``                       [C, C], [C]
``rotary_emb.inv_freq`` (a buffer; optional)            [D/H/2]
``blocks.i.norm1.weight`` / ``norm2.weight``            [D]  (LayerNorm without bias)
``blocks.i.attn_qkv.weight``                            [3D, D]  rows (three, heads, head_dim)
``blocks.i.attn_out.weight``                            [D, D]
``blocks.i.mlp.0.{weight,bias}`` / ``mlp.2``            [4D, D], [4D] / [D, 4D], [D]
``blocks.i.adaLN_modulation.{weight,bias}``             [6D, C], [6D]  shift, scale, gate (attn), then (MLP)
``output_layer.norm_final.weight``                      [D]
``output_layer.linear.{weight,bias}``                   [V, D], [V]
``output_layer.adaLN_modulation.{weight,bias}``         [2D, C], [2D]  shift, scale
=====================================================  =================

MDLM's block is ``x + g1 * W_o attn(rot(LN_w1(x)(1 + s1) + b1))`` then
``x + g2 * MLP(LN_w2(x)(1 + s2) + b2)``, with ``(b, s, g) = adaLN(c)``, ``c = SiLU(sigma_map(sigma))``.
Three differences from seqdiff's DiT, resolved exactly at import:

1. **Constant adaLN.** With ``time_conditioning: false`` MDLM feeds sigma = 0, so ``c`` and every
   ``(b, s, g)`` are constants (computed here in float64 from the checkpoint's own
   ``sigma_map`` at its 256 sinusoidal features ``[cos 0, ..., sin 0, ...] = [1, ..., 0, ...]``).
   They fold into weights seqdiff already has:
   ``LN_w(x)(1 + s) + b = LN(x) * [w (1 + s)] + b`` (an affine LayerNorm: weight ``w(1+s)``,
   bias ``b``); ``g * (W h) = (diag(g) W) h`` (the gate scales the rows of ``attn_out``);
   ``g * (W2 h + c2) = (diag(g) W2) h + g c2`` (the MLP output rows and bias).
2. **Half-split rotary.** MDLM rotates channel ``j`` with ``j + h/2`` of each head by angle
   ``pos * theta_j`` (``rotate_half``); seqdiff rotates the pair ``(2j, 2j+1)`` by the same angle
   (one complex multiply). Permuting the q and k rows of ``attn_qkv`` within every head,
   ``new[2j] = old[j]``, ``new[2j+1] = old[j + h/2]``, makes the two rotations the same map,
   and the attention scores ``q . k`` do not depend on the order of channels. v is untouched.
3. **tanh GELU.** The imported backbone is built with ``gelu: tanh``, and with MDLM's float32
   rotary-table arithmetic (``rope_angles: float32``; see :mod:`seqdiff.backbones.rotary`).

LayerNorm eps (1e-5), attention scale ``1/sqrt(head_dim)``, the rotary base (read back from
``inv_freq``) and the untied output head are the same. The imported model computes MDLM's
function in float32; what differs is rounding (the folds above, the order of the q.k sum): the
tests bound it.

Vocabulary: the seqdiff GPT-2 domain has MDLM's 50,258 ids in the same order ([MASK] last)
plus its own [PAD] (MDLM let PAD collide with MASK); the [PAD] row is zero (PAD is never
attended to, predicted or generated). Export keeps seqdiff's [PAD] rows as three extra tensors,
``seqdiff.pad.{vocab_embed, linear.weight, linear.bias}`` (MDLM's code ignores unknown keys),
so that a re-import is bitwise.

``time_conditioning: true`` checkpoints are refused: MDLM conditions on
``sigma = -log(1 - (1 - eps) t)`` while seqdiff's DiT conditions on the masking rate, so no weight
map reproduces them.

The export direction writes a seqdiff DiT (``time_conditioning: false``, non-causal) in this
layout: ``adaLN_modulation`` with zero weights and bias ``[b, 0, 1]`` per norm, a zero
``sigma_map``, the inverse q/k permutation, and ``gelu`` / ``rope_angles`` keys when they are
not MDLM's (seqdiff-trained models: ``erf`` / ``float64``; absent means ``tanh`` / ``float32``). Import after export is bitwise; MDLM's own code would
run such a model with tanh GELU, so a seqdiff-trained (erf) export is exact only through
seqdiff's import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqdiff.backbones.dit import DEFAULT_SHAPE, PRESETS
from seqdiff.backbones.presets import resolve
from seqdiff.errors import CheckpointError
from seqdiff.interop.hf import Tensors, config_value
from seqdiff.vocab import VocabSpec

MODEL_TYPE = "mdlm"
PREFIX = "backbone."
PAD_PREFIX = "seqdiff.pad."  # the [PAD] rows of a seqdiff export (MDLM's layout has no place for them)
TARGET = "seqdiff.backbones.DiT"
FREQ_DIM = 256  # MDLM's TimestepEmbedder frequency_embedding_size


@dataclass(frozen=True)
class MDLMConfig:
    vocab_size: int
    model_length: int
    hidden_dim: int
    cond_dim: int
    n_blocks: int
    n_heads: int
    dropout: float
    time_conditioning: bool
    gelu: str = "tanh"
    rope_angles: str = "float32"

    @classmethod
    def parse(cls, cfg: dict[str, Any], where: Path) -> "MDLMConfig":
        v = lambda k, t, d=...: config_value(cfg, k, t, where, d)  # noqa: E731
        c = cls(
            vocab_size=v("vocab_size", int), model_length=v("model_length", int, 1024), hidden_dim=v("hidden_dim", int),
            cond_dim=v("cond_dim", int), n_blocks=v("n_blocks", int), n_heads=v("n_heads", int),
            dropout=float(v("dropout", float, 0.1)), time_conditioning=v("time_conditioning", bool, False),
            gelu=v("gelu", str, "tanh"), rope_angles=v("rope_angles", str, "float32"),
        )
        for key in ("vocab_size", "model_length", "hidden_dim", "cond_dim", "n_blocks", "n_heads"):
            if getattr(c, key) < 1:
                raise CheckpointError(f"{where}: key {key!r} must be positive, got {getattr(c, key)}")
        if c.hidden_dim % c.n_heads or (c.hidden_dim // c.n_heads) % 2:
            raise CheckpointError(
                f"{where}: hidden_dim={c.hidden_dim} must split into n_heads={c.n_heads} heads of even size (rotary)"
            )
        if c.time_conditioning:
            raise CheckpointError(
                f"{where}: time_conditioning=true is not importable exactly: MDLM conditions on sigma(t) = "
                "-log(1-(1-eps)t), seqdiff's DiT on the masking rate (mdlm-owt has time_conditioning=false)"
            )
        if c.gelu not in ("tanh", "erf"):
            raise CheckpointError(f"{where}: key 'gelu' must be tanh or erf, got {c.gelu!r}")
        if c.rope_angles not in ("float32", "float64"):
            raise CheckpointError(f"{where}: key 'rope_angles' must be float32 or float64, got {c.rope_angles!r}")
        return c

    def to_json(self) -> dict[str, Any]:
        out = {"model_type": MODEL_TYPE, "architectures": ["MDLM"], "vocab_size": self.vocab_size,
               "model_length": self.model_length, "hidden_dim": self.hidden_dim, "cond_dim": self.cond_dim,
               "n_blocks": self.n_blocks, "n_heads": self.n_heads, "dropout": self.dropout,
               "time_conditioning": self.time_conditioning}
        if self.gelu != "tanh":
            out["gelu"] = self.gelu
        if self.rope_angles != "float32":
            out["rope_angles"] = self.rope_angles
        return out


# ----------------------------------------------------------------------------- pieces
def rotary_permutation(head_dim: int) -> Tensor:
    """``perm`` with seqdiff channel ``c`` = MDLM channel ``perm[c]``: ``[0, h/2, 1, h/2+1, ...]``."""
    half = head_dim // 2
    return torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).flatten()


def qkv_rows(n_heads: int, head_dim: int, *, inverse: bool = False) -> Tensor:
    """Row index over ``attn_qkv``'s ``3D`` rows (three, heads, head_dim): q and k permuted per head."""
    perm = rotary_permutation(head_dim)
    if inverse:
        perm = torch.argsort(perm)
    D = n_heads * head_dim
    rows = torch.arange(3 * D).view(3, n_heads, head_dim).clone()
    rows[:2] = rows[:2][:, :, perm]
    return rows.flatten()


def inv_freq(head_dim: int, base: float = 10_000.0) -> Tensor:
    """MDLM's ``Rotary.inv_freq`` (float32 arithmetic, as its code computes it)."""
    return 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))


def rope_base(freqs: Tensor, head_dim: int, where: str) -> float:
    """The base that ``inv_freq`` was built with (checked against the whole vector)."""
    if freqs.numel() < 2:
        return 10_000.0
    base = float((1.0 / freqs[1].double()) ** (head_dim / 2.0))
    if not math.isfinite(base) or base <= 1.0:
        raise CheckpointError(f"{where}: 'rotary_emb.inv_freq' is not 1/base^(2j/head_dim) for any base")
    if torch.equal(freqs, inv_freq(head_dim, float(round(base)))):
        return float(round(base))  # e.g. MDLM's 10,000, recovered exactly from its float32 vector
    if not torch.allclose(freqs, inv_freq(head_dim, base), rtol=1e-5, atol=0):
        raise CheckpointError(f"{where}: 'rotary_emb.inv_freq' is not 1/base^(2j/head_dim) for any base")
    return base


def constant_condition(t: Tensors, cond_dim: int) -> Tensor:
    """``c = SiLU(sigma_map(0))`` in float64 (MDLM's conditioning with time_conditioning off)."""
    f64 = torch.float64
    w0 = t.take("sigma_map.mlp.0.weight", (cond_dim, FREQ_DIM), "config.json cond_dim", dtype=f64)
    b0 = t.take("sigma_map.mlp.0.bias", (cond_dim,), "config.json cond_dim", dtype=f64)
    w2 = t.take("sigma_map.mlp.2.weight", (cond_dim, cond_dim), "config.json cond_dim", dtype=f64)
    b2 = t.take("sigma_map.mlp.2.bias", (cond_dim,), "config.json cond_dim", dtype=f64)
    emb = torch.cat([torch.ones(FREQ_DIM // 2, dtype=f64), torch.zeros(FREQ_DIM - FREQ_DIM // 2, dtype=f64)])
    return torch.nn.functional.silu(w2 @ torch.nn.functional.silu(w0 @ emb + b0) + b2)


def _check_vocab(vocab: VocabSpec, V: int, where: str) -> None:
    if vocab.mask_id != V - 1 or vocab.size != V + 1 or vocab.pad_id != V:
        raise CheckpointError(
            f"{where}: the checkpoint has {V} token rows (GPT-2's {V - 1} + [MASK] at {V - 1}); the tokenizer gives "
            f"{vocab.size} ids with [MASK]={vocab.mask_id}, [PAD]={vocab.pad_id}, expected {V + 1} with [MASK]={V - 1}, "
            f"[PAD]={V} (give the GPT-2 vocab.json/merges.txt the model was trained with: tokenizer=DIR)"
        )


# ----------------------------------------------------------------------------- import
def to_seqdiff(hf: dict[str, Any], state: dict[str, Tensor], vocab: VocabSpec, file: Path,
               config_file: Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(backbone config, DiT state dict)`` for an MDLM checkpoint; see the module docstring."""
    cfg = MDLMConfig.parse(hf, config_file)
    t = Tensors(state, file, PREFIX)
    D, C, H, V = cfg.hidden_dim, cfg.cond_dim, cfg.n_heads, cfg.vocab_size
    hd = D // H
    why_vd = "config.json vocab_size, hidden_dim"
    _check_vocab(vocab, V, str(config_file))
    f64 = torch.float64
    out: dict[str, Tensor] = {}
    pads = Tensors(state, file, PAD_PREFIX)

    def pad_row(x: Tensor, key: str) -> Tensor:
        """seqdiff's own [PAD] id after MDLM's V rows: zero, or the row a seqdiff export kept."""
        row = pads.take(key, (1, *x.shape[1:]), "a seqdiff export") if pads.has(key) else x.new_zeros(1, *x.shape[1:])
        return torch.cat([x, row])

    out["embed.weight"] = pad_row(t.take("vocab_embed.embedding", (V, D), why_vd), "vocab_embed")
    c = constant_condition(t, C)
    base = 10_000.0  # MDLM's Rotary default, when the buffer was not saved
    if t.has("rotary_emb.inv_freq"):
        base = rope_base(t.take("rotary_emb.inv_freq", (hd // 2,), "config.json hidden_dim / n_heads"), hd, str(file))
    mlp_rows = t.shape("blocks.0.mlp.0.weight")
    ratio = mlp_rows[0] // D if mlp_rows and mlp_rows[0] % D == 0 and mlp_rows[0] >= D else 4
    Fh = ratio * D
    rows = qkv_rows(H, hd)
    for i in range(cfg.n_blocks):
        p = f"blocks.{i}."
        why = "config.json hidden_dim, cond_dim"
        w = t.take(p + "adaLN_modulation.weight", (6 * D, C), why, dtype=f64)
        b = t.take(p + "adaLN_modulation.bias", (6 * D,), why, dtype=f64)
        shift1, scale1, gate1, shift2, scale2, gate2 = (w @ c + b).chunk(6)
        for n, (shift, scale) in (("norm1", (shift1, scale1)), ("norm2", (shift2, scale2))):
            lw = t.take(p + f"{n}.weight", (D,), "config.json hidden_dim", dtype=f64)
            out[p + f"{n}.weight"] = (lw * (1.0 + scale)).float()
            out[p + f"{n}.bias"] = shift.float()
        out[p + "qkv.weight"] = t.take(p + "attn_qkv.weight", (3 * D, D), "config.json hidden_dim")[rows]
        out[p + "proj.weight"] = (gate1[:, None] * t.take(p + "attn_out.weight", (D, D), "config.json hidden_dim", dtype=f64)).float()
        out[p + "mlp.0.weight"] = t.take(p + "mlp.0.weight", (Fh, D), "config.json hidden_dim (MLP ratio 4)")
        out[p + "mlp.0.bias"] = t.take(p + "mlp.0.bias", (Fh,), "config.json hidden_dim (MLP ratio 4)")
        out[p + "mlp.2.weight"] = (gate2[:, None] * t.take(p + "mlp.2.weight", (D, Fh), "config.json hidden_dim", dtype=f64)).float()
        out[p + "mlp.2.bias"] = (gate2 * t.take(p + "mlp.2.bias", (D,), "config.json hidden_dim", dtype=f64)).float()
    w = t.take("output_layer.adaLN_modulation.weight", (2 * D, C), "config.json hidden_dim, cond_dim", dtype=f64)
    b = t.take("output_layer.adaLN_modulation.bias", (2 * D,), "config.json hidden_dim", dtype=f64)
    shift, scale = (w @ c + b).chunk(2)
    lw = t.take("output_layer.norm_final.weight", (D,), "config.json hidden_dim", dtype=f64)
    out["norm_out.weight"] = (lw * (1.0 + scale)).float()
    out["norm_out.bias"] = shift.float()
    out["out.weight"] = pad_row(t.take("output_layer.linear.weight", (V, D), why_vd), "linear.weight")
    out["out.bias"] = pad_row(t.take("output_layer.linear.bias", (V,), "config.json vocab_size"), "linear.bias")
    t.taken |= pads.taken
    t.finish("mdlm")
    backbone = {
        "_target_": TARGET, "d_model": D, "n_layers": cfg.n_blocks, "n_heads": H, "mlp_ratio": ratio,
        "dropout": cfg.dropout, "time_conditioning": False, "cond_dim": C, "causal": False,
        "rope_base": base, "gelu": cfg.gelu, "rope_angles": cfg.rope_angles,
    }
    return backbone, out


def seq_len(hf: dict[str, Any], config_file: Path) -> int:
    return int(config_value(hf, "model_length", int, config_file, 1024))


# ----------------------------------------------------------------------------- export
def dit_shape(backbone: dict[str, Any]) -> dict[str, int]:
    """The run's DiT shape with its ``preset`` applied (a run config may leave sizes null)."""
    keys = {k: backbone.get(k) for k in DEFAULT_SHAPE}
    return resolve("DiT", PRESETS, backbone.get("preset"), DEFAULT_SHAPE, **keys)


def from_seqdiff(backbone: dict[str, Any], state: dict[str, Tensor], vocab: VocabSpec, length: int,
                 where: str, domain: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config.json, tensors)`` in MDLM's layout for a seqdiff DiT run; see the module docstring."""
    if domain is not None and domain.get("tokenizer") != "gpt2":
        raise CheckpointError(f"{where}: MDLM's layout is a GPT-2 text model (GPT-2 ids + [MASK]); this run's domain is "
                              f"{domain.get('name') or domain.get('_target_')}")
    if backbone.get("_target_") != TARGET:
        raise CheckpointError(f"{where}: export to mdlm needs a {TARGET} backbone, this run has {backbone.get('_target_')}")
    if backbone.get("time_conditioning") or backbone.get("causal"):
        kind = "time-conditioned" if backbone.get("time_conditioning") else "causal (autoregressive)"
        raise CheckpointError(f"{where}: a {kind} DiT has no MDLM-layout equivalent (MDLM's DiT is bidirectional and "
                              "conditions on sigma); export supports time_conditioning=false, causal=false")
    if int(backbone.get("conv_kernel") or 0) > 0:
        raise CheckpointError(f"{where}: this DiT has local convolutions (conv_kernel={backbone.get('conv_kernel')}), which "
                              "MDLM's DiT has not; export supports conv_kernel=0 (backbone=dit)")
    V = vocab.size - 1
    _check_vocab(vocab, V, where)
    D = state["embed.weight"].shape[1]
    H = int(dit_shape(backbone)["n_heads"])
    hd = D // H
    C = int(backbone.get("cond_dim", 128))
    n = sum(1 for k in state if k.endswith(".qkv.weight"))
    Fh = state["blocks.0.mlp.0.weight"].shape[0] if n else 4 * D
    if Fh != 4 * D:
        raise CheckpointError(f"{where}: MDLM's layout has MLP width 4*d_model; this DiT has mlp_ratio {Fh // D}")
    g = lambda k: state[k].detach().float().cpu()  # noqa: E731
    ones, zeros = torch.ones(D), torch.zeros(D)
    out: dict[str, Tensor] = {
        PREFIX + "vocab_embed.embedding": g("embed.weight")[:V],
        PREFIX + "sigma_map.mlp.0.weight": torch.zeros(C, FREQ_DIM),
        PREFIX + "sigma_map.mlp.0.bias": torch.zeros(C),
        PREFIX + "sigma_map.mlp.2.weight": torch.zeros(C, C),
        PREFIX + "sigma_map.mlp.2.bias": torch.zeros(C),
        PREFIX + "rotary_emb.inv_freq": inv_freq(hd, float(backbone.get("rope_base", 10_000.0))),
    }
    rows = qkv_rows(H, hd, inverse=True)
    for i in range(n):
        p, q = f"blocks.{i}.", PREFIX + f"blocks.{i}."
        out[q + "norm1.weight"] = g(p + "norm1.weight")
        out[q + "norm2.weight"] = g(p + "norm2.weight")
        out[q + "attn_qkv.weight"] = g(p + "qkv.weight")[rows]
        out[q + "attn_out.weight"] = g(p + "proj.weight")
        for k in ("mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"):
            out[q + k] = g(p + k)
        out[q + "adaLN_modulation.weight"] = torch.zeros(6 * D, C)
        out[q + "adaLN_modulation.bias"] = torch.cat([g(p + "norm1.bias"), zeros, ones, g(p + "norm2.bias"), zeros, ones])
    out[PREFIX + "output_layer.norm_final.weight"] = g("norm_out.weight")
    out[PREFIX + "output_layer.linear.weight"] = g("out.weight")[:V]
    out[PREFIX + "output_layer.linear.bias"] = g("out.bias")[:V]
    out[PREFIX + "output_layer.adaLN_modulation.weight"] = torch.zeros(2 * D, C)
    out[PREFIX + "output_layer.adaLN_modulation.bias"] = torch.cat([g("norm_out.bias"), zeros])
    out[PAD_PREFIX + "vocab_embed"] = g("embed.weight")[V:]
    out[PAD_PREFIX + "linear.weight"] = g("out.weight")[V:]
    out[PAD_PREFIX + "linear.bias"] = g("out.bias")[V:]
    cfg = MDLMConfig(vocab_size=V, model_length=int(length), hidden_dim=D, cond_dim=C, n_blocks=n, n_heads=H,
                     dropout=float(backbone.get("dropout", 0.0)), time_conditioning=False,
                     gelu=str(backbone.get("gelu", "erf")), rope_angles=str(backbone.get("rope_angles", "float64")))
    return cfg.to_json(), out


# ----------------------------------------------------------------------------- the run around it
TOKENIZER_FILES = (("vocab.json", "merges.txt"), ("tokenizer.json",))


def tokenizer_dir(hf_dir: Path, tokenizer: str | None) -> Path:
    """Where the GPT-2 files are: ``tokenizer=DIR``, else the checkpoint directory itself."""
    if tokenizer:
        d = Path(tokenizer).expanduser()
        if not d.is_dir():
            raise CheckpointError(f"{d}: tokenizer directory not found (tokenizer=DIR with GPT-2's vocab.json + merges.txt)")
        return d
    if any(all((hf_dir / f).is_file() for f in files) for files in TOKENIZER_FILES):
        return hf_dir
    raise CheckpointError(f"{hf_dir}: no GPT-2 tokenizer files next to the weights (vocab.json + merges.txt, or "
                          "tokenizer.json); give tokenizer=DIR, e.g. a local copy of Hugging Face's gpt2")


def run_overrides(hf_dir: Path, hf: dict[str, Any], tokenizer: str | None) -> list[str]:
    """The seqdiff run around an imported MDLM-OWT model: MDLM's OpenWebText setup (GPT-2
    BPE, rows of ``model_length`` tokens, [BOS]/[EOS] around every row as MDLM trained)."""
    tok = tokenizer_dir(hf_dir, tokenizer)
    return ["experiment=text_owt", f"domain.path={tok.resolve()}", "domain.bos=true", "data.row_specials=true",
            f"data.seq_len={seq_len(hf, hf_dir / 'config.json')}"]


EXPORTS = (TARGET,)
