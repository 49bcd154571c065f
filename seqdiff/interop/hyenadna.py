r"""Import a public HyenaDNA checkpoint as a seqdiff autoregressive DNA run.

Source: a local copy of a ``LongSafari/hyenadna-*-seqlen-hf`` repository (``config.json``
with ``model_type: hyenadna`` and ``model.safetensors``). Its ``modeling_hyena.py`` is
never imported: the tensors are mapped by name onto :class:`seqdiff.backbones.HyenaDNA`,
every shape checked against what ``config.json`` implies, and a normal run directory is
written (``OUT/checkpoints/step-00000000``) that ``seqdiff.load``, ``seqdiff sample``,
``seqdiff eval`` and ``eval.judge=OUT`` open like any trained run.

Tensor layout of the HF port (``HyenaDNAForCausalLM``; order 2, ``m = num_inner_mlps``)::

    hyena.backbone.embeddings.word_embeddings.weight [V, d]   -> embedding.weight (rows mapped)
    hyena.backbone.layers.i.norm1|norm2.{weight,bias}        -> layers.i.norm1|norm2
      .mixer.in_proj.{weight,bias} [3d, d]                    -> layers.i.mixer.in_proj
      .mixer.short_filter.weight [3d, 1, K], .bias            -> .mixer.short_weight [3d, K], .short_bias
      .mixer.out_proj.{weight,bias}                           -> .mixer.out_proj
      .mixer.filter_fn.bias [d]                               -> .mixer.filter.D
      .mixer.filter_fn.pos_emb.z [1, T, e], .t [1, T, 1]      -> .mixer.filter.z [T, e], .t [T]
      .mixer.filter_fn.modulation.deltas [1, 1, d]            -> .mixer.filter.deltas [d]
      .mixer.filter_fn.implicit_filter.{0,2,..,2m}.*          -> .mixer.filter.linears.{0..m}
      .mixer.filter_fn.implicit_filter.{2m+2}.weight [d, F]   -> .mixer.filter.out.weight
      .mixer.filter_fn.implicit_filter.{1,3,..}.freq [1, F]   -> .mixer.filter.freq [F]
      .mlp.fc1|fc2.{weight,bias}                              -> layers.i.fc1|fc2
    hyena.backbone.ln_f.{weight,bias}                         -> norm_f
    lm_head.weight [V, d]                                     -> lm_head.weight (rows mapped)

The sine activations of one filter are one shared module, so safetensors stores any
subset of the ``freq`` aliases (all must agree). The published configs say
``tie_word_embeddings: false`` and store ``lm_head.weight``; when it equals the embedding
(HyenaDNA trains them tied) the imported head is tied, otherwise kept separate. With
``tie_word_embeddings: true`` (transformers' default) the HF port's head *is* the
embedding whatever ``lm_head.weight`` holds, so it is tied here too. ``use_bias`` is not
read: the HF port adds the ``D`` skip term whatever it says.

**Tokens.** HyenaDNA's ``CharacterTokenizer`` ids are ``[CLS]0 [SEP]1 [BOS]2 [MASK]3
[PAD]4 [RESERVED]5 [UNK]6 A7 C8 G9 T10 N11`` (padded to 16 rows). seqdiff's DNA domain
(``A C G T N [MASK] [PAD]``, then ``[BOS]``/``[EOS]`` when enabled) takes, for its id
``i``, embedding and head row ``HF_ID[token_i]`` (:func:`token_rows`; ``[EOS]`` is
HyenaDNA's ``[SEP]``). The other rows are dropped: seqdiff can neither feed nor produce
those tokens, so the imported next-token distribution is HyenaDNA's restricted to the
domain's generatable ids (A C G T N) and renormalised.

**First position.** seqdiff's AR process reads ``[START, x_0, ..]`` with ``START`` =
``[MASK]``. HyenaDNA was trained on windows that begin with a base and never scores its
first base, so the prediction of ``x_0`` comes from a context it was not trained on;
every later position reads only DNA. A judge's NLL therefore includes one such token
per sequence (or per chunk of ``seq_len``).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqdiff import registry
from seqdiff.errors import CheckpointError, ConfigError, SeqdiffError
from seqdiff.interop.hf_dir_hyena import read_config, read_hf_directory
from seqdiff.vocab import VocabSpec

MODEL_TYPE = "hyenadna"
#: HyenaDNA's CharacterTokenizer, id order (standalone_hyenadna.py, the HF tokenization_hyena.py).
HF_TOKENS = ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]", "A", "C", "G", "T", "N")
HF_ID = {t: i for i, t in enumerate(HF_TOKENS)}
#: seqdiff token -> HyenaDNA token where the names differ.
ALIASES = {"[EOS]": "[SEP]"}

#: configs/domain/dna.yaml as a plain dict (the core reads no YAML), less its ``_target_``: the
#: domain registered as ``dna`` (:mod:`seqdiff.registry`, group ``seqdiff.domain_classes``).
DNA_DOMAIN: dict[str, Any] = {
    "name": "dna",
    "alphabet": "ACGTN",
    "uppercase": True,
    "iupac": "reject",
    "bos": False,
    "eos": False,
    "complement": {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"},
    "extra_specials": [],
    "never_generate": [],
    "mask_char": "_",
}

PREFIX = "hyena.backbone."


@dataclass(frozen=True)
class HyenaShape:
    """What ``config.json`` says about the network (HF key names in the comments)."""

    d_model: int  # d_model
    n_layer: int  # n_layer
    d_inner: int  # d_inner (default 4 d_model)
    max_seq_len: int  # max_seq_len: positions of the filters (pos_emb.z rows)
    emb_dim: int  # emb_dim
    filter_order: int  # filter_order: width of the filter MLP
    num_inner_mlps: int  # num_inner_mlps
    short_filter_order: int  # short_filter_order
    vocab_rows: int  # vocab_size rounded up to pad_vocab_size_multiple
    tie: bool  # tie_word_embeddings (transformers' default: true)
    train_freq: bool  # train_freq: false means freq is a constant, not stored
    activation_freq: float
    layer_norm_eps: float


def _int(cfg: dict, key: str, where: Path, default: Any = None) -> int:
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise CheckpointError(f"{where}: {key} must be a positive integer, got {v!r}")
    return v


def parse_config(cfg: dict, where: Path) -> HyenaShape:
    """Check ``config.json`` and read the shape; one-line errors naming the key."""
    mt = cfg.get("model_type")
    if mt != MODEL_TYPE:
        raise CheckpointError(
            f"{where}: model_type is {mt!r}, not {MODEL_TYPE!r} (this importer reads LongSafari/hyenadna-*-seqlen-hf directories)"
        )
    order = cfg.get("hyena_order", 2)
    if order != 2:
        raise CheckpointError(f"{where}: hyena_order={order!r}; the HyenaDNA HF layout is defined for order 2 only")
    d = _int(cfg, "d_model", where)
    vocab = _int(cfg, "vocab_size", where)
    multiple = _int(cfg, "pad_vocab_size_multiple", where, 8)
    if vocab != len(HF_TOKENS):
        raise CheckpointError(f"{where}: vocab_size={vocab}, but HyenaDNA's character tokenizer has {len(HF_TOKENS)} ids")
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    if not isinstance(eps, (int, float)) or abs(float(eps) - 1e-5) > 1e-12:
        # The HF port builds its block norms with PyTorch's default 1e-5 whatever the config says.
        raise CheckpointError(f"{where}: layer_norm_epsilon={eps!r}; only 1e-05 reproduces the HF port (its block norms ignore the key)")
    freq = cfg.get("activation_freq", 10)
    if isinstance(freq, bool) or not isinstance(freq, (int, float)):
        raise CheckpointError(f"{where}: activation_freq must be a number, got {freq!r}")
    return HyenaShape(
        d_model=d,
        n_layer=_int(cfg, "n_layer", where),
        d_inner=_int(cfg, "d_inner", where, 4 * d) if cfg.get("d_inner") is not None else 4 * d,
        max_seq_len=_int(cfg, "max_seq_len", where),
        emb_dim=_int(cfg, "emb_dim", where),
        filter_order=_int(cfg, "filter_order", where),
        num_inner_mlps=_int(cfg, "num_inner_mlps", where, 2),
        short_filter_order=_int(cfg, "short_filter_order", where, 3),
        vocab_rows=-(-vocab // multiple) * multiple,
        tie=bool(cfg.get("tie_word_embeddings", True)),
        train_freq=bool(cfg.get("train_freq", True)),
        activation_freq=float(freq),
        layer_norm_eps=float(eps),
    )


def token_rows(vocab: VocabSpec) -> list[int]:
    """HyenaDNA row for each seqdiff id: ``rows[i] = HF_ID[token_i]`` (aliases applied)."""
    if vocab.tokens is None:
        raise ConfigError("HyenaDNA import: the domain's vocabulary has no token strings to map")
    rows = []
    for tok in vocab.tokens:
        name = ALIASES.get(tok, tok)
        if name not in HF_ID:
            raise ConfigError(f"HyenaDNA import: domain token {tok!r} has no counterpart in HyenaDNA's vocabulary {list(HF_TOKENS)}")
        rows.append(HF_ID[name])
    return rows


def _check_tokenizer(hf_dir: Path) -> None:
    """When the directory ships a tokenizer config, its characters must be A C G T N."""
    import json

    f = hf_dir / "tokenizer_config.json"
    if not f.is_file():
        return
    try:
        tc = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{f}: not readable JSON ({' '.join(str(e).split())[:160]})") from None
    chars = tc.get("characters")
    if chars is None and "char_ords" in tc:
        chars = [chr(int(c)) for c in tc["char_ords"]]
    if chars is not None and list(chars) != list(HF_TOKENS[7:]):
        raise CheckpointError(f"{f}: characters {list(chars)} differ from HyenaDNA's {list(HF_TOKENS[7:])}; the id map would be wrong")
    for i, tok in (tc.get("added_tokens_decoder") or {}).items():
        content = tok.get("content") if isinstance(tok, dict) else None
        if str(i).isdigit() and int(i) < len(HF_TOKENS) and content != HF_TOKENS[int(i)]:
            raise CheckpointError(f"{f}: added token id {i} is {content!r}, HyenaDNA's tokenizer has {HF_TOKENS[int(i)]!r}")


def expected_tensors(s: HyenaShape) -> tuple[dict[str, tuple[tuple[int, ...], str]], dict[int, list[str]]]:
    """Required HF keys -> (shape, the config keys that imply it); per layer, the ``freq`` aliases."""
    d, F, e, T, m, K = s.d_model, s.filter_order, s.emb_dim, s.max_seq_len, s.num_inner_mlps, s.short_filter_order
    why_d = f"d_model={d}"
    req: dict[str, tuple[tuple[int, ...], str]] = {
        PREFIX + "embeddings.word_embeddings.weight": ((s.vocab_rows, d), f"vocab_size padded to {s.vocab_rows}, {why_d}"),
        PREFIX + "ln_f.weight": ((d,), why_d),
        PREFIX + "ln_f.bias": ((d,), why_d),
    }
    freq: dict[int, list[str]] = {}
    for i in range(s.n_layer):
        p = f"{PREFIX}layers.{i}."
        f = p + "mixer.filter_fn."
        for norm in ("norm1", "norm2"):
            req[p + norm + ".weight"] = ((d,), why_d)
            req[p + norm + ".bias"] = ((d,), why_d)
        req[p + "mixer.in_proj.weight"] = ((3 * d, d), f"hyena_order=2, {why_d}")
        req[p + "mixer.in_proj.bias"] = ((3 * d,), f"hyena_order=2, {why_d}")
        req[p + "mixer.short_filter.weight"] = ((3 * d, 1, K), f"{why_d}, short_filter_order={K}")
        req[p + "mixer.short_filter.bias"] = ((3 * d,), why_d)
        req[p + "mixer.out_proj.weight"] = ((d, d), why_d)
        req[p + "mixer.out_proj.bias"] = ((d,), why_d)
        req[f + "bias"] = ((d,), why_d)
        req[f + "pos_emb.z"] = ((1, T, e), f"max_seq_len={T}, emb_dim={e}")
        req[f + "pos_emb.t"] = ((1, T, 1), f"max_seq_len={T}")
        req[f + "modulation.deltas"] = ((1, 1, d), why_d)
        req[f + "implicit_filter.0.weight"] = ((F, e), f"filter_order={F}, emb_dim={e}")
        req[f + "implicit_filter.0.bias"] = ((F,), f"filter_order={F}")
        for j in range(1, m + 1):
            req[f + f"implicit_filter.{2 * j}.weight"] = ((F, F), f"filter_order={F}, num_inner_mlps={m}")
            req[f + f"implicit_filter.{2 * j}.bias"] = ((F,), f"filter_order={F}, num_inner_mlps={m}")
        req[f + f"implicit_filter.{2 * m + 2}.weight"] = ((d, F), f"{why_d}, filter_order={F}, num_inner_mlps={m}")
        freq[i] = [f + f"implicit_filter.{2 * j + 1}.freq" for j in range(m + 1)]
        for p2, inner in (("fc1", (s.d_inner, d)), ("fc2", (d, s.d_inner))):
            req[p + f"mlp.{p2}.weight"] = (inner, f"{why_d}, d_inner={s.d_inner}")
            req[p + f"mlp.{p2}.bias"] = ((inner[0],), f"{why_d}, d_inner={s.d_inner}")
    if not s.tie:
        req["lm_head.weight"] = ((s.vocab_rows, d), f"tie_word_embeddings=false, vocab_size padded to {s.vocab_rows}, {why_d}")
    return req, freq


def check_tensors(tensors: dict[str, torch.Tensor], s: HyenaShape, where: str) -> dict[int, torch.Tensor]:
    """Every required tensor present with its implied shape, nothing unexpected; the shared freq per layer."""
    layers = sorted({int(m.group(1)) for k in tensors if (m := re.match(re.escape(PREFIX) + r"layers\.(\d+)\.", k))})
    if layers != list(range(s.n_layer)):
        found = f"layers {layers[0]}..{layers[-1]}" if layers else "no layers"
        raise CheckpointError(f"{where}: config.json says n_layer={s.n_layer} but the tensors hold {found} ({PREFIX}layers.*)")
    if "score.weight" in tensors:
        raise CheckpointError(f"{where}: holds score.weight, a HyenaDNAForSequenceClassification head; import a HyenaDNAForCausalLM checkpoint")
    req, freq_keys = expected_tensors(s)
    optional = {k for ks in freq_keys.values() for k in ks} | ({"lm_head.weight"} if s.tie else set())
    missing = [k for k in req if k not in tensors]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(f"{where}: missing tensor {missing[0]}{more}, expected shape {list(req[missing[0]][0])}")
    unexpected = sorted(k for k in tensors if k not in req and k not in optional)
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise CheckpointError(f"{where}: unexpected tensor {unexpected[0]} {list(tensors[unexpected[0]].shape)}{more}; "
                              "not part of a HyenaDNAForCausalLM with this config.json")
    for k, (shape, why) in req.items():
        if tuple(tensors[k].shape) != shape:
            raise CheckpointError(f"{where}: {k} has shape {list(tensors[k].shape)}, but config.json ({why}) implies {list(shape)}")
    freqs = {}
    for i, keys in freq_keys.items():
        present = [k for k in keys if k in tensors]
        for k in present:
            if tuple(tensors[k].shape) != (1, s.filter_order):
                raise CheckpointError(f"{where}: {k} has shape {list(tensors[k].shape)}, but filter_order={s.filter_order} implies [1, {s.filter_order}]")
            if not torch.equal(tensors[k], tensors[present[0]]):
                raise CheckpointError(f"{where}: {k} differs from {present[0]}; HyenaDNA's sine activations share one frequency")
        if present:
            freqs[i] = tensors[present[0]].reshape(-1)
        elif s.train_freq:
            raise CheckpointError(f"{where}: missing tensor {keys[0]} (train_freq=true: the sine frequencies are trained), expected shape [1, {s.filter_order}]")
        else:
            freqs[i] = torch.full((s.filter_order,), s.activation_freq)
    if "lm_head.weight" in tensors and tuple(tensors["lm_head.weight"].shape) != (s.vocab_rows, s.d_model):
        raise CheckpointError(f"{where}: lm_head.weight has shape {list(tensors['lm_head.weight'].shape)}, expected {[s.vocab_rows, s.d_model]}")
    return freqs


def map_state(tensors: dict[str, torch.Tensor], s: HyenaShape, rows: list[int], freqs: dict[int, torch.Tensor],
              tie: bool) -> dict[str, torch.Tensor]:
    """HF tensors (already checked) -> the state dict of :class:`~seqdiff.backbones.HyenaDNA`."""
    t = {k: v.to(torch.float32) for k, v in tensors.items()}
    idx = torch.tensor(rows, dtype=torch.long)
    emb = t[PREFIX + "embeddings.word_embeddings.weight"][idx].clone()
    out = {"embedding.weight": emb, "norm_f.weight": t[PREFIX + "ln_f.weight"], "norm_f.bias": t[PREFIX + "ln_f.bias"]}
    out["lm_head.weight"] = emb if tie else t["lm_head.weight"][idx].clone()
    m = s.num_inner_mlps
    for i in range(s.n_layer):
        p, q = f"{PREFIX}layers.{i}.", f"layers.{i}."
        f, g = p + "mixer.filter_fn.", q + "mixer.filter."
        for a in ("norm1", "norm2"):
            for b in ("weight", "bias"):
                out[f"{q}{a}.{b}"] = t[f"{p}{a}.{b}"]
        for b in ("weight", "bias"):
            out[f"{q}mixer.in_proj.{b}"] = t[f"{p}mixer.in_proj.{b}"]
            out[f"{q}mixer.out_proj.{b}"] = t[f"{p}mixer.out_proj.{b}"]
            out[f"{q}fc1.{b}"] = t[f"{p}mlp.fc1.{b}"]
            out[f"{q}fc2.{b}"] = t[f"{p}mlp.fc2.{b}"]
        out[q + "mixer.short_weight"] = t[p + "mixer.short_filter.weight"][:, 0, :]
        out[q + "mixer.short_bias"] = t[p + "mixer.short_filter.bias"]
        out[g + "D"] = t[f + "bias"]
        out[g + "z"] = t[f + "pos_emb.z"][0]
        out[g + "t"] = t[f + "pos_emb.t"][0, :, 0]
        out[g + "deltas"] = t[f + "modulation.deltas"][0, 0]
        for j in range(m + 1):
            for b in ("weight", "bias"):
                out[f"{g}linears.{j}.{b}"] = t[f"{f}implicit_filter.{2 * j}.{b}"]
        out[g + "out.weight"] = t[f + f"implicit_filter.{2 * m + 2}.weight"]
        out[g + "freq"] = freqs[i].to(torch.float32)
    return {k: v.contiguous() for k, v in out.items()}


def default_domain() -> dict[str, Any]:
    """:data:`DNA_DOMAIN` with the ``_target_`` of the registered ``dna`` domain."""
    return {"_target_": registry.target("seqdiff.domain_classes", "dna", section="HyenaDNA import: domain"), **DNA_DOMAIN}


def run_config(s: HyenaShape, seq_len: int, domain: dict, tie: bool) -> dict[str, Any]:
    """The resolved config of the imported run (what ``config.json`` of a trained run holds)."""
    # The model was trained on hg38; evaluate it on real DNA with data=fasta data.fasta=... (the
    # data source registered as ``fasta``).
    fasta = registry.target("seqdiff.data_sources", "fasta", section="HyenaDNA import: data")
    return {
        "seed": 0,
        "domain": domain,
        "data": {"_target_": fasta, "fasta": None, "seq_len": int(seq_len), "seed": 0},
        "backbone": {
            "_target_": "seqdiff.backbones.HyenaDNA",
            "d_model": s.d_model,
            "n_layers": s.n_layer,
            "d_inner": s.d_inner,
            "max_len": s.max_seq_len,
            "order": 2,
            "filter_order": s.filter_order,
            "emb_dim": s.emb_dim,
            "num_inner_mlps": s.num_inner_mlps,
            "short_filter_order": s.short_filter_order,
            "activation_freq": s.activation_freq,
            "modulation_shift": 0.05,  # the HF port's ExponentialModulation default
            "layer_norm_eps": s.layer_norm_eps,
            "dropout": 0.0,  # the HF port defines embed_dropout but never applies it
            "pad_vocab_multiple": 1,
            "tie_embeddings": tie,
            "causal": True,
            "time_conditioning": False,
        },
        "process": {"_target_": "seqdiff.processes.AutoregressiveProcess"},
        "sampler": {"_target_": "seqdiff.samplers.AutoregressiveSampler", "temperature": 1.0, "top_p": 1.0},
    }


def import_hyenadna(hf_dir: str | Path, out_dir: str | Path, *, seq_len: int | None = None,
                    domain: dict[str, Any] | None = None) -> Path:
    """Write ``out_dir`` as a seqdiff AR run holding the HyenaDNA checkpoint in ``hf_dir``.

    Args:
        hf_dir: local ``LongSafari/hyenadna-*-seqlen-hf`` directory.
        out_dir: new run directory (must not hold a checkpoint yet).
        seq_len: the run's ``data.seq_len`` -- default sampling length and a judge's context;
            default ``max_seq_len - 2`` (HyenaDNA's ``l_max`` counts two special tokens).
        domain: seqdiff domain config (default :func:`default_domain`, i.e. ``configs/domain/dna.yaml``).

    Returns the run directory; ``seqdiff.load(out_dir)`` opens it.
    """
    from seqdiff.run import build_run
    from seqdiff.io.checkpoint import list_checkpoints, save_checkpoint

    hf = Path(hf_dir).expanduser()
    out = Path(out_dir).expanduser()
    s = parse_config(read_config(hf), hf / "config.json")
    if list_checkpoints(out / "checkpoints") or (out / "checkpoints" / "latest").exists():
        raise CheckpointError(f"{out}: already holds a run (checkpoints/); import into a new directory")
    if seq_len is None:
        seq_len = max(1, s.max_seq_len - 2)
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or not 1 <= seq_len <= s.max_seq_len:
        raise ConfigError(f"HyenaDNA import: seq_len must be an integer in [1, max_seq_len={s.max_seq_len}], got {seq_len!r}")
    _check_tokenizer(hf)
    src = read_hf_directory(hf)
    where = str(hf / src.weights_name)
    freqs = check_tensors(src.tensors, s, where)
    emb_key = PREFIX + "embeddings.word_embeddings.weight"
    head_stored = "lm_head.weight" in src.tensors
    tie = s.tie or (head_stored and torch.equal(src.tensors["lm_head.weight"], src.tensors[emb_key]))
    domain = dict(domain or default_domain())
    cfg = run_config(s, seq_len, domain, tie)
    exp = build_run(cfg)
    rows = token_rows(exp.vocab)
    state = map_state(src.tensors, s, rows, freqs, tie)
    exp.model.load_state_dict(state, strict=True)
    meta = {
        "imported": {
            "from": str(hf.resolve()),
            "model_type": MODEL_TYPE,
            "architectures": src.config.get("architectures"),
            "name_or_path": src.config.get("_name_or_path"),
            "files_sha256": src.sha256(),
            "source_dtype": str(src.tensors[emb_key].dtype).replace("torch.", ""),
            "head": "tied (lm_head equals the embedding)" if tie and head_stored and not s.tie else ("tied" if tie else "untied"),
            "token_rows": {tok: r for tok, r in zip(exp.vocab.tokens, rows)},
            "dropped_hyenadna_ids": [i for i in range(s.vocab_rows) if i not in rows],
            "parameters": exp.model.num_parameters(),
        }
    }
    save_checkpoint(out / "checkpoints", 0, model=exp.model, config=cfg, vocab=exp.vocab, meta=meta, artifacts=exp.domain)
    return out


# ------------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    """``seqdiff import HF_DIR OUT_DIR [--seq-len N]`` (also ``hf_dir=... out=... seq_len=...``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    spelled = {"hf_dir": None, "out": None, "seq_len": None}
    rest = []
    for a in argv:
        key, eq, value = a.partition("=")
        if eq and key in spelled and not a.startswith("-"):
            spelled[key] = value
        else:
            rest.append(a)
    ap = argparse.ArgumentParser(
        prog="seqdiff import",
        description="Import a local LongSafari/hyenadna-*-seqlen-hf directory as a seqdiff AR run (no remote code).",
    )
    ap.add_argument("hf_dir", nargs="?", default=spelled["hf_dir"], help="the Hugging Face model directory")
    ap.add_argument("out", nargs="?", default=spelled["out"], help="the new run directory")
    ap.add_argument("--seq-len", type=int, default=None, help="data.seq_len of the run (default: max_seq_len - 2)")
    args = ap.parse_args(rest)
    try:
        seq_len = args.seq_len if args.seq_len is not None else (int(spelled["seq_len"]) if spelled["seq_len"] else None)
    except ValueError:
        print(f"error: seq_len must be an integer, got {spelled['seq_len']!r}", file=sys.stderr)
        return 2
    if not args.hf_dir or not args.out:
        print("error: usage: seqdiff import HF_DIR OUT_DIR [--seq-len N]  (or hf_dir=... out=...)", file=sys.stderr)
        return 2
    try:
        model_type = read_config(args.hf_dir).get("model_type")
        if model_type != MODEL_TYPE:
            raise CheckpointError(f"{Path(args.hf_dir) / 'config.json'}: model_type {model_type!r} has no importer (supported: {MODEL_TYPE})")
        out = import_hyenadna(args.hf_dir, args.out, seq_len=seq_len)
    except SeqdiffError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"imported {args.hf_dir} -> {out}\n  seqdiff sample checkpoint={out} sampler=autoregressive\n"
          f"  seqdiff eval checkpoint={out} sampler=autoregressive data=fasta data.fasta=GENOME.fa\n"
          f"  as a judge of another run's samples: seqdiff eval checkpoint=RUN eval.judge={out}")
    return 0
