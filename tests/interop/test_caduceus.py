"""Caduceus-PS / PH checkpoints -> seqdiff: the token permutation, every tensor in place, the
reference logits, exact RC equivariance, bitwise round trips, named errors.

State dicts are CaduceusForMaskedLM's layout (``caduceus.`` prefix, ``lm_head``, the published
config.json keys) at a tiny d_model with random weights; ``interop_layouts.caduceus_reference``
re-implements the RCPS embedding / blocks / head (or plain BiMamba for PH) from Caduceus'
semantics on the float64 reference selective scan.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from support.interop_layouts import COMPLEMENT16, caduceus_config, caduceus_reference, caduceus_state
from seqdiff_recipes.dna import DNADomain
from seqdiff.backbones import CaduceusPH, CaduceusPS
from seqdiff.backbones.caduceus import reverse_complement
from seqdiff.errors import CheckpointError
from seqdiff.interop import caduceus
from seqdiff.interop.runs import state_equal

F = Path("model.safetensors")
C = Path("config.json")
DNA = DNADomain().vocab  # A C G T N [MASK] [PAD]
ROWS = [7, 8, 9, 10, 11, 3, 4]  # their Caduceus ids


def build(backbone: dict, vocab=DNA):
    cls = {"seqdiff.backbones.CaduceusPS": CaduceusPS, "seqdiff.backbones.CaduceusPH": CaduceusPH}[backbone["_target_"]]
    return cls(vocab.size, vocab=vocab, **{k: v for k, v in backbone.items() if k != "_target_"})


def imported(cfg, state=None, vocab=DNA, **over):
    state = state if state is not None else caduceus_state(cfg)
    backbone, sd = caduceus.to_seqdiff(cfg, dict(state), vocab, F, C)
    model = build({**backbone, **over}, vocab)
    model.load_state_dict(sd, strict=True)
    return model.eval(), backbone, sd


def dna_ids(B=2, L=40, seed=0, vocab_size=5):
    return torch.randint(0, vocab_size, (B, L), generator=torch.Generator().manual_seed(seed))


def test_token_permutation_is_fixed_and_matches_the_tokenizer():
    assert caduceus.token_rows(DNA, "x") == ROWS
    with_specials = DNADomain(bos=True, eos=True).vocab
    assert with_specials.tokens[7:] == ("[BOS]", "[EOS]")
    assert caduceus.token_rows(with_specials, "x") == ROWS + [2, 1]  # [EOS] is Caduceus' [SEP]
    # the complement maps agree under the permutation: comp_caduceus[ROWS[i]] == ROWS[comp_seqdiff[i]]
    assert all(COMPLEMENT16[ROWS[i]] == ROWS[c] for i, c in enumerate(DNA.complement))
    # the published tokenizer's ids (tokenization_caduceus.py): specials first, then A C G T N
    assert [caduceus.CADUCEUS_IDS[t] for t in "ACGTN"] == [7, 8, 9, 10, 11]
    assert [caduceus.CADUCEUS_IDS[t] for t in ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]")] == list(range(7))


@pytest.mark.parametrize("rcps", [True, False])
def test_every_tensor_lands_where_it_should(rcps):
    cfg = caduceus_config(rcps)
    st = caduceus_state(cfg)
    _, backbone, sd = imported(cfg, st)
    P = "caduceus.backbone."
    emb = P + ("embeddings.word_embeddings.embedding.weight" if rcps else "embeddings.word_embeddings.weight")
    assert torch.equal(sd["embedding.weight"], st[emb][ROWS])
    mix = "mixer.submodule." if rcps else "mixer."
    for i in range(2):
        assert torch.equal(sd[f"layers.{i}.norm.weight"], st[P + f"layers.{i}.norm.weight"])
        for d in ("mamba_fwd", "mamba_rev"):
            for k in ("A_log", "D", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias"):
                assert torch.equal(sd[f"layers.{i}.mixer.{d}.{k}"], st[P + f"layers.{i}.{mix}{d}.{k}"])
            for k in ("in_proj.weight", "out_proj.weight"):  # tied: the reverse direction reads the forward one
                assert torch.equal(sd[f"layers.{i}.mixer.{d}.{k}"], st[P + f"layers.{i}.{mix}mamba_fwd.{k}"])
    assert torch.equal(sd["norm_f.weight"], st[P + "norm_f.weight"])
    assert backbone["_target_"].endswith("CaduceusPS" if rcps else "CaduceusPH")
    if rcps:
        assert backbone["swap_halves"] is True and "lm_head.weight" not in sd
    else:
        assert sd["lm_head.weight"] is sd["embedding.weight"] and backbone["tie_embeddings"] is True


@pytest.mark.parametrize("variant", ["ps", "ps_unfused", "ph", "ph_untied_head", "ps_untied_directions", "ph_ew_multiply"])
def test_logits_equal_the_reference_forward(variant):
    over = {"ps_unfused": {"fused_add_norm": False}, "ph_untied_head": {"tie_word_embeddings": False},
            "ps_untied_directions": {"bidirectional_weight_tie": False},
            "ph_ew_multiply": {"bidirectional_strategy": "ew_multiply"}}.get(variant, {})
    cfg = caduceus_config(variant.startswith("ps"), **over)
    st = caduceus_state(cfg, seed=1)
    model, backbone, _ = imported(cfg, st, **({} if cfg["rcps"] else {"conjoin": "never"}))
    assert backbone.get("swap_halves", True) == cfg["fused_add_norm"]
    x = dna_ids()
    ref = caduceus_reference(st, cfg, torch.tensor(ROWS)[x])[..., ROWS]  # the kept ids' logits
    with torch.no_grad():
        ours = model(x)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-4, atol=1e-4)


def test_swap_matters_for_the_fused_ps_checkpoints():
    """Negative control: without the fused path's half swap the logits are a different function."""
    cfg = caduceus_config(True)
    st = caduceus_state(cfg, seed=1)
    model, _, _ = imported(cfg, st, swap_halves=False)
    x = dna_ids()
    ref = caduceus_reference(st, cfg, torch.tensor(ROWS)[x])[..., ROWS]
    with torch.no_grad():
        assert float((model(x).double() - ref).abs().max()) > 1e-2


