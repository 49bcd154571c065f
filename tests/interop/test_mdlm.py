"""MDLM-OWT checkpoints -> seqdiff's DiT: every tensor where it belongs, MDLM's logits, bitwise round trips.

The state dicts are MDLM-OWT's layout (``backbone.`` keys, shapes from its config) at a tiny width
with random weights, including non-trivial adaLN and sigma_map tensors so every fold is exercised.
The reference forward (``interop_layouts.mdlm_reference``) is written from MDLM's semantics and
shares no code with seqdiff's DiT.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from support.interop_layouts import MDLM_TINY, mdlm_reference, mdlm_state
from seqdiff.backbones import DiT
from seqdiff.errors import CheckpointError
from seqdiff.interop import mdlm
from seqdiff.interop.runs import state_equal
from seqdiff.vocab import VocabSpec

V = MDLM_TINY["vocab_size"]
VOCAB = VocabSpec(size=V + 1, mask_id=V - 1, pad_id=V)  # GPT-2-like ids + [MASK], then seqdiff's own [PAD]
F = Path("model.safetensors")
C = Path("config.json")


def imported(cfg=MDLM_TINY, state=None, **backbone_over):
    state = state if state is not None else mdlm_state(cfg)
    backbone, sd = mdlm.to_seqdiff(cfg, dict(state), VOCAB, F, C)
    backbone = {**backbone, **backbone_over}
    model = DiT(vocab_size=VOCAB.size, **{k: v for k, v in backbone.items() if k != "_target_"})
    model.load_state_dict(sd, strict=True)
    return model.eval(), backbone, sd


def ids(B=3, L=48, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, L), generator=g)  # includes the [MASK] id V-1 at some positions


def test_backbone_config_is_mdlms_shape():
    _, backbone, _ = imported()
    assert backbone == {"_target_": "seqdiff.backbones.DiT", "d_model": 32, "n_layers": 2, "n_heads": 4, "mlp_ratio": 4,
                        "dropout": 0.1, "time_conditioning": False, "cond_dim": 16, "causal": False,
                        "rope_base": 10000.0, "gelu": "tanh", "rope_angles": "float32"}


def test_every_tensor_lands_where_it_should():
    st = mdlm_state()
    _, _, sd = imported(state=st)
    b = lambda k: st["backbone." + k].double()  # noqa: E731
    # the constant conditioning, computed independently of the importer
    emb0 = torch.cat([torch.ones(128), torch.zeros(128)]).double()
    c = torch.nn.functional.silu(b("sigma_map.mlp.2.weight") @ torch.nn.functional.silu(b("sigma_map.mlp.0.weight") @ emb0
                                 + b("sigma_map.mlp.0.bias")) + b("sigma_map.mlp.2.bias"))
    D, H = 32, 4
    hd = D // H
    for i in range(2):
        p = f"blocks.{i}."
        shift1, scale1, gate1, shift2, scale2, gate2 = (b(p + "adaLN_modulation.weight") @ c + b(p + "adaLN_modulation.bias")).chunk(6)
        torch.testing.assert_close(sd[p + "norm1.weight"].double(), b(p + "norm1.weight") * (1 + scale1), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(sd[p + "norm1.bias"].double(), shift1, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(sd[p + "norm2.bias"].double(), shift2, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(sd[p + "proj.weight"].double(), gate1[:, None] * b(p + "attn_out.weight"), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(sd[p + "mlp.2.weight"].double(), gate2[:, None] * b(p + "mlp.2.weight"), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(sd[p + "mlp.2.bias"].double(), gate2 * b(p + "mlp.2.bias"), rtol=1e-6, atol=1e-6)
        assert torch.equal(sd[p + "mlp.0.weight"], st["backbone." + p + "mlp.0.weight"])
        old = st["backbone." + p + "attn_qkv.weight"].view(3, H, hd, D)
        new = sd[p + "qkv.weight"].view(3, H, hd, D)
        for which in (0, 1):  # q, k: interleaved pair (2j, 2j+1) = MDLM's half-split (j, j + hd/2)
            for j in range(hd // 2):
                assert torch.equal(new[which, :, 2 * j], old[which, :, j])
                assert torch.equal(new[which, :, 2 * j + 1], old[which, :, j + hd // 2])
        assert torch.equal(new[2], old[2])  # v is not rotated: untouched
    assert torch.equal(sd["embed.weight"][:V], st["backbone.vocab_embed.embedding"])
    assert torch.equal(sd["out.weight"][:V], st["backbone.output_layer.linear.weight"])
    assert not sd["embed.weight"][V].any() and not sd["out.weight"][V].any()  # seqdiff's [PAD]: a zero row


def test_logits_equal_the_reference_forward():
    model, _, _ = imported()
    x = ids()
    st = mdlm_state()
    ref32 = mdlm_reference(st, MDLM_TINY, x)
    ref64 = mdlm_reference(st, MDLM_TINY, x, dtype=torch.float64)
    with torch.no_grad():
        ours = model(x)[..., :V]
    own_err = float((ref32.double() - ref64).abs().max())  # the reference's own float32 rounding
    err = float((ours.double() - ref64).abs().max())
    assert err <= 4 * own_err + 1e-6, (err, own_err)
    torch.testing.assert_close(ours, ref32, rtol=1e-4, atol=1e-4)


def test_logits_match_at_mdlm_length_1024():
    """At MDLM's row length the rotary table's arithmetic matters: float32 angles (MDLM's)."""
    cfg = {**MDLM_TINY, "n_blocks": 1, "n_heads": 2, "hidden_dim": 32}
    st = mdlm_state(cfg, seed=3)
    x = torch.randint(0, V, (1, 1024), generator=torch.Generator().manual_seed(2))
    ref32 = mdlm_reference(st, cfg, x)
    ref64 = mdlm_reference(st, cfg, x, dtype=torch.float64)
    own = float((ref32.double() - ref64).abs().max())
    model, _, _ = imported(cfg, st)
    with torch.no_grad():
        err = float((model(x)[..., :V].double() - ref64).abs().max())
    assert err <= 4 * own + 1e-6, (err, own)


@pytest.mark.parametrize("broken", ["gelu", "no_permutation", "angles"])
def test_each_difference_matters(broken):
    """Negative controls: dropping any one of the three fixes breaks the match (the test can fail)."""
    cfg = {**MDLM_TINY, "n_blocks": 1, "n_heads": 2}
    st = mdlm_state(cfg, seed=4)
    L = 1024 if broken == "angles" else 48
    x = torch.randint(0, V, (1, L), generator=torch.Generator().manual_seed(5))
    ref64 = mdlm_reference(st, cfg, x, dtype=torch.float64)
    own = float((mdlm_reference(st, cfg, x).double() - ref64).abs().max())
    over = {"gelu": {"gelu": "erf"}, "angles": {"rope_angles": "float64"}}.get(broken, {})
    model, _, sd = imported(cfg, st, **over)
    if broken == "no_permutation":
        for k in list(sd):
            if k.endswith("qkv.weight"):
                sd[k] = st["backbone." + k.replace("qkv", "attn_qkv")]
        model.load_state_dict(sd)
    with torch.no_grad():
        err = float((model(x)[..., :V].double() - ref64).abs().max())
    assert err > 4 * own + 1e-6, (broken, err, own)  # the criterion the positive tests assert fails


def test_inv_freq_buffer_is_optional():
    st = mdlm_state()
    del st["backbone.rotary_emb.inv_freq"]
    backbone, sd = mdlm.to_seqdiff(MDLM_TINY, st, VOCAB, F, C)
    assert backbone["rope_base"] == 10000.0 and state_equal(sd, imported()[2]) == []


def test_import_export_import_is_bitwise():
    _, backbone, sd1 = imported()
    hf, tensors = mdlm.from_seqdiff(backbone, sd1, VOCAB, 64, "run")
    assert hf["model_type"] == "mdlm" and "gelu" not in hf and "rope_angles" not in hf  # MDLM's own settings
    pads = {"seqdiff.pad.vocab_embed", "seqdiff.pad.linear.weight", "seqdiff.pad.linear.bias"}
    assert set(tensors) == set(mdlm_state()) | pads  # MDLM's key set, plus seqdiff's [PAD] rows
    backbone2, sd2 = mdlm.to_seqdiff(hf, tensors, VOCAB, F, C)
    assert backbone2 == backbone
    assert state_equal(sd1, sd2) == []


def test_seqdiff_dit_export_is_mdlms_function_and_reimports_bitwise():
    """A seqdiff-trained DiT (affine norms with bias) written in MDLM's layout: MDLM's reference
    forward on the exported tensors gives seqdiff's logits, and the import gives the tensors back."""
    torch.manual_seed(7)
    model = DiT(VOCAB.size, d_model=32, n_layers=2, n_heads=4, gelu="tanh", rope_angles="float32")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.eval()
    backbone = {"_target_": "seqdiff.backbones.DiT", "d_model": 32, "n_layers": 2, "n_heads": 4, "mlp_ratio": 4,
                "dropout": 0.0, "time_conditioning": False, "cond_dim": 128, "causal": False, "rope_base": 10000.0,
                "gelu": "tanh", "rope_angles": "float32"}
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    hf, tensors = mdlm.from_seqdiff(backbone, sd, VOCAB, 64, "run")
    x = ids()
    with torch.no_grad():
        ours = model(x)[..., :V]
    torch.testing.assert_close(mdlm_reference(tensors, hf, x), ours, rtol=1e-4, atol=1e-4)
    backbone2, sd2 = mdlm.to_seqdiff(hf, tensors, VOCAB, F, C)
    assert {k: backbone2[k] for k in ("gelu", "rope_angles", "d_model", "n_heads")} == \
        {"gelu": "tanh", "rope_angles": "float32", "d_model": 32, "n_heads": 4}
    assert state_equal(sd, sd2) == []


def test_erf_dit_export_records_its_activation():
    model = DiT(VOCAB.size, d_model=16, n_layers=1, n_heads=2)
    backbone = {"_target_": "seqdiff.backbones.DiT", "n_heads": 2, "cond_dim": 8}
    hf, tensors = mdlm.from_seqdiff(backbone, model.state_dict(), VOCAB, 32, "run")
    assert hf["gelu"] == "erf" and hf["rope_angles"] == "float64"
    backbone2, sd2 = mdlm.to_seqdiff(hf, tensors, VOCAB, F, C)
    assert backbone2["gelu"] == "erf" and backbone2["rope_angles"] == "float64"
    assert state_equal(dict(model.state_dict()), sd2) == []


def test_export_of_a_preset_sized_run_reads_the_heads_from_the_preset():
    """A run trained with backbone=dit_tiny stores ``preset: tiny`` and null sizes; the export
    takes n_heads from the preset (it would have been int(None))."""
    model = DiT(VOCAB.size, preset="tiny", n_layers=1)
    backbone = {"_target_": "seqdiff.backbones.DiT", "preset": "tiny", "d_model": None, "n_layers": 1, "n_heads": None}
    hf, tensors = mdlm.from_seqdiff(backbone, model.state_dict(), VOCAB, 32, "run")
    assert (hf["n_heads"], hf["hidden_dim"], hf["n_blocks"]) == (8, 512, 1)
    backbone2, sd2 = mdlm.to_seqdiff(hf, tensors, VOCAB, F, C)
    assert (backbone2["n_heads"], backbone2["d_model"]) == (8, 512)
    assert state_equal(dict(model.state_dict()), sd2) == []


def _msg(cfg, state, vocab=VOCAB) -> str:
    with pytest.raises(CheckpointError) as e:
        mdlm.to_seqdiff(cfg, state, vocab, F, C)
    return str(e.value)


def test_mis_shaped_missing_unexpected_tensors_are_named():
    st = mdlm_state()
    bad = dict(st)
    bad["backbone.blocks.1.attn_out.weight"] = torch.zeros(32, 31)
    assert "'backbone.blocks.1.attn_out.weight' has shape [32, 31], expected [32, 32]" in _msg(MDLM_TINY, bad)
    bad = dict(st)
    del bad["backbone.blocks.0.mlp.2.bias"]
    assert "missing tensor 'backbone.blocks.0.mlp.2.bias' (expected shape [32]" in _msg(MDLM_TINY, bad)
    bad = dict(st)
    bad["backbone.blocks.0.attn_qkv.bias"] = torch.zeros(96)
    assert "unexpected tensor 'backbone.blocks.0.attn_qkv.bias' [96]" in _msg(MDLM_TINY, bad)


def test_config_that_disagrees_with_the_tensors_is_named():
    st = mdlm_state()
    assert "expected [263, 48] from config.json vocab_size, hidden_dim" in _msg({**MDLM_TINY, "hidden_dim": 48}, st)
    more = _msg({**MDLM_TINY, "n_blocks": 3}, st)
    assert "missing tensor 'backbone.blocks.2.adaLN_modulation.weight'" in more
    fewer = _msg({**MDLM_TINY, "n_blocks": 1}, st)
    assert "unexpected tensor 'backbone.blocks.1." in fewer
    assert "time_conditioning=true is not importable" in _msg({**MDLM_TINY, "time_conditioning": True}, st)
    assert "key 'n_heads' is '4', expected int" in _msg({**MDLM_TINY, "n_heads": "4"}, st)
    wrong = VocabSpec(size=V + 2, mask_id=V, pad_id=V + 1)
    assert "the checkpoint has 263 token rows" in _msg(MDLM_TINY, st, wrong)
    bad = copy.deepcopy(st)
    bad["backbone.rotary_emb.inv_freq"] = bad["backbone.rotary_emb.inv_freq"].flip(0)
    assert "'rotary_emb.inv_freq' is not 1/base^(2j/head_dim)" in _msg(MDLM_TINY, bad)
