"""SSM backbones (BiMamba, Caduceus-PS/PH, AR Mamba) under the backbone contract."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from safetensors.torch import load_model, save_model

from seqdiff.backbones import ARMamba, BiMamba, CaduceusPH, CaduceusPS
from seqdiff.backbones.base import supports_incremental_decoding
from seqdiff.backbones.bimamba import BiMambaMixer
from seqdiff.vocab import VocabSpec
from support.ssm import randomize

# Our DNA vocabulary: A C G T N [MASK] [PAD].
DNA = VocabSpec(size=7, mask_id=5, pad_id=6, complement=(3, 2, 1, 0, 4, 5, 6))
SMALL = dict(d_model=16, n_layers=2, d_state=4)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny shapes, one intra-op thread


def build(kind: str, **kw):
    kw = {**SMALL, **kw}
    if kind == "bimamba":
        return BiMamba(DNA.size, **kw)
    if kind == "ps":
        return CaduceusPS(DNA.size, vocab=DNA, **kw)
    if kind == "ph":
        return CaduceusPH(DNA.size, vocab=DNA, **kw)
    return ARMamba(DNA.size, **kw)


KINDS = ["bimamba", "ps", "ph", "ar"]


@pytest.mark.parametrize("kind", KINDS)
def test_contract_shapes_and_output_mask(kind):
    model = randomize(build(kind))
    x = torch.randint(0, 6, (3, 21))
    logits = model(x, None, None)
    assert logits.shape == (3, 21, DNA.size) and logits.dtype == torch.float32
    sel = torch.rand(3, 21) < 0.4
    packed = model(x, None, None, output_mask=sel)
    assert packed.shape == (int(sel.sum()), DNA.size)
    torch.testing.assert_close(packed, logits[sel], rtol=1e-5, atol=1e-5)
    assert model.vocab_size == DNA.size and model.causal == (kind == "ar") and not model.time_conditioning


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_is_invisible_to_real_positions(kind, side):
    """Documented behaviour: a padded position is an identity SSM step (Delta = 0) and reads
    as zero to the conv, so with end padding every real position sees the unpadded sequence."""
    model = randomize(build(kind))
    L, real = 24, 17
    x = torch.randint(0, 5, (2, L))
    mask = torch.zeros(2, L, dtype=torch.bool)
    sl = slice(0, real) if side == "right" else slice(L - real, L)
    mask[:, sl] = True
    garbage = x.masked_fill(~mask, 0) + (~mask) * torch.randint(0, 6, (2, L))  # anything in the pads
    padded = model(garbage, None, mask)[:, sl]
    alone = model(x[:, sl], None, None)
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)


def test_ar_mamba_is_causal():
    model = randomize(build("ar"))
    x = torch.randint(0, 6, (2, 30))
    base = model(x)
    for i in (0, 7, 28):
        y = x.clone()
        y[:, i + 1 :] = torch.randint(0, 6, y[:, i + 1 :].shape)
        torch.testing.assert_close(model(y)[:, : i + 1], base[:, : i + 1], rtol=0, atol=0)
        z = x.clone()
        z[:, i] = (z[:, i] + 1) % 6  # and the position itself does matter
        assert not torch.allclose(model(z)[:, i], base[:, i])


def test_bidirectional_models_see_the_future():
    for kind in ("bimamba", "ps", "ph"):
        model = randomize(build(kind))
        x = torch.randint(0, 5, (1, 20))
        y = x.clone()
        y[0, 15] = (y[0, 15] + 1) % 5
        assert not torch.allclose(model(x)[0, 3], model(y)[0, 3]), kind


def test_incremental_decoding_matches_forward():
    model = randomize(build("ar", n_layers=3))
    assert supports_incremental_decoding(model)
    x = torch.randint(0, 7, (3, 25))
    full = model(x)
    cache = model.init_cache(3, 25)
    steps = torch.stack([model.decode_step(x[:, i], cache) for i in range(25)], dim=1)
    torch.testing.assert_close(steps, full, rtol=1e-5, atol=1e-5)
    assert cache.position == 25
    with pytest.raises(ValueError, match="full"):
        model.decode_step(x[:, 0], cache)


def test_bimamba_shares_in_and_out_projections_only():
    mixer = BiMambaMixer(16)  # d_state 16: the count below is Caduceus' formula
    f, r = mixer.mamba_fwd, mixer.mamba_rev
    assert f.in_proj.weight is r.in_proj.weight and f.out_proj.weight is r.out_proj.weight
    for name in ("conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A_log", "D"):
        assert f.get_parameter(name) is not r.get_parameter(name), name
    d, R = 16, 1
    assert sum(p.numel() for p in mixer.parameters()) == 6 * d * d + 8 * d * R + 220 * d  # + d for the norm
    untied = BiMambaMixer(16, d_state=4, weight_tie=False)
    assert untied.mamba_fwd.in_proj.weight is not untied.mamba_rev.in_proj.weight


@pytest.mark.parametrize("masked", [False, True])
def test_fused_bidirectional_scan_equals_two_mambas(masked):
    mixer = randomize(BiMambaMixer(16, d_state=4))
    h = torch.randn(2, 19, 16)
    mask = None
    if masked:
        mask = torch.ones(2, 19, dtype=torch.bool)
        mask[1, 12:] = False
    fused = mixer(h, mask)
    rmask = None if mask is None else mask.flip(1)
    by_hand = mixer.mamba_fwd(h, mask) + mixer.mamba_rev(h.flip(1), rmask).flip(1)
    torch.testing.assert_close(fused, by_hand, rtol=1e-5, atol=1e-5)


def test_mamba_init_follows_the_paper():
    mamba = build("bimamba").layers[0].mixer.mamba_fwd
    A = -torch.exp(mamba.A_log)
    torch.testing.assert_close(A, -torch.arange(1.0, 5.0).repeat(32, 1))  # S4D-real
    dt = torch.nn.functional.softplus(mamba.dt_proj.bias)
    assert dt.min() >= 1e-4 - 1e-9 and dt.max() <= 0.1 + 1e-6
    assert torch.all(mamba.D == 1) and mamba.x_proj.bias is None and mamba.in_proj.bias is None


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_round_trip_through_safetensors(kind, tmp_path):
    model = randomize(build(kind), seed=1)
    save_model(model, str(tmp_path / "m.safetensors"))
    other = build(kind).eval()
    load_model(other, str(tmp_path / "m.safetensors"))
    x = torch.randint(0, 6, (2, 15))
    torch.testing.assert_close(other(x), model(x), rtol=0, atol=0)
    if kind != "ps":  # ties survive the round trip
        assert other.lm_head.weight is other.embedding.weight


@pytest.mark.parametrize("kind", ["bimamba", "ps", "ph"])
def test_time_conditioning(kind):
    model = randomize(build(kind, time_conditioning=True))
    assert model.time_conditioning
    x = torch.randint(0, 6, (2, 12))
    with pytest.raises(ValueError, match="without t"):
        model(x, None)
    a, b = model(x, torch.tensor([0.1, 0.1])), model(x, torch.tensor([0.9, 0.9]))
    assert not torch.allclose(a, b)


def test_ar_mamba_refuses_time_conditioning():
    with pytest.raises(ValueError, match="time conditioning"):
        build("ar", time_conditioning=True)


def test_param_count_formula():
    """Caduceus notes: 6d^2 + 8dR + 221d per BiMamba layer (+ embedding and final norm)."""
    for d, layers in ((24, 2), (40, 3)):
        R = math.ceil(d / 16)
        expect = layers * (6 * d * d + 8 * d * R + 221 * d) + 7 * d + d
        assert BiMamba(7, d_model=d, n_layers=layers).num_parameters() == expect


@pytest.mark.gpu
@pytest.mark.skipif(
    not (torch.cuda.is_available() and importlib.util.find_spec("mamba_ssm") is not None), reason="needs CUDA and mamba-ssm"
)
def test_cuda_kernels_match_cpu_backbone():
    model = randomize(build("ps", d_model=64, d_state=16))
    x = torch.randint(0, 6, (2, 300))
    cpu = model(x)
    gpu = model.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=6e-4, atol=2e-3)


def test_cpu_causal_conv_matches_conv1d_with_gradients():
    from seqdiff.backbones.mamba import causal_conv_silu

    x = torch.randn(2, 6, 11, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.silu(torch.nn.functional.conv1d(x, w.unsqueeze(1), b, padding=3, groups=6)[..., :11])
    torch.testing.assert_close(causal_conv_silu(x, w, b), ref)
    assert torch.autograd.gradcheck(causal_conv_silu, (x, w, b))
    assert torch.autograd.gradcheck(lambda x, w: causal_conv_silu(x, w, None), (x, w))
