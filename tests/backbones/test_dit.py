"""DiT backbone: the contract, attention masking, causality, time conditioning, presets."""

import pytest
import torch

from seqdiff.backbones import DiT
from seqdiff.backbones.dit import PRESETS, LocalConv


def randomize(model: torch.nn.Module) -> torch.nn.Module:
    # The output head and adaLN start at zero (uniform predictions); perturb everything
    # so that the dependence tests below cannot pass trivially.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def test_shapes_and_output_mask():
    m = randomize(DiT(11, d_model=32, n_layers=2, n_heads=4))
    x = torch.randint(0, 11, (3, 17))
    full = m(x)
    assert full.shape == (3, 17, 11)
    sel = torch.rand(3, 17) < 0.4
    assert torch.allclose(m(x, output_mask=sel), full[sel], atol=1e-6)


def test_bidirectional_and_padding_invariance():
    m = randomize(DiT(11, d_model=32, n_layers=2, n_heads=4))
    x = torch.randint(0, 9, (2, 10))
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % 9
    assert not torch.allclose(m(x)[:, 0], m(y)[:, 0])  # position 0 sees the last token
    valid = torch.ones_like(x, dtype=torch.bool)
    valid[:, 7:] = False
    z = x.clone()
    z[:, 7:] = 10  # different junk in the padding
    a, b = m(x, valid=valid), m(z, valid=valid)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert torch.isfinite(a).all()
    # a padded batch gives the same logits on real tokens as the unpadded sequence alone
    assert torch.allclose(m(x[:, :7]), a[:, :7], atol=1e-5)


def test_causal_flag():
    m = randomize(DiT(11, d_model=32, n_layers=2, n_heads=4, causal=True))
    x = torch.randint(0, 9, (2, 10))
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % 9
    assert torch.allclose(m(x)[:, :6], m(y)[:, :6], atol=1e-6)
    assert not torch.allclose(m(x)[:, 6:], m(y)[:, 6:])
    valid = torch.ones_like(x, dtype=torch.bool)
    valid[:, 8:] = False
    assert torch.allclose(m(x, valid=valid)[:, :8], m(x)[:, :8], atol=1e-5)
    with pytest.raises(ValueError, match="time conditioning"):
        DiT(11, causal=True, time_conditioning=True)


def test_time_conditioning():
    m = randomize(DiT(11, d_model=32, n_layers=2, n_heads=4, time_conditioning=True))
    x = torch.randint(0, 9, (2, 10))
    assert not torch.allclose(m(x, torch.tensor([0.1, 0.1])), m(x, torch.tensor([0.9, 0.9])))
    with pytest.raises(ValueError, match="without t"):
        m(x)
    assert m.time_conditioning and not DiT(11).time_conditioning


def test_zero_init_head_gives_uniform_predictions():
    m = DiT(11, d_model=32, n_layers=2, n_heads=4)
    assert torch.count_nonzero(m(torch.randint(0, 9, (2, 5)))) == 0


@pytest.mark.parametrize("name", ["tiny", "small", "medium"])
def test_presets_match_mdlm_shapes(name):
    with torch.device("meta"):
        m = DiT.from_preset(name, 50258, time_conditioning=True)
    d = PRESETS[name]["d_model"]
    assert len(m.blocks) == PRESETS[name]["n_layers"] and m.blocks[0].n_heads == PRESETS[name]["n_heads"]
    # MDLM's DiT (adaLN on, untied head) differs from ours only by its LayerNorm weights
    # (2 per block + 1 final, weight only): our adaLN-modulated norms have none.
    mdlm_params = {"tiny": 80.1e6, "small": 169.6e6, "medium": 424.5e6}[name]
    ours = sum(p.numel() for p in m.parameters())
    ln = (2 * PRESETS[name]["n_layers"] + 1) * d
    assert abs(ours + ln - mdlm_params) / mdlm_params < 1e-3


def test_kv_cache_decoding_matches_the_full_forward():
    m = randomize(DiT(11, d_model=32, n_layers=2, n_heads=4, causal=True))
    x = torch.randint(0, 9, (3, 12))
    full = m(x)
    cache = m.init_cache(3, 12)
    with torch.no_grad():
        steps = torch.stack([m.decode_step(x[:, i], cache) for i in range(12)], dim=1)
    assert torch.allclose(steps, full, atol=1e-5)
    with pytest.raises(ValueError, match="exceeds max_length"):
        m.decode_step(x[:, 0], cache)
    with pytest.raises(ValueError, match="causal"):
        DiT(11).init_cache(1, 4)


