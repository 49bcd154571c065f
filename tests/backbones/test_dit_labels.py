"""Labels in the DiT (seqdiff/backbones/dit.py): embeddings summed into the adaLN vector, an
unlabelled DiT exactly as before labels existed, and runs whose backbone takes no labels refused."""

from __future__ import annotations

import hashlib

import pytest
import torch

from seqdiff.backbones import DiT
from seqdiff.errors import ConfigError
from seqdiff.run import build_run
from support.labelled import labelled_config


def _fingerprint(**kw):
    torch.manual_seed(0)
    m = DiT(11, d_model=16, n_layers=2, n_heads=2, **kw)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # move the zero-initialised weights so the output depends on every parameter
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    x = torch.randint(0, 11, (3, 9), generator=g)
    t = torch.rand(3, generator=g) if kw.get("time_conditioning") else None
    h = hashlib.sha256()
    for k, v in m.state_dict().items():
        h.update(k.encode())
        h.update(v.numpy().tobytes())
    return len(m.state_dict()), h.hexdigest()[:16], m(x, t).double().sum().item()


# Computed with the DiT of main at 0b8a906, before labels (same script, torch 2.13.0 CPU):
# parameter names, seeded initial values and outputs of an unlabelled DiT must not move.
BEFORE_LABELS = {
    "plain": ({}, (25, "89a480c27cdd817e", -4.832124260254204)),
    "time": ({"time_conditioning": True}, (25, "80a1f67c40cb7575", -12.87650574510917)),
    "conv": ({"conv_kernel": 3}, (29, "13601720c0ea4328", 1.2849980583414435)),
}


@pytest.mark.parametrize("name", sorted(BEFORE_LABELS))
def test_an_unlabelled_dit_is_bit_identical_to_the_one_before_labels(name):
    kw, want = BEFORE_LABELS[name]
    assert _fingerprint(**kw) == want
    assert _fingerprint(label_sizes=None, **kw) == want


def _moved(m):
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return m


@pytest.mark.parametrize("time_conditioning", [False, True])
def test_the_label_drives_the_adaln_vector(time_conditioning):
    torch.manual_seed(0)
    m = _moved(DiT(7, d_model=16, n_layers=1, n_heads=2, label_sizes=[3, 2], time_conditioning=time_conditioning))
    names = dict(m.named_parameters())
    assert names["label_embed.0.weight"].shape == (4, 128) and names["label_embed.1.weight"].shape == (3, 128)
    assert "blocks.0.adaLN.weight" in names  # adaLN even without time conditioning
    x = torch.randint(0, 5, (2, 6))
    t = torch.rand(2) if time_conditioning else None
    a = m(x, t, label=torch.tensor([[0, 1], [0, 1]]))
    b = m(x, t, label=torch.tensor([[2, 1], [2, 1]]))
    assert not torch.allclose(a, b)
    assert torch.equal(m(x, t), m(x, t, label=torch.tensor([[3, 2], [3, 2]])))  # None: "no label" in every field
    one = m(x[:1], t[:1] if t is not None else None, label=torch.tensor([[0, 1]]))
    assert torch.allclose(one, a[:1], atol=1e-6)  # each row reads its own label


def test_bad_labels_are_refused():
    m = DiT(7, d_model=16, n_layers=1, n_heads=2, label_sizes=[3])
    x = torch.randint(0, 5, (2, 6))
    with pytest.raises(ValueError, match="out of range"):
        m(x, label=torch.tensor([[4], [0]]))
    with pytest.raises(ValueError, match=r"label must be \[batch, 1\]"):
        m(x, label=torch.tensor([[0, 0], [0, 0]]))
    with pytest.raises(ValueError, match="built without labels"):
        DiT(7, d_model=16, n_layers=1, n_heads=2)(x, label=torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="causal .* takes no labels"):
        DiT(7, d_model=16, n_layers=1, n_heads=2, causal=True, label_sizes=[3])


def test_a_labelled_run_on_a_backbone_without_labels_is_one_line_at_build_time():
    cfg = labelled_config(backbone={"_target_": "seqdiff.backbones.HyenaDNA", "d_model": 16, "n_layers": 1})
    with pytest.raises(ConfigError, match=r"^backbone: seqdiff.backbones.HyenaDNA takes no labels, but the run has "
                                          r"label fields \['species'\] \(labelled backbones: dit, dit_conv, bimamba, "
                                          r"caduceus_ps, caduceus_ph\)$"):
        build_run(cfg, resolve_labels=True)
    cfg = labelled_config()
    cfg["process"] = {"_target_": "seqdiff.processes.MaskedDiffusion", "corruption": "ens"}
    with pytest.raises(ConfigError, match="ENS corruption does not take labels"):
        build_run(cfg, resolve_labels=True)


def test_label_settings_on_unlabelled_data_are_refused():
    cfg = labelled_config()
    cfg["data"] = {"_target_": "seqdiff_recipes.synthetic.MarkovData", "seq_len": 16, "train_tokens": 2048,
                   "valid_tokens": 512, "test_tokens": 512, "record_length": 256}
    with pytest.raises(ConfigError, match=r"^label: the data \(seqdiff_recipes.synthetic.MarkovData\) has no labels"):
        build_run(cfg, resolve_labels=True)
    cfg["label"] = {"dropout": 0.0}
    run = build_run(cfg, resolve_labels=True)  # no labels asked for: an unlabelled run
    assert run.labels is None and run.model.label_sizes == ()
