"""HyenaDNA backbone: FFT convolution, implicit filters, causality, padding, decoding, sizes.

(tests/backbones/test_contract.py also runs configs/backbone/hyenadna.yaml through the
generic contract; tests/interop/test_hyenadna.py covers the importer.)
"""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from seqdiff.backbones.hyena import PRESETS, HyenaDNA, ImplicitFilter, fft_causal_conv, positional_features
from seqdiff.cli.main import config_dir, main
from seqdiff.errors import ConfigError


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny shapes, one intra-op thread


def direct_causal_conv(u: torch.Tensor, k: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """O(L^2) reference: y[b, c, t] = sum_{s <= t} k[c, t - s] u[b, c, s] + D[c] u[b, c, t]."""
    B, C, L = u.shape
    y = torch.zeros_like(u)
    for t in range(L):
        for s in range(t + 1):
            y[:, :, t] += k[:, t - s] * u[:, :, s]
        y[:, :, t] += D * u[:, :, t]
    return y


@pytest.mark.parametrize("L", [1, 2, 7, 64, 100])
def test_fft_convolution_equals_direct_convolution(L):
    g = torch.Generator().manual_seed(L)
    u = torch.randn(2, 3, L, generator=g, dtype=torch.float64)
    k = torch.randn(3, L, generator=g, dtype=torch.float64)
    D = torch.randn(3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(fft_causal_conv(u, k, D), direct_causal_conv(u, k, D), rtol=1e-12, atol=1e-12)


def test_fft_convolution_has_no_wraparound():
    # An impulse at the last position must not reach earlier outputs (a length-L circular
    # convolution would put k[1:] there); an impulse at 0 returns the filter itself.
    L = 16
    k = torch.randn(1, L, dtype=torch.float64)
    last = torch.zeros(1, 1, L, dtype=torch.float64)
    last[..., -1] = 1.0
    y = fft_causal_conv(last, k, torch.zeros(1, dtype=torch.float64))
    assert y[..., :-1].abs().max() < 1e-12 and abs(float(y[0, 0, -1] - k[0, 0])) < 1e-12
    first = torch.zeros(1, 1, L, dtype=torch.float64)
    first[..., 0] = 1.0
    torch.testing.assert_close(fft_causal_conv(first, k, torch.zeros(1, dtype=torch.float64))[0], k, rtol=0, atol=1e-12)


def test_positional_features_are_hyenadna_complex_exponentials():
    T, e = 20, 7
    z, tau = positional_features(T, e)
    bands = (e - 1) // 2
    f = torch.linspace(1e-4, bands - 1, bands)
    w = 2 * math.pi * torch.arange(T, dtype=torch.float64)[:, None] / T
    c = torch.exp(-1j * f.double()[None, :] * w)  # HyenaDNA's exp(-i f w): [real | imag]
    assert z.shape == (T, e)
    torch.testing.assert_close(z[:, 0], torch.linspace(0, 1, T))
    torch.testing.assert_close(z[:, 1:].double(), torch.cat([c.real, c.imag], dim=1), rtol=0, atol=1e-5)
    torch.testing.assert_close(tau, torch.linspace(0, 1, T))
    with pytest.raises(ConfigError, match="odd"):
        positional_features(T, 4)


def test_implicit_filter_shape_and_exponential_decay():
    T, C = 11, 6  # tau = t / 10, so tau = 0.3 falls on position 3
    filt = ImplicitFilter(C, T, emb_dim=5, width=8, num_inner=2, shift=0.05)
    k = filt.kernel(7)
    assert k.shape == (C, 7)
    torch.testing.assert_close(k, (filt.mlp(7) * filt.window(7)).T)
    win = filt.window(T) - 0.05  # exp(-tau |delta_c|)
    torch.testing.assert_close(win[0], torch.ones(C))  # no decay at lag 0
    assert (win[1:] < win[:-1]).all()  # strictly decreasing in the lag, every channel
    # Closed form: the fastest channel reaches target 1e-2 at 30 % of the length, the
    # slowest at 150 % (so exp(-|ln 0.01| / 1.5) at the end of the filter).
    assert abs(float(win[3, -1]) - 1e-2) < 1e-6
    assert abs(float(win[-1, 0]) - 1e-2 ** (1 / 1.5)) < 1e-6
    # The window bounds the filter: |k| <= |MLP| * (decay + shift).
    assert (k.abs() <= filt.mlp(7).abs().T * filt.window(7).T + 1e-7).all()
    with pytest.raises(ConfigError, match="max_len"):
        filt.kernel(T + 1)


def per_layer(d, d_inner, F=64, e=5, m=2, K=3, N=2):
    """Parameters of one block, written out term by term (module doc of seqdiff/backbones/hyena.py)."""
    in_proj = (N + 1) * d * d + (N + 1) * d
    short = (N + 1) * d * K + (N + 1) * d
    out_proj = d * d + d
    filt = (e * F + F) + m * (F * F + F) + F * (N - 1) * d + F + (N - 1) * d  # MLP, shared freq, D
    norms = 2 * 2 * d
    mlp = d * d_inner + d_inner + d_inner * d + d
    return in_proj + short + out_proj + filt + norms + mlp


def test_parameter_count_against_the_published_433k():
    # MDLM's DNA table lists HyenaDNA at 433K parameters (recalled; the paper's config is not
    # published). HyenaDNA-tiny-1k's shape (d=128, 2 layers, MLP 512, filter MLP 64 wide on
    # 5 positional features) with its vocabulary (12 ids padded to 16), head tied:
    model = HyenaDNA.from_preset("mdlm_dna", 12, pad_vocab_multiple=8)
    n = model.num_parameters()
    assert n == 2 * per_layer(128, 512) + 16 * 128 + 2 * 128 == 436_096
    assert abs(n / 433_000 - 1) < 0.01  # 0.72 % above the published figure
    assert HyenaDNA.from_preset("mdlm_dna", 7).num_parameters() == 434_944  # our 7-id DNA vocabulary


# Published model.safetensors sizes (Hugging Face file listings of LongSafari/*-hf): fp32
# tensors = every parameter plus the per-layer buffers z [T, 5], t [T], deltas [d], with the
# head stored untied (tie_word_embeddings: false).
PUBLISHED_MB = {"tiny_1k_d256": 6.64, "tiny_16k_d128": 2.55, "small_32k": 16.3, "medium_160k": 57.0,
                "medium_450k": 113.0, "large_1m": 218.0}


@pytest.mark.parametrize("preset", sorted(PUBLISHED_MB))
def test_presets_match_the_published_checkpoint_sizes(preset):
    with torch.device("meta"):  # shapes only: large_1m's buffers alone would be 200 MB
        model = HyenaDNA.from_preset(preset, 12, pad_vocab_multiple=8, tie_embeddings=False)
    floats = sum(t.numel() for t in model.state_dict().values())
    assert abs(4 * floats / 1e6 / PUBLISHED_MB[preset] - 1) < 0.005


def random_model(dtype=torch.float64, **kw) -> HyenaDNA:
    torch.manual_seed(0)
    m = HyenaDNA(7, **{"d_model": 16, "n_layers": 2, "max_len": 64, "filter_order": 8, **kw}).to(dtype)
    with torch.no_grad():  # off the init so every path carries signal
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.eval()


@pytest.mark.parametrize("order", [2, 3])
def test_logits_at_i_do_not_depend_on_later_tokens(order):
    model = random_model(order=order)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 5, (2, 48), generator=g)
    with torch.no_grad():
        base = model(x)
        for i in (0, 5, 30, 46):
            y = x.clone()
            y[:, i + 1 :] = torch.randint(0, 5, (2, 47 - i), generator=g)
            assert (model(y)[:, : i + 1] - base[:, : i + 1]).abs().max() < 1e-10
            z = x.clone()
            z[:, i] = (x[:, i] + 1) % 5  # the token at i itself does reach position i
            assert (model(z)[:, i] - base[:, i]).abs().max() > 1e-4


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_content_does_not_change_real_positions(side):
    model = random_model()
    g = torch.Generator().manual_seed(2)
    L, n = 40, 25
    x = torch.randint(0, 5, (2, n), generator=g)
    junk = torch.randint(0, 7, (2, L - n), generator=g)  # any ids, [MASK]/[PAD] included
    junk2 = torch.randint(0, 7, (2, L - n), generator=g)
    pad = torch.zeros(2, L - n, dtype=torch.bool)
    real = torch.ones(2, n, dtype=torch.bool)
    cat = (lambda a, b: torch.cat([a, b], 1)) if side == "right" else (lambda a, b: torch.cat([b, a], 1))
    valid = cat(real, pad)
    with torch.no_grad():
        a = model(cat(x, junk), None, valid)[valid].view(2, n, -1)
        b = model(cat(x, junk2), None, valid)[valid].view(2, n, -1)
        alone = model(x)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(a, alone, rtol=0, atol=1e-10)  # exactly the unpadded sequence's


def test_incremental_decoding_matches_forward():
    model = random_model(dtype=torch.float32)
    x = torch.randint(0, 5, (3, 30), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = model(x)
        cache = model.init_cache(3, 30)
        steps = torch.stack([model.decode_step(x[:, i], cache) for i in range(30)], 1)
    torch.testing.assert_close(steps, full, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="full"):
        model.decode_step(x[:, 0], cache)


def test_too_long_input_is_refused():
    model = random_model()
    with pytest.raises(ConfigError, match="max_len=64"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ConfigError, match="causal"):
        HyenaDNA(7, causal=False)


def test_backbone_yaml_is_the_mdlm_preset():
    """The YAML names the preset (the shape is written once, in PRESETS) and builds exactly it."""
    yaml = OmegaConf.load(config_dir() / "backbone" / "hyenadna.yaml")
    assert yaml.preset == "mdlm_dna" and yaml.d_model is None and yaml.n_layers is None and yaml.d_inner is None
    assert yaml.causal is True and yaml.tie_embeddings is True
    kw = {k: v for k, v in OmegaConf.to_container(yaml, resolve=True).items() if k != "_target_"}
    with torch.device("meta"):
        built, preset = HyenaDNA(7, **kw), HyenaDNA.from_preset("mdlm_dna", 7)
    p = PRESETS["mdlm_dna"]
    assert built.embedding.weight.shape[1] == p["d_model"] and len(built.layers) == p["n_layers"]
    assert {k: v.shape for k, v in built.state_dict().items()} == {k: v.shape for k, v in preset.state_dict().items()}


def test_cli_trains_hyenadna_with_the_ar_process(tmp_path, capsys):
    run = tmp_path / "run"
    args = [
        "train", "process=ar", "backbone=hyenadna", "sampler=autoregressive", f"run_dir={run}",
        "trainer.steps=20", "trainer.batch_size=8", "trainer.progress=false", "trainer.log_every=10",
        "trainer.eval_every=20", "trainer.eval_sequences=8", "trainer.tensorboard=false",
        "data.seq_len=32", "data.train_tokens=8192", "data.valid_tokens=1024", "data.test_tokens=1024",
        "data.record_length=512", "eval.max_sequences=8", "eval.num_samples=2",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "HyenaDNA 434,944 parameters" in out and "process: autoregressive" in out
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-00000020"
    import json

    report = json.loads((run / "eval.json").read_text())
    assert report["likelihood"]["estimator"] == "exact" and math.isfinite(report["likelihood"]["bits_per_token"])
