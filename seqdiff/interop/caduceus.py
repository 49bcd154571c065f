r"""Caduceus checkpoints (``kuleshov-group/caduceus-{ps,ph}_*``, ``model_type: caduceus``) <-> seqdiff.

The published models are ``CaduceusForMaskedLM`` (Caduceus' ``modeling_caduceus.py`` /
``modeling_rcps.py``); seqdiff's :class:`~seqdiff.backbones.CaduceusPS` /
:class:`~seqdiff.backbones.CaduceusPH` compute the same functions with the same parameter names
below the prefix, so the map is a rename plus a fixed permutation of the token rows.

Layout (``config.json``: ``d_model`` d, ``n_layer``, ``vocab_size`` (12, saved as 16 after
padding to ``pad_vocab_size_multiple`` 8), ``ssm_cfg``, ``rms_norm``, ``fused_add_norm``,
``residual_in_fp32``, ``norm_epsilon``, ``bidirectional``, ``bidirectional_strategy``,
``bidirectional_weight_tie``, ``rcps``, ``complement_map``). Tensors, with
``P = caduceus.backbone.`` and, for PS (``rcps: true``), ``S = submodule.``:

==========================================================  ==============================
``P embeddings.word_embeddings[.embedding].weight``          [V, d]  (``.embedding`` for PS)
``P embeddings.word_embeddings.complement_map`` (PS)         [V] int64
``P layers.i.norm[.submodule].weight``                       [d]  RMSNorm (``.submodule``: PS unfused)
``P layers.i.mixer.[S]mamba_{fwd,rev}.in_proj.weight``       [2E, d]  (rev: tied to fwd)
``... conv1d.{weight,bias}``, ``x_proj.weight``              [E, 1, K], [E], [R + 2N, E]
``... dt_proj.{weight,bias}``, ``A_log``, ``D``              [E, R], [E], [E, N], [E]
``... out_proj.weight``                                      [d, E]  (rev: tied to fwd)
``P norm_f[.submodule].weight``                              [d]
``lm_head[.lm_head].weight``                                 [V, d]  tied to the embedding
``lm_head.complement_map`` (PS)                              [V] int64
==========================================================  ==============================

with ``E = expand * d``, ``R = dt_rank`` (``ceil(d/16)`` for "auto"), ``N = d_state``,
``K = d_conv``. Hugging Face drops one name of every shared tensor when it writes safetensors,
so the tied ``mamba_rev`` projections and ``lm_head`` may be absent; when present they must
equal what they are tied to.

What the function needs beyond the names: PS with ``fused_add_norm`` (every published model)
swaps the two strand halves of the residual stream at every block, which seqdiff reproduces with
``swap_halves: true``; the head is the RC-equivariant ``<W_v, a> + <W_{comp v}, J b>`` with W the
embedding. PH is plain BiMamba (fused or not computes the same function); the reference forward
is the un-conjoined one, seqdiff's ``conjoin: never``; the imported run uses ``conjoin: eval``
(Caduceus-PH's post-hoc conjoining: the RC-averaged logits at inference).

Vocabulary. Caduceus' character tokenizer (``tokenization_caduceus.py``) has ids
``[CLS]0 [SEP]1 [BOS]2 [MASK]3 [PAD]4 [RESERVED]5 [UNK]6 A7 C8 G9 T10 N11`` and ids 12..15
of padding. seqdiff's DNA domain is ``A C G T N [MASK] [PAD]`` (``[BOS] [EOS]`` when enabled),
so seqdiff id ``i`` reads Caduceus row ``ROWS[token_i]`` = 7, 8, 9, 10, 11, 3, 4 (2, 1 for
[BOS], [EOS] = [SEP]). The other rows ([CLS], [RESERVED], [UNK], padding) are dropped: the
imported model has no such ids, so they can never be generated, and the logits of every kept id
equal the reference's (the head is row-wise). The complement maps must agree under this map.
Export writes the rows back at their Caduceus ids and zeros in the dropped ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqdiff.errors import CheckpointError
from seqdiff.interop.hf import Tensors, config_value, read_json
from seqdiff.vocab import VocabSpec

MODEL_TYPE = "caduceus"
PS_TARGET = "seqdiff.backbones.CaduceusPS"
PH_TARGET = "seqdiff.backbones.CaduceusPH"

#: ``tokenization_caduceus.CaduceusTokenizer`` ids (specials first, then the characters).
CADUCEUS_IDS = {"[CLS]": 0, "[SEP]": 1, "[BOS]": 2, "[MASK]": 3, "[PAD]": 4, "[RESERVED]": 5, "[UNK]": 6,
                "A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
CHARACTERS = ("A", "C", "G", "T", "N")
#: seqdiff token -> Caduceus token where the names differ (Caduceus' EOS is [SEP]).
ALIASES = {"[EOS]": "[SEP]"}
#: ``{A: T, C: G, G: C, T: A, N: N}`` over ids, specials fixed (the tokenizer's complement_map).
COMPLEMENT = (0, 1, 2, 3, 4, 5, 6, 10, 9, 8, 7, 11)
PAD_MULTIPLE = 8
#: ssm_cfg keys: the shape ones are read; the rest only initialise weights (or pick kernels).
SSM_SHAPE = ("d_state", "d_conv", "expand", "dt_rank", "bias", "conv_bias")
SSM_IGNORED = ("dt_min", "dt_max", "dt_init", "dt_scale", "dt_init_floor", "use_fast_path", "layer_idx")
MAMBA_KEYS = ("A_log", "D", "in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight",
              "dt_proj.weight", "dt_proj.bias", "out_proj.weight")


def padded(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


@dataclass(frozen=True)
class CaduceusConfig:
    d_model: int
    n_layer: int
    vocab_rows: int
    d_state: int
    d_conv: int
    expand: int
    dt_rank: int | str
    rcps: bool
    fused_add_norm: bool
    residual_in_fp32: bool
    norm_epsilon: float
    bidirectional: bool
    strategy: str
    weight_tie: bool
    tied_head: bool
    complement: tuple[int, ...]

    @property
    def E(self) -> int:
        return self.expand * self.d_model

    @property
    def R(self) -> int:
        return math.ceil(self.d_model / 16) if self.dt_rank == "auto" else int(self.dt_rank)

    @classmethod
    def parse(cls, cfg: dict[str, Any], where: Path) -> "CaduceusConfig":
        v = lambda k, t, d=...: config_value(cfg, k, t, where, d)  # noqa: E731
        if v("rms_norm", bool, True) is not True:
            raise CheckpointError(f"{where}: rms_norm=false (LayerNorm blocks) is not supported; seqdiff's Caduceus uses RMSNorm")
        ssm = v("ssm_cfg", dict, None) or {}
        unknown = sorted(set(ssm) - set(SSM_SHAPE) - set(SSM_IGNORED))
        if unknown:
            raise CheckpointError(f"{where}: ssm_cfg key {unknown[0]!r} is not a Mamba-1 setting seqdiff knows "
                                  f"(known: {', '.join(SSM_SHAPE + SSM_IGNORED)})")
        for key, want in (("bias", False), ("conv_bias", True)):
            if ssm.get(key, want) is not want:
                raise CheckpointError(f"{where}: ssm_cfg.{key}={ssm[key]!r} is not supported (published models: {want})")
        dt_rank = ssm.get("dt_rank", "auto")
        if dt_rank != "auto" and (not isinstance(dt_rank, int) or isinstance(dt_rank, bool) or dt_rank < 1):
            raise CheckpointError(f"{where}: ssm_cfg.dt_rank must be 'auto' or a positive integer, got {dt_rank!r}")
        for key in ("d_state", "d_conv", "expand"):
            if key in ssm and (not isinstance(ssm[key], int) or isinstance(ssm[key], bool) or ssm[key] < 1):
                raise CheckpointError(f"{where}: ssm_cfg.{key} must be a positive integer, got {ssm[key]!r}")
        strategy = v("bidirectional_strategy", (str, type(None)), "add") or "add"
        if strategy not in ("add", "ew_multiply"):
            raise CheckpointError(f"{where}: bidirectional_strategy must be add or ew_multiply, got {strategy!r}")
        vocab = v("vocab_size", int)
        rows = padded(vocab, int(v("pad_vocab_size_multiple", int, PAD_MULTIPLE)))
        rcps = v("rcps", bool, False)
        tied = v("tie_word_embeddings", bool, True)
        if rcps and not tied:
            raise CheckpointError(f"{where}: tie_word_embeddings=false with rcps=true: Caduceus ties the RC-equivariant head "
                                  "to the embedding regardless, so this config does not describe the weights it runs")
        comp = cls._complement(cfg.get("complement_map"), rows, where)
        for key in ("d_model", "n_layer"):
            if v(key, int) < 1:
                raise CheckpointError(f"{where}: key {key!r} must be positive, got {cfg[key]}")
        return cls(
            d_model=v("d_model", int), n_layer=v("n_layer", int), vocab_rows=rows,
            d_state=int(ssm.get("d_state", 16)), d_conv=int(ssm.get("d_conv", 4)), expand=int(ssm.get("expand", 2)),
            dt_rank=dt_rank, rcps=rcps, fused_add_norm=v("fused_add_norm", bool, True),
            residual_in_fp32=v("residual_in_fp32", bool, True), norm_epsilon=float(v("norm_epsilon", float, 1e-5)),
            bidirectional=v("bidirectional", bool, True), strategy=strategy,
            weight_tie=v("bidirectional_weight_tie", bool, True), tied_head=tied, complement=comp,
        )

    @staticmethod
    def _complement(raw: Any, rows: int, where: Path) -> tuple[int, ...]:
        """The id complement over all ``rows`` ids (padding ids fixed), from config.json or the tokenizer's."""
        comp = list(COMPLEMENT) + list(range(len(COMPLEMENT), rows))
        if raw is None:
            return tuple(comp[:rows])
        if not isinstance(raw, dict):
            raise CheckpointError(f"{where}: complement_map must be an object mapping ids to ids, got {type(raw).__name__}")
        for k, val in raw.items():
            try:
                i, j = int(k), int(val)
            except (TypeError, ValueError):
                raise CheckpointError(f"{where}: complement_map entry {k!r}: {val!r} is not an id -> id pair") from None
            if not (0 <= i < rows and 0 <= j < rows):
                raise CheckpointError(f"{where}: complement_map entry {k!r}: {val!r} lies outside the {rows} token rows")
            if j != comp[i]:
                raise CheckpointError(
                    f"{where}: complement_map maps id {i} to {j}, but the Caduceus tokenizer's complement of id {i} is "
                    f"{comp[i]} (A7<->T10, C8<->G9, the rest fixed)"
                )
        return tuple(comp[:rows])


