"""Published checkpoint layouts with random weights, and their reference forwards, for the interop tests.

The state dicts use the key names and shapes of the public checkpoints (MDLM's HF ``mdlm-owt``,
Caduceus' ``CaduceusForMaskedLM``) at a tiny width. The reference forwards are written here from
the papers' and reference code's semantics -- they share nothing with seqdiff's backbones: MDLM's
DiT with the half-split rotary, tanh GELU, adaLN modulation from the constant sigma=0
conditioning, bias-free float32 LayerNorm and a plain softmax attention; Caduceus' RCPS
embedding / blocks (with the fused path's half swap) / RC head, or plain BiMamba for PH, with
mamba-ssm's Mamba block built on ``seqdiff.ops.reference.selective_scan_ref`` (the float64
literal double loop). Nothing here is run on real checkpoints.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from seqdiff.ops.reference import selective_scan_ref

# ----------------------------------------------------------------------------- MDLM
MDLM_TINY = {"model_type": "mdlm", "architectures": ["MDLM"], "vocab_size": 263, "model_length": 64,
             "hidden_dim": 32, "cond_dim": 16, "n_blocks": 2, "n_heads": 4, "dropout": 0.1,
             "time_conditioning": False}


def mdlm_state(cfg: dict = MDLM_TINY, seed: int = 0, scale: float = 0.3) -> dict[str, torch.Tensor]:
    """Random tensors in MDLM-OWT's layout (``backbone.`` prefix), every adaLN non-trivial."""
    g = torch.Generator().manual_seed(seed)
    D, C, V, H = cfg["hidden_dim"], cfg["cond_dim"], cfg["vocab_size"], cfg["n_heads"]
    r = lambda *s, sd=scale: torch.randn(*s, generator=g) * sd  # noqa: E731
    hd = D // H
    st = {
        "vocab_embed.embedding": r(V, D, sd=1.0),
        "sigma_map.mlp.0.weight": r(C, 256, sd=0.1), "sigma_map.mlp.0.bias": r(C),
        "sigma_map.mlp.2.weight": r(C, C), "sigma_map.mlp.2.bias": r(C),
        "rotary_emb.inv_freq": 1.0 / (10_000 ** (torch.arange(0, hd, 2).float() / hd)),
        "output_layer.norm_final.weight": 1.0 + r(D, sd=0.1),
        "output_layer.linear.weight": r(V, D), "output_layer.linear.bias": r(V),
        "output_layer.adaLN_modulation.weight": r(2 * D, C), "output_layer.adaLN_modulation.bias": r(2 * D),
    }
    for i in range(cfg["n_blocks"]):
        p = f"blocks.{i}."
        st.update({
            p + "norm1.weight": 1.0 + r(D, sd=0.1), p + "norm2.weight": 1.0 + r(D, sd=0.1),
            p + "attn_qkv.weight": r(3 * D, D), p + "attn_out.weight": r(D, D),
            p + "mlp.0.weight": r(4 * D, D), p + "mlp.0.bias": r(4 * D),
            p + "mlp.2.weight": r(D, 4 * D, sd=0.15), p + "mlp.2.bias": r(D),
            p + "adaLN_modulation.weight": r(6 * D, C), p + "adaLN_modulation.bias": r(6 * D),
        })
    return {"backbone." + k: v for k, v in st.items()}


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def mdlm_reference(state: dict[str, torch.Tensor], cfg: dict, ids: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """MDLM's DiT forward at sigma = 0 (time_conditioning off), logits ``[B, L, V]``."""
    g = lambda k: state["backbone." + k].to(dtype)  # noqa: E731
    D, H = cfg["hidden_dim"], cfg["n_heads"]
    hd = D // H
    B, L = ids.shape
    x = g("vocab_embed.embedding")[ids]
    half = 128  # TimestepEmbedder(frequency_embedding_size=256), GLIDE's sinusoids of sigma
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, dtype=torch.float32) / half).to(dtype)
    args = torch.zeros(B, 1, dtype=dtype) * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    c = F.silu(F.silu(emb @ g("sigma_map.mlp.0.weight").T + g("sigma_map.mlp.0.bias")) @ g("sigma_map.mlp.2.weight").T
               + g("sigma_map.mlp.2.bias"))
    inv = state["backbone.rotary_emb.inv_freq"]  # angles in float32, as MDLM's Rotary computes them
    fr = torch.einsum("i,j->ij", torch.arange(L).float(), inv)
    e = torch.cat([fr, fr], dim=-1)
    cos, sin = e.cos().to(dtype)[:, None, :], e.sin().to(dtype)[:, None, :]  # [L, 1, hd]

    def rot(v):  # rotate_half: channel j turns with channel j + hd/2
        v1, v2 = v[..., : hd // 2], v[..., hd // 2 :]
        return v * cos + torch.cat([-v2, v1], dim=-1) * sin

    def ln(v, w):  # LayerNorm without bias, float32 (float64 in the float64 reference)
        mu = v.mean(-1, keepdim=True)
        var = ((v - mu) ** 2).mean(-1, keepdim=True)
        return (v - mu) / torch.sqrt(var + 1e-5) * w

    for i in range(cfg["n_blocks"]):
        p = f"blocks.{i}."
        mod = (c @ g(p + "adaLN_modulation.weight").T + g(p + "adaLN_modulation.bias"))[:, None]
        s1, sc1, g1, s2, sc2, g2 = mod.chunk(6, dim=-1)
        h = ln(x, g(p + "norm1.weight")) * (1 + sc1) + s1
        q, k, v = (h @ g(p + "attn_qkv.weight").T).view(B, L, 3, H, hd).unbind(2)
        q, k = rot(q), rot(k)
        scores = torch.einsum("blhd,bmhd->bhlm", q, k) / math.sqrt(hd)
        att = torch.softmax(scores, dim=-1)
        o = torch.einsum("bhlm,bmhd->blhd", att, v).reshape(B, L, D)
        x = x + g1 * (o @ g(p + "attn_out.weight").T)
        h = ln(x, g(p + "norm2.weight")) * (1 + sc2) + s2
        h = _gelu_tanh(h @ g(p + "mlp.0.weight").T + g(p + "mlp.0.bias")) @ g(p + "mlp.2.weight").T + g(p + "mlp.2.bias")
        x = x + g2 * h
    shift, scale = (c @ g("output_layer.adaLN_modulation.weight").T + g("output_layer.adaLN_modulation.bias"))[:, None].chunk(2, -1)
    x = ln(x, g("output_layer.norm_final.weight")) * (1 + scale) + shift
    return x @ g("output_layer.linear.weight").T + g("output_layer.linear.bias")


# ----------------------------------------------------------------------------- Caduceus
COMPLEMENT16 = [0, 1, 2, 3, 4, 5, 6, 10, 9, 8, 7, 11, 12, 13, 14, 15]


def caduceus_config(rcps: bool, d_model: int = 12, n_layer: int = 2, **kw) -> dict:
    """A config.json like the published ones (vocab_size saved as 16 after padding)."""
    cfg = {
        "architectures": ["CaduceusForMaskedLM"], "model_type": "caduceus", "bidirectional": True,
        "bidirectional_strategy": "add", "bidirectional_weight_tie": True,
        "complement_map": {str(i): c for i, c in enumerate(COMPLEMENT16)}, "d_model": d_model,
        "fused_add_norm": True, "initializer_cfg": {"initializer_range": 0.02, "n_residuals_per_layer": 1,
                                                    "rescale_prenorm_residual": True},
        "n_layer": n_layer, "norm_epsilon": 1e-5, "pad_vocab_size_multiple": 8, "rcps": rcps,
        "residual_in_fp32": False, "rms_norm": True,
        "ssm_cfg": {"bias": False, "conv_bias": True, "d_conv": 4, "d_state": 16, "dt_init": "random",
                    "dt_init_floor": 0.0001, "dt_max": 0.1, "dt_min": 0.001, "dt_rank": "auto", "dt_scale": 1.0,
                    "expand": 2, "use_fast_path": True},
        "torch_dtype": "float32", "transformers_version": "4.38.1", "vocab_size": 16,
    }
    cfg.update(kw)
    return cfg


def _dims(cfg: dict) -> tuple[int, int, int, int, int]:
    d = cfg["d_model"]
    s = cfg["ssm_cfg"]
    E = s["expand"] * d
    R = math.ceil(d / 16) if s["dt_rank"] == "auto" else s["dt_rank"]
    return d, E, R, s["d_state"], s["d_conv"]


def _names(cfg: dict) -> dict[str, str]:
    P = "caduceus.backbone."
    rcps, wrapped = cfg["rcps"], cfg["rcps"] and not cfg["fused_add_norm"]
    return {"embed": P + ("embeddings.word_embeddings.embedding.weight" if rcps else "embeddings.word_embeddings.weight"),
            "norm": "norm.submodule.weight" if wrapped else "norm.weight",
            "mixer": "mixer.submodule." if rcps else "mixer.",
            "norm_f": P + ("norm_f.submodule.weight" if wrapped else "norm_f.weight"),
            "head": "lm_head.lm_head.weight" if rcps else "lm_head.weight"}


def caduceus_state(cfg: dict, seed: int = 0, *, duplicates: bool = False) -> dict[str, torch.Tensor]:
    """Random tensors in CaduceusForMaskedLM's layout. ``duplicates``: also write the tied names
    (``mamba_rev`` projections, ``lm_head``) that Hugging Face drops when saving safetensors."""
    g = torch.Generator().manual_seed(seed)
    d, E, R, N, K = _dims(cfg)
    n = _names(cfg)
    r = lambda *s, sd=0.3: torch.randn(*s, generator=g) * sd  # noqa: E731
    emb = r(16, d, sd=1.0)
    st = {n["embed"]: emb, n["norm_f"]: 1.0 + r(d, sd=0.1)}
    if cfg["rcps"]:
        comp = torch.tensor(COMPLEMENT16)
        st["caduceus.backbone.embeddings.word_embeddings.complement_map"] = comp.clone()
        st["lm_head.complement_map"] = comp.clone()
    for i in range(cfg["n_layer"]):
        p = f"caduceus.backbone.layers.{i}."
        st[p + n["norm"]] = 1.0 + r(d, sd=0.1)
        for direction in ("mamba_fwd", "mamba_rev") if cfg["bidirectional"] else ("mamba_fwd",):
            m = p + n["mixer"] + direction + "."
            st.update({
                m + "A_log": torch.log(torch.rand(E, N, generator=g) * 4 + 0.5), m + "D": r(E, sd=1.0),
                m + "conv1d.weight": r(E, 1, K, sd=0.5), m + "conv1d.bias": r(E, sd=0.1),
                m + "x_proj.weight": r(R + 2 * N, E), m + "dt_proj.weight": r(E, R, sd=0.5),
                m + "dt_proj.bias": torch.log(torch.expm1(torch.rand(E, generator=g) * 0.1 + 0.001)),
            })
            tied = direction == "mamba_rev" and cfg["bidirectional_weight_tie"]
            fwd = p + n["mixer"] + "mamba_fwd."
            if not tied:
                st[m + "in_proj.weight"] = r(2 * E, d)
                st[m + "out_proj.weight"] = r(d, E)
            elif duplicates:
                st[m + "in_proj.weight"] = st[fwd + "in_proj.weight"].clone()
                st[m + "out_proj.weight"] = st[fwd + "out_proj.weight"].clone()
    if duplicates or not cfg.get("tie_word_embeddings", True):
        st[n["head"]] = emb.clone() if cfg.get("tie_word_embeddings", True) else r(16, d, sd=1.0)
    return st


def write_hf(d: Path, cfg: dict, state: dict[str, torch.Tensor], extra: dict[str, dict] | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    save_file({k: v.contiguous() for k, v in state.items()}, str(d / "model.safetensors"))
    for name, obj in (extra or {}).items():
        (d / name).write_text(json.dumps(obj))
    return d


def _rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _mamba(x, m, cfg):
    """mamba-ssm's Mamba.forward (slow path) on ``x [B, L, d]`` in float64; ``m(name)`` gives tensors."""
    d, E, R, N, K = _dims(cfg)
    L = x.shape[1]
    xz = (x @ m("in_proj.weight").T).transpose(1, 2)  # [B, 2E, L]
    xs, z = xz.chunk(2, dim=1)
    xs = F.silu(F.conv1d(xs, m("conv1d.weight"), m("conv1d.bias"), padding=K - 1, groups=E)[..., :L])
    dbl = xs.transpose(1, 2) @ m("x_proj.weight").T  # [B, L, R + 2N]
    dt, Bm, Cm = torch.split(dbl, [R, N, N], dim=-1)
    dt = (dt @ m("dt_proj.weight").T).transpose(1, 2)  # [B, E, L]
    A = -torch.exp(m("A_log"))
    y = selective_scan_ref(xs, dt, A, Bm.transpose(1, 2), Cm.transpose(1, 2), m("D"), z=z,
                           delta_bias=m("dt_proj.bias"), delta_softplus=True)
    return y.transpose(1, 2) @ m("out_proj.weight").T


def _bimamba(x, get, prefix, cfg):
    fwd = lambda k: get(prefix + "mamba_fwd." + k)  # noqa: E731

    def rev(k):
        if cfg["bidirectional_weight_tie"] and k in ("in_proj.weight", "out_proj.weight"):
            return fwd(k)
        return get(prefix + "mamba_rev." + k)

    out = _mamba(x, fwd, cfg)
    if not cfg["bidirectional"]:
        return out
    back = _mamba(x.flip(1), rev, cfg).flip(1)
    return out + back if cfg["bidirectional_strategy"] == "add" else out * back


def caduceus_reference(state: dict[str, torch.Tensor], cfg: dict, ids: torch.Tensor) -> torch.Tensor:
    """CaduceusForMaskedLM's logits ``[B, L, 16]`` (float64) for Caduceus ids ``[B, L]``."""
    get = lambda k: state[k].double()  # noqa: E731
    n = _names(cfg)
    eps = cfg["norm_epsilon"]
    emb = get(n["embed"])
    comp = torch.tensor(COMPLEMENT16)
    layers = range(cfg["n_layer"])
    if not cfg["rcps"]:  # Caduceus-PH: Mamba's Block, "Add -> RMSNorm -> BiMamba", then add + norm_f
        h, res = emb[ids], None
        for i in layers:
            p = f"caduceus.backbone.layers.{i}."
            res = h if res is None else h + res
            h = _bimamba(_rms(res, get(p + n["norm"]), eps), get, p + n["mixer"], cfg)
        h = _rms(h + res, get(n["norm_f"]), eps)
        head = get(n["head"]) if not cfg.get("tie_word_embeddings", True) else emb
        return h @ head.T
    # Caduceus-PS (RCPS). R(x) = flip over length and channels.
    R = lambda t: t.flip(-2, -1)  # noqa: E731
    rc_ids = comp[ids.flip(-1)]
    h = torch.cat([emb[ids], R(emb[rc_ids])], dim=-1)  # RCPSEmbedding
    d = cfg["d_model"]
    res = None
    for i in layers:
        p = f"caduceus.backbone.layers.{i}."
        w = get(p + n["norm"])
        if cfg["fused_add_norm"]:
            # RCPSMambaBlock's fused path: the "forward" half normalised is h[..., d:], the
            # "rc" half is R(h[..., :d]) -- the halves swap at every block.
            sf = h[..., d:] if res is None else h[..., d:] + res[..., d:]
            sr = R(h[..., :d]) if res is None else R(h[..., :d]) + R(res[..., :d])
            res = torch.cat([sf, R(sr)], dim=-1)
            hn = torch.cat([_rms(sf, w, eps), R(_rms(sr, w, eps))], dim=-1)
        else:  # RCPSAddNormWrapper
            s = h if res is None else h + res
            sf, sr = s[..., :d], R(s[..., d:])
            res = s
            hn = torch.cat([_rms(sf, w, eps), R(_rms(sr, w, eps))], dim=-1)
        mix = lambda t: _bimamba(t, get, p + n["mixer"], cfg)  # noqa: E731
        h = torch.cat([mix(hn[..., :d]), R(mix(R(hn[..., d:])))], dim=-1)  # RCPSWrapper
    s = h + res
    wf = get(n["norm_f"])
    h = torch.cat([_rms(s[..., :d], wf, eps), R(_rms(R(s[..., d:]), wf, eps))], dim=-1)  # final norm: no swap
    return h[..., :d] @ emb.T + h[..., d:].flip(-1) @ emb[comp].T  # RCPSLMHead, tied to the embedding