def test_ph_conjoined_logits_average_the_two_strands_of_the_reference():
    cfg = caduceus_config(False)
    st = caduceus_state(cfg, seed=2)
    model, backbone, _ = imported(cfg, st)
    assert backbone["conjoin"] == "eval"
    x = dna_ids(seed=3)
    rows = torch.tensor(ROWS)
    fwd = caduceus_reference(st, cfg, rows[x])[..., ROWS]
    rc = caduceus_reference(st, cfg, rows[reverse_complement(x, torch.tensor(DNA.complement))])[..., ROWS]
    expected = 0.5 * (fwd + rc.flip(1)[..., list(DNA.complement)])
    with torch.no_grad():
        torch.testing.assert_close(model(x).double(), expected, rtol=1e-4, atol=1e-4)


def test_imported_ps_is_exactly_rc_equivariant():
    cfg = caduceus_config(True, d_model=16, n_layer=3)
    model, _, _ = imported(cfg, caduceus_state(cfg, seed=4))
    comp = torch.tensor(DNA.complement)
    x = dna_ids(B=3, L=33, seed=5)
    with torch.no_grad():
        a = model(x)
        b = model(reverse_complement(x, comp))
    assert torch.equal(b, a.flip(1)[..., comp])  # bitwise: logits(rc x)_{t,v} = logits(x)_{L-1-t, comp v}


@pytest.mark.parametrize("rcps", [True, False])
def test_import_export_import_is_bitwise(rcps):
    cfg = caduceus_config(rcps)
    _, backbone, sd1 = imported(cfg)
    hf, tensors = caduceus.from_seqdiff(backbone, sd1, DNA, 1024, "run")
    assert hf["vocab_size"] == 16 and hf["rcps"] is rcps and hf["complement_map"]["7"] == 10
    backbone2, sd2 = caduceus.to_seqdiff(hf, tensors, DNA, F, C)
    assert backbone2 == backbone
    assert state_equal(sd1, sd2) == []


def test_seqdiff_caduceus_export_is_caduceus_function_and_reimports_bitwise():
    """A seqdiff-trained PS (with [BOS]/[EOS] ids) written in Caduceus' layout: the reference forward
    on the exported tensors gives seqdiff's logits; re-import gives the tensors back."""
    vocab = DNADomain(bos=True, eos=True).vocab
    torch.manual_seed(3)
    model = CaduceusPS(vocab.size, vocab=vocab, d_model=12, n_layers=2).eval()
    backbone = {"_target_": "seqdiff.backbones.CaduceusPS", "d_model": 12, "n_layers": 2, "swap_halves": True}
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    hf, tensors = caduceus.from_seqdiff(backbone, sd, vocab, 1024, "run")
    rows = caduceus.token_rows(vocab, "x")
    x = dna_ids(vocab_size=5)
    with torch.no_grad():
        ours = model(x)
    ref = caduceus_reference(tensors, {**hf, "ssm_cfg": hf["ssm_cfg"]}, torch.tensor(rows)[x])[..., rows]
    torch.testing.assert_close(ours.double(), ref, rtol=1e-4, atol=1e-4)
    _, sd2 = caduceus.to_seqdiff(hf, tensors, vocab, F, C)
    assert state_equal(sd, sd2) == []


