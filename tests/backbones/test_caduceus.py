"""Caduceus: reverse-complement equivariance, published parameter counts, training."""

from __future__ import annotations

import pytest
import torch

from seqdiff.backbones import BiMamba, CaduceusPH, CaduceusPS
from seqdiff.backbones.caduceus import PRESETS, PUBLISHED_VOCAB, reverse_complement
from seqdiff.processes import MaskedDiffusion
from seqdiff.vocab import VocabSpec
from support.ssm import randomize

DNA = VocabSpec(size=7, mask_id=5, pad_id=6, complement=(3, 2, 1, 0, 4, 5, 6))  # A C G T N [MASK] [PAD]
COMP = torch.tensor(DNA.complement)
SMALL = dict(d_model=16, n_layers=3, d_state=8)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny shapes, one intra-op thread


def rc_logits(logits: torch.Tensor) -> torch.Tensor:
    """What the logits of rc(x) must be: position L-1-t, vocabulary entry comp(v)."""
    return logits.flip(1)[..., COMP]


def rc_error(model, x, mask=None, t=None):
    rc_mask = None if mask is None else mask.flip(1)
    a = model(reverse_complement(x, COMP), t, rc_mask)
    b = rc_logits(model(x, t, mask))
    if mask is not None:
        a, b = a[rc_mask], b[rc_mask]
    return (a - b).abs().max().item(), b.abs().max().item()


@pytest.mark.parametrize("swap", [True, False])
def test_ps_is_rc_equivariant_fp32(swap):
    model = randomize(CaduceusPS(DNA.size, vocab=DNA, swap_halves=swap, **SMALL))
    x = torch.randint(0, 5, (3, 64))  # A C G T N
    err, scale = rc_error(model, x)
    assert scale > 1.0  # non-trivial logits
    assert err <= 1e-5


def test_ps_is_rc_equivariant_fp64_with_masks_and_time():
    model = randomize(CaduceusPS(DNA.size, vocab=DNA, time_conditioning=True, d_model=16, n_layers=2, d_state=4)).double()
    x = torch.randint(0, 6, (2, 40))  # [MASK] included: it is its own complement
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[0, 31:] = False
    err, _ = rc_error(model, x, mask, t=torch.tensor([0.3, 0.7], dtype=torch.float64))
    assert err <= 1e-12


def test_ps_backbone_features_are_rc_equivariant():
    model = randomize(CaduceusPS(DNA.size, vocab=DNA, **SMALL))
    x = torch.randint(0, 5, (2, 30))
    h = model.features(x, None, None)
    h_rc = model.features(reverse_complement(x, COMP), None, None)
    torch.testing.assert_close(h_rc, h.flip(1, 2), rtol=0, atol=1e-5)  # H(rc x) = R(H(x))
    inv = model.invariant_features(x)
    torch.testing.assert_close(model.invariant_features(reverse_complement(x, COMP)), inv.flip(1), rtol=0, atol=1e-5)


@pytest.mark.parametrize("conjoin", ["eval", "always"])
def test_ph_conjoined_output_is_rc_equivariant(conjoin):
    model = randomize(CaduceusPH(DNA.size, vocab=DNA, conjoin=conjoin, **SMALL))
    x = torch.randint(0, 5, (3, 50))
    err, scale = rc_error(model, x)
    assert scale > 1.0 and err <= 1e-5


def test_ph_conjoin_is_the_documented_average():
    model = randomize(CaduceusPH(DNA.size, vocab=DNA, conjoin="eval", **SMALL))
    x = torch.randint(0, 5, (2, 33))
    plain = BiMamba.forward(model, x)  # the underlying BiMamba, no averaging
    plain_rc = BiMamba.forward(model, reverse_complement(x, COMP))
    torch.testing.assert_close(model(x), 0.5 * (plain + rc_logits(plain_rc)), rtol=1e-5, atol=1e-5)
    sel = torch.rand(2, 33) < 0.3
    torch.testing.assert_close(model(x, output_mask=sel), model(x)[sel], rtol=1e-5, atol=1e-5)