def check_tokenizer(tok_cfg: dict[str, Any] | None, where: Path) -> None:
    """A ``tokenizer_config.json`` next to the weights must describe the published ids."""
    if tok_cfg is None:
        return
    cls_name = tok_cfg.get("tokenizer_class")
    if cls_name is not None and cls_name != "CaduceusTokenizer":
        raise CheckpointError(f"{where}: tokenizer_class {cls_name!r}, expected 'CaduceusTokenizer' (its character ids)")
    chars = tok_cfg.get("characters")
    if chars is not None and tuple(chars) != CHARACTERS:
        raise CheckpointError(f"{where}: characters {chars!r}, expected {list(CHARACTERS)} (ids 7..11)")
    decoder = tok_cfg.get("added_tokens_decoder") or {}
    for i, rec in decoder.items():
        content = rec.get("content") if isinstance(rec, dict) else None
        want = CADUCEUS_IDS.get(content) if isinstance(content, str) else None
        if want is None or str(want) != str(i):
            raise CheckpointError(f"{where}: added_tokens_decoder gives id {i} to {content!r}; the Caduceus tokenizer has "
                                  + ", ".join(f"{t}={j}" for t, j in CADUCEUS_IDS.items()))


def token_rows(vocab: VocabSpec, where: str) -> list[int]:
    """Caduceus row of every seqdiff id (the fixed permutation of the module docstring)."""
    if vocab.tokens is None:
        raise CheckpointError(f"{where}: the domain's vocabulary has no token strings to map onto Caduceus' ids")
    rows = []
    for i, tok in enumerate(vocab.tokens):
        row = CADUCEUS_IDS.get(ALIASES.get(tok, tok))
        if row is None:
            raise CheckpointError(f"{where}: seqdiff token {i} {tok!r} has no Caduceus id (the tokenizer has "
                                  + ", ".join(CADUCEUS_IDS) + ")")
        rows.append(row)
    return rows