# ---------------------------------------------------------------- the local convolution option
def test_conv_is_off_by_default_and_adds_only_its_filters():
    plain, conv = DiT(11, d_model=32, n_layers=2, n_heads=4), DiT(11, d_model=32, n_layers=2, n_heads=4, conv_kernel=3)
    assert all(block.conv is None for block in plain.blocks)  # MDLM's DiT: no convolution
    extra = sum(p.numel() for p in conv.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == 2 * (3 * 32 + 32)  # per block: a width-3 filter and a bias per channel
    with pytest.raises(ValueError, match="conv_kernel"):
        DiT(11, conv_kernel=-1)


@pytest.mark.parametrize("kernel", [3, 4])
def test_local_conv_reads_a_window_on_both_sides(kernel):
    conv = LocalConv(8, kernel, causal=False)
    torch.nn.init.normal_(conv.weight)
    left = (kernel - 1) // 2
    x = torch.randn(2, 12, 8)
    i = 6
    for j in range(12):  # y_i changes with x_j exactly when j is in its window
        y = x.clone()
        y[:, j] += 1.0
        changed = not torch.allclose(conv(x, None)[:, i], conv(y, None)[:, i])
        assert changed == (i - left <= j <= i - left + kernel - 1), j
    # the window is the formula's: y_i = b + sum_j w_j x_{i+j-left}
    want = conv.bias + sum(conv.weight[j] * x[:, i + j - left] for j in range(kernel))
    assert torch.allclose(conv(x, None)[:, i], want, atol=1e-6)


def test_local_conv_causal_reads_only_the_past():
    conv = LocalConv(8, 4, causal=True)
    torch.nn.init.normal_(conv.weight)
    x = torch.randn(2, 12, 8)
    i = 6
    for j in range(12):
        y = x.clone()
        y[:, j] += 1.0
        assert (not torch.allclose(conv(x, None)[:, i], conv(y, None)[:, i])) == (i - 3 <= j <= i), j


def test_conv_dit_is_bidirectional_and_ignores_padding():
    m = randomize(DiT(11, d_model=32, n_layers=2, n_heads=4, conv_kernel=3))
    x = torch.randint(0, 9, (2, 10))
    for j in (3, 5):  # position 4 depends on its neighbours on both sides
        y = x.clone()
        y[:, j] = (y[:, j] + 1) % 9
        assert not torch.allclose(m(x)[:, 4], m(y)[:, 4])
    valid = torch.ones_like(x, dtype=torch.bool)
    valid[:, 7:] = False
    z = x.clone()
    z[:, 7:] = 10  # junk in the padding, next to the last real token's window
    a, b = m(x, valid=valid), m(z, valid=valid)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert torch.allclose(m(x[:, :7]), a[:, :7], atol=1e-5)


def test_conv_dit_causal_has_no_dependence_on_the_future():
    m = randomize(DiT(11, d_model=32, n_layers=2, n_heads=4, causal=True, conv_kernel=4))
    x = torch.randint(0, 9, (2, 10))
    for j in range(10):
        y = x.clone()
        y[:, j] = (y[:, j] + 1) % 9
        assert torch.allclose(m(x)[:, :j], m(y)[:, :j], atol=1e-6), j
        assert not torch.allclose(m(x)[:, j], m(y)[:, j]), j


@pytest.mark.parametrize("kernel", [1, 2, 4])
def test_kv_cache_decoding_with_conv_matches_the_full_forward(kernel):
    m = randomize(DiT(11, d_model=32, n_layers=2, n_heads=4, causal=True, conv_kernel=kernel))
    x = torch.randint(0, 9, (3, 12))
    full = m(x)
    cache = m.init_cache(3, 12)
    with torch.no_grad():
        steps = torch.stack([m.decode_step(x[:, i], cache) for i in range(12)], dim=1)
    assert torch.allclose(steps, full, atol=1e-5)


def test_quickstart_ar_is_the_quickstart_dit_made_causal():
    # The README's MDLM/AR comparison is fair only if both runs train the same network
    # (bar causality) with the same budget: compose both and compare.
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from seqdiff.cli.main import config_dir

    def composed(*overrides):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return OmegaConf.to_container(compose(config_name="config", overrides=list(overrides)), resolve=True)

    mdlm, ar = composed(), composed("experiment=quickstart_ar")
    assert mdlm["backbone"]["conv_kernel"] > 0 and not mdlm["backbone"]["causal"] and ar["backbone"]["causal"]
    differ = {k for k in mdlm["backbone"].keys() | ar["backbone"].keys() if mdlm["backbone"].get(k) != ar["backbone"].get(k)}
    assert differ == {"causal"}
    assert mdlm["trainer"] == ar["trainer"] and mdlm["data"] == ar["data"]