def test_plain_bimamba_is_not_equivariant():
    """Negative control: the test above would catch a model that is not equivariant."""
    never = randomize(CaduceusPH(DNA.size, vocab=DNA, conjoin="never", **SMALL))
    err, _ = rc_error(never, torch.randint(0, 5, (2, 50)))
    assert err > 1e-2


def test_ph_rc_augmentation_maps_logits_back():
    """With rc_augment=1 every training sequence runs reverse-complemented and its logits are
    mapped back to the input's positions and ids, i.e. training on RC-augmented data."""
    model = randomize(CaduceusPH(DNA.size, vocab=DNA, rc_augment=1.0, conjoin="never", **SMALL)).train()
    x = torch.randint(0, 5, (2, 30))
    sel = torch.rand(2, 30) < 0.5
    expected = rc_logits(BiMamba.forward(model, reverse_complement(x, COMP)))
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(x, output_mask=sel), expected[sel], rtol=1e-5, atol=1e-5)
    model.rc_augment = 0.0
    torch.testing.assert_close(model(x), BiMamba.forward(model, x), rtol=0, atol=0)


PUBLISHED_COUNTS = {"d118_l4": 470_702, "d256_l4": 1_934_592, "d256_l16": 7_725_312}


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("cls", [CaduceusPS, CaduceusPH])
def test_published_parameter_counts(cls, preset):
    model = cls.from_preset(preset, **PUBLISHED_VOCAB)  # 12 ids padded to 16, tied head
    assert model.num_parameters() == PUBLISHED_COUNTS[preset]
    # Ours: 7 ids, no padding -> 9 fewer embedding rows.
    ours = cls.from_preset(preset, DNA.size, vocab=DNA)
    assert ours.num_parameters() == PUBLISHED_COUNTS[preset] - 9 * PRESETS[preset]["d_model"]


def test_ar_mamba_baseline_count():
    from seqdiff.backbones import ARMamba

    assert ARMamba(12, d_model=128, n_layers=4, pad_vocab_multiple=8).num_parameters() == 468_608
    assert ARMamba(DNA.size, d_model=128, n_layers=4).num_parameters() == 468_608 - 9 * 128


@pytest.mark.parametrize("cls", [CaduceusPS, CaduceusPH])
def test_missing_complement_map_is_a_clear_error(cls):
    no_comp = VocabSpec(size=7, mask_id=5, pad_id=6)
    with pytest.raises(ValueError, match="complement map"):
        cls(no_comp.size, vocab=no_comp, **SMALL)
    with pytest.raises(ValueError, match="involution"):
        cls(7, complement_map=(1, 2, 0, 3, 4, 5, 6), **SMALL)


def periodic_data(n: int, L: int, seed: int) -> torch.Tensor:
    """ACGTACGT... with a random phase: each token is fixed by its neighbours, so a model
    that uses context drives the loss well below the unigram entropy ln 4."""
    g = torch.Generator().manual_seed(seed)
    return (torch.arange(L) + torch.randint(0, 4, (n, 1), generator=g)) % 4


@pytest.mark.parametrize("cls", [CaduceusPS, BiMamba, CaduceusPH])
def test_tiny_model_trains_with_masked_diffusion(cls):
    torch.manual_seed(0)
    kw = dict(d_model=32, n_layers=2)
    model = cls(DNA.size, vocab=DNA, **kw) if cls is not BiMamba else cls(DNA.size, **kw)
    process = MaskedDiffusion(DNA)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    losses = []
    model.train()
    for step in range(20):
        out = process.loss(model, periodic_data(16, 32, step), generator=g)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert all(v == v for v in losses), losses  # no NaN
    assert last < 0.5 * first and last < 0.8, losses