def _check_complement(vocab: VocabSpec, rows: list[int], comp: tuple[int, ...], where: str) -> None:
    if vocab.complement is None:
        raise CheckpointError(f"{where}: Caduceus needs the domain's complement map (domain=dna has one)")
    for i, c in enumerate(vocab.complement):
        if comp[rows[i]] != rows[c]:
            raise CheckpointError(f"{where}: the domain complements {vocab.tokens[i]!r} to {vocab.tokens[c]!r}, "
                                  f"Caduceus complements id {rows[i]} to {comp[rows[i]]}")


# ----------------------------------------------------------------------------- names
def _names(rcps: bool, fused: bool, prefix: str) -> dict[str, str]:
    P = prefix + "backbone."
    wrapped = rcps and not fused
    return {
        "embed": P + ("embeddings.word_embeddings.embedding.weight" if rcps else "embeddings.word_embeddings.weight"),
        "embed_comp": P + "embeddings.word_embeddings.complement_map",
        "layer": P + "layers.{i}.",
        "norm": "norm.submodule.weight" if wrapped else "norm.weight",
        "mixer": "mixer.submodule." if rcps else "mixer.",
        "norm_f": P + ("norm_f.submodule.weight" if wrapped else "norm_f.weight"),
        "head": "lm_head.lm_head.weight" if rcps else "lm_head.weight",
        "head_comp": "lm_head.complement_map",
    }