def test_duplicate_tied_names_are_accepted_when_equal_and_refused_when_not():
    cfg = caduceus_config(True)
    st = caduceus_state(cfg, duplicates=True)
    _, _, sd = imported(cfg, st)  # HF-style files without the duplicates are the other case (default)
    bad = dict(st)
    key = "caduceus.backbone.layers.1.mixer.submodule.mamba_rev.in_proj.weight"
    bad[key] = bad[key] + 1e-3
    with pytest.raises(CheckpointError, match=f"'{key}' should be tied to .*mamba_fwd.in_proj.weight' but differs"):
        caduceus.to_seqdiff(cfg, bad, DNA, F, C)
    bad = dict(st)
    bad["lm_head.lm_head.weight"] = bad["lm_head.lm_head.weight"] * 2
    with pytest.raises(CheckpointError, match="'lm_head.lm_head.weight' should be tied"):
        caduceus.to_seqdiff(cfg, bad, DNA, F, C)


def _msg(cfg, state, vocab=DNA) -> str:
    with pytest.raises(CheckpointError) as e:
        caduceus.to_seqdiff(cfg, state, vocab, F, C)
    return str(e.value)


def test_bad_layouts_and_configs_are_named():
    cfg = caduceus_config(True)
    st = caduceus_state(cfg)
    key = "caduceus.backbone.layers.0.mixer.submodule.mamba_fwd.x_proj.weight"
    bad = {**st, key: torch.zeros(33, 25)}
    assert f"'{key}' has shape [33, 25], expected [33, 24] from config.json d_model and ssm_cfg" in _msg(cfg, bad)
    assert "missing tensor 'caduceus.backbone.layers.2.norm.weight'" in _msg({**cfg, "n_layer": 3}, st)
    assert "expected [16, 16] from config.json vocab_size" in _msg({**cfg, "d_model": 16}, st)
    assert "unexpected tensor 'caduceus.backbone.layers.1." in _msg({**cfg, "n_layer": 1}, st)
    assert "rms_norm=false" in _msg({**cfg, "rms_norm": False}, st)
    assert "ssm_cfg key 'headdim'" in _msg({**cfg, "ssm_cfg": {**cfg["ssm_cfg"], "headdim": 32}}, st)
    assert "complement_map maps id 7 to 9" in _msg({**cfg, "complement_map": {**cfg["complement_map"], "7": 9}}, st)
    bad = {**st, "lm_head.complement_map": torch.arange(16)}
    assert "buffer 'lm_head.complement_map' is" in _msg(cfg, bad)
    assert "tie_word_embeddings=false with rcps=true" in _msg({**cfg, "tie_word_embeddings": False}, st)
    no_comp = DNADomain().vocab.__class__(size=7, mask_id=5, pad_id=6, tokens=DNA.tokens)
    assert "needs the domain's complement map" in _msg(cfg, st, no_comp)
    protein = DNA.__class__(size=4, mask_id=2, pad_id=3, tokens=("A", "Q", "[MASK]", "[PAD]"))
    assert "seqdiff token 1 'Q' has no Caduceus id" in _msg(cfg, st, protein)


def test_published_tokenizer_config_is_checked():
    good = caduceus.tokenizer_files(1024)["tokenizer_config.json"]
    caduceus.check_tokenizer(good, C)
    bad = {**good, "added_tokens_decoder": {**good["added_tokens_decoder"], "3": {"content": "[PAD]"}}}
    with pytest.raises(CheckpointError, match="added_tokens_decoder gives id 3 to '\\[PAD\\]'"):
        caduceus.check_tokenizer(bad, C)
    with pytest.raises(CheckpointError, match="characters"):
        caduceus.check_tokenizer({**good, "characters": ["A", "C", "G", "U", "N"]}, C)


def test_published_parameter_counts():
    """Sizes of the published models with Caduceus' 16 rows (caduceus-notes §1.7), as imported
    with seqdiff's 7 ids: 470,702 - 9 * 118 for d=118/4 layers."""
    cfg = caduceus_config(True, d_model=118, n_layer=4)
    model, _, _ = imported(cfg, caduceus_state(cfg))
    assert model.num_parameters() == 470_702 - 9 * 118