def _mamba_shapes(c: CaduceusConfig) -> dict[str, tuple[int, ...]]:
    d, E, R, N, K = c.d_model, c.E, c.R, c.d_state, c.d_conv
    return {"A_log": (E, N), "D": (E,), "in_proj.weight": (2 * E, d), "conv1d.weight": (E, 1, K), "conv1d.bias": (E,),
            "x_proj.weight": (R + 2 * N, E), "dt_proj.weight": (E, R), "dt_proj.bias": (E,), "out_proj.weight": (d, E)}


# ----------------------------------------------------------------------------- import
def to_seqdiff(hf: dict[str, Any], state: dict[str, Tensor], vocab: VocabSpec, file: Path,
               config_file: Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(backbone config, CaduceusPS/PH state dict)``; see the module docstring."""
    c = CaduceusConfig.parse(hf, config_file)
    prefix = "caduceus." if any(k.startswith("caduceus.") for k in state) else ""
    n = _names(c.rcps, c.fused_add_norm, prefix)
    t = Tensors(state, file)
    rows = token_rows(vocab, str(config_file))
    if max(rows) >= c.vocab_rows:
        raise CheckpointError(f"{config_file}: vocab_size gives {c.vocab_rows} token rows; the Caduceus ids need at least 12")
    _check_complement(vocab, rows, c.complement, str(config_file))
    why = "config.json vocab_size (padded to pad_vocab_size_multiple), d_model"
    if c.tied_head and not t.has(n["embed"]) and t.has(n["head"]):
        n["embed"], n["head"] = n["head"], n["embed"]  # the writer kept the head's name of the tied pair
    table = t.take(n["embed"], (c.vocab_rows, c.d_model), why)
    out: dict[str, Tensor] = {"embedding.weight": table[rows]}
    if c.rcps:
        want = torch.tensor(c.complement, dtype=torch.long)
        for key in ("embed_comp", "head_comp"):
            if t.has(n[key]):
                got = t.take(n[key], (c.vocab_rows,), "config.json vocab_size", dtype=torch.long)
                if not torch.equal(got, want):
                    raise CheckpointError(f"{file}: buffer {n[key]!r} is {got.tolist()}, but config.json's complement_map "
                                          f"gives {want.tolist()}")
    shapes = _mamba_shapes(c)
    why_m = "config.json d_model and ssm_cfg (d_state, d_conv, expand, dt_rank)"
    directions = ("mamba_fwd", "mamba_rev") if c.bidirectional else ("mamba_fwd",)
    for i in range(c.n_layer):
        src = n["layer"].format(i=i)
        dst = f"layers.{i}."
        out[dst + "norm.weight"] = t.take(src + n["norm"], (c.d_model,), "config.json d_model")
        for direction in directions:
            m_src, m_dst = src + n["mixer"] + direction + ".", dst + "mixer." + direction + "."
            for key in MAMBA_KEYS:
                tied = direction == "mamba_rev" and c.weight_tie and key in ("in_proj.weight", "out_proj.weight")
                if tied:
                    fwd = out[dst + "mixer.mamba_fwd." + key]
                    t.take_tied(m_src + key, fwd, src + n["mixer"] + "mamba_fwd." + key)
                    out[m_dst + key] = fwd
                else:
                    out[m_dst + key] = t.take(m_src + key, shapes[key], why_m)
    out["norm_f.weight"] = t.take(n["norm_f"], (c.d_model,), "config.json d_model")
    if c.tied_head:
        t.take_tied(n["head"], table, n["embed"])
    else:
        out["lm_head.weight"] = t.take(n["head"], (c.vocab_rows, c.d_model), why)[rows]
    if not c.rcps and c.tied_head:
        out["lm_head.weight"] = out["embedding.weight"]
    t.finish("caduceus-ps" if c.rcps else "caduceus-ph")
    backbone: dict[str, Any] = {
        "d_model": c.d_model, "n_layers": c.n_layer, "d_state": c.d_state, "d_conv": c.d_conv, "expand": c.expand,
        "dt_rank": c.dt_rank, "bidirectional": c.bidirectional, "bidirectional_strategy": c.strategy,
        "bidirectional_weight_tie": c.weight_tie, "time_conditioning": False, "cond_dim": 128,
        "norm_eps": c.norm_epsilon, "pad_vocab_multiple": 1, "residual_in_fp32": c.residual_in_fp32,
    }
    if c.rcps:
        backbone = {"_target_": PS_TARGET, **backbone, "swap_halves": c.fused_add_norm}
    else:
        backbone = {"_target_": PH_TARGET, "rc_augment": 0.5, "conjoin": "eval", **backbone, "tie_embeddings": c.tied_head}
    return backbone, out


# ----------------------------------------------------------------------------- export
def from_seqdiff(backbone: dict[str, Any], state: dict[str, Tensor], vocab: VocabSpec, length: int,
                 where: str, domain: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config.json, tensors)`` in Caduceus' layout for a seqdiff CaduceusPS/PH run."""
    target = backbone.get("_target_")
    if target not in (PS_TARGET, PH_TARGET):
        raise CheckpointError(f"{where}: export to caduceus needs a CaduceusPS or CaduceusPH backbone, this run has {target}")
    if backbone.get("time_conditioning"):
        raise CheckpointError(f"{where}: a time-conditioned Caduceus has no equivalent in Caduceus' layout")
    rcps = target == PS_TARGET
    fused = bool(backbone.get("swap_halves", True)) if rcps else True
    rows = token_rows(vocab, where)
    V = padded(len(COMPLEMENT), PAD_MULTIPLE)
    comp = list(COMPLEMENT) + list(range(len(COMPLEMENT), V))
    _check_complement(vocab, rows, tuple(comp), where)
    g = lambda k: state[k].detach().float().cpu()  # noqa: E731
    emb = g("embedding.weight")
    d = emb.shape[1]
    ridx = torch.tensor(rows)

    def scatter(x: Tensor) -> Tensor:
        full = torch.zeros(V, d)
        full[ridx] = x[: len(rows)]
        return full

    n = _names(rcps, fused, "caduceus.")
    out: dict[str, Tensor] = {n["embed"]: scatter(emb)}
    tied_head = not ("lm_head.weight" in state and not torch.equal(state["lm_head.weight"], state["embedding.weight"]))
    if rcps:
        out[n["embed_comp"]] = torch.tensor(comp, dtype=torch.long)
        out[n["head_comp"]] = torch.tensor(comp, dtype=torch.long)
    layers = sorted({int(k.split(".")[1]) for k in state if k.startswith("layers.")})
    bidirectional = any(".mamba_rev." in k for k in state)
    tie = bool(backbone.get("bidirectional_weight_tie", True))
    for i in layers:
        src, dst = f"layers.{i}.", n["layer"].format(i=i)
        out[dst + n["norm"]] = g(src + "norm.weight")
        for direction in ("mamba_fwd", "mamba_rev") if bidirectional else ("mamba_fwd",):
            for key in MAMBA_KEYS:
                if direction == "mamba_rev" and tie and key in ("in_proj.weight", "out_proj.weight"):
                    continue  # one name per shared tensor, as Hugging Face writes it
                out[dst + n["mixer"] + direction + "." + key] = g(src + f"mixer.{direction}.{key}")
    out[n["norm_f"]] = g("norm_f.weight")
    if not tied_head:
        out[n["head"]] = scatter(g("lm_head.weight"))
    m0 = "layers.0.mixer.mamba_fwd."
    E = state[m0 + "D"].shape[0]
    N = state[m0 + "A_log"].shape[1]
    R = state[m0 + "dt_proj.weight"].shape[1]
    dt_rank = backbone.get("dt_rank", "auto")
    cfg = {
        "model_type": MODEL_TYPE, "architectures": ["CaduceusForMaskedLM"], "d_model": d, "n_layer": len(layers),
        "vocab_size": V, "pad_vocab_size_multiple": PAD_MULTIPLE, "rms_norm": True, "fused_add_norm": fused,
        "residual_in_fp32": bool(backbone.get("residual_in_fp32", True)), "norm_epsilon": float(backbone.get("norm_eps", 1e-5)),
        "bidirectional": bidirectional, "bidirectional_strategy": backbone.get("bidirectional_strategy", "add"),
        "bidirectional_weight_tie": tie, "rcps": rcps, "complement_map": {str(i): c for i, c in enumerate(comp)},
        "tie_word_embeddings": tied_head,
        "ssm_cfg": {"d_state": N, "d_conv": state[m0 + "conv1d.weight"].shape[-1], "expand": E // d,
                    "dt_rank": "auto" if dt_rank == "auto" and R == math.ceil(d / 16) else R, "bias": False, "conv_bias": True},
    }
    return cfg, out


def tokenizer_files(length: int) -> dict[str, dict[str, Any]]:
    """``tokenizer_config.json`` / ``special_tokens_map.json`` as the published models ship them."""
    specials = {"bos_token": "[BOS]", "cls_token": "[CLS]", "eos_token": "[SEP]", "mask_token": "[MASK]",
                "pad_token": "[PAD]", "sep_token": "[SEP]", "unk_token": "[UNK]"}
    decoder = {str(CADUCEUS_IDS[t]): {"content": t, "special": True} for t in
               ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[UNK]")}
    return {
        "tokenizer_config.json": {"tokenizer_class": "CaduceusTokenizer", "added_tokens_decoder": decoder,
                                  "model_max_length": int(length), "padding_side": "left", **specials},
        "special_tokens_map.json": specials,
    }


# ----------------------------------------------------------------------------- the run around it
def run_overrides(hf_dir: Path, hf: dict[str, Any], tokenizer: str | None) -> list[str]:
    """The seqdiff run around an imported Caduceus: MDLM's HG38 setup (``experiment=dna_hg38_mdlm``:
    the DNA domain, HG38 windows of 1,024 bases, also for the 131k models: data.seq_len=... to
    change it); the published tokenizer is checked, not loaded."""
    if tokenizer:
        raise CheckpointError("tokenizer=: a Caduceus import uses seqdiff's DNA domain (the character ids are fixed)")
    tc = hf_dir / "tokenizer_config.json"
    if tc.is_file():
        check_tokenizer(read_json(tc), tc)
    return ["experiment=dna_hg38_mdlm"]


EXPORTS = (PS_TARGET, PH_TARGET)
