"""Named sizes live once, in the backbone classes' PRESETS; the YAMLs name them.

seqdiff/backbones/presets.py: a shape argument given (not None) wins over the preset's
number, which wins over the class default; ``backbone.<key>=...`` overrides keep working.
"""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from seqdiff.backbones import caduceus, dit, hyena
from seqdiff.backbones.presets import resolve
from seqdiff.cli.main import config_dir
from seqdiff.cli.validate import check_arguments
from seqdiff.errors import ConfigError
from seqdiff.utils.instantiate import instantiate, locate

CONFIGS = config_dir()
TABLES = {dit.DiT: dit.PRESETS, caduceus.CaduceusPS: caduceus.PRESETS, caduceus.CaduceusPH: caduceus.PRESETS,
          hyena.HyenaDNA: hyena.PRESETS}
SHAPE_KEYS = ("d_model", "n_layers", "n_heads", "d_inner")


def composed(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def test_resolve_given_then_preset_then_default():
    presets = {"big": {"d_model": 512, "n_layers": 8}}
    assert resolve("X", presets, "big", {"d_model": 1, "n_layers": 2}, d_model=None, n_layers=3) == {"d_model": 512, "n_layers": 3}
    assert resolve("X", presets, None, {"d_model": 1, "n_layers": 2}, d_model=None, n_layers=None) == {"d_model": 1, "n_layers": 2}
    with pytest.raises(ConfigError, match=r"^X: unknown preset 'huge'; choose from \['big'\]$"):
        resolve("X", presets, "huge", {}, d_model=None)


def test_python_api_is_unchanged():
    with torch.device("meta"):
        assert dit.DiT(11).blocks[0].n_heads == 4 and len(dit.DiT(11).blocks) == 4  # the defaults
        small = dit.DiT.from_preset("small", 11)
        assert len(small.blocks) == 12 and small.blocks[0].n_heads == 12 and small.embed.weight.shape[1] == 768
        assert len(dit.DiT(11, preset="small", n_layers=2).blocks) == 2
        ps = caduceus.CaduceusPS.from_preset("d256_l16", 7, complement_map=(0, 1, 2, 3, 4, 5, 6))
        assert len(ps.layers) == 16 and ps.embedding.weight.shape[1] == 256
        ph = caduceus.CaduceusPH(7, complement_map=(0, 1, 2, 3, 4, 5, 6), preset="d118_l4")
        assert len(ph.layers) == 4 and ph.embedding.weight.shape[1] == 118


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIGS / "backbone").glob("*.yaml")))
def test_no_backbone_yaml_writes_a_size_its_class_keeps(name):
    """A YAML names a preset (its shape keys null) or gives a shape that is no preset's: every
    size is written once."""
    b = composed(f"backbone={name}")["backbone"]
    cls = locate(b["_target_"])
    table = TABLES.get(cls)
    if table is None:
        assert "preset" not in b
        return
    if b.get("preset") is not None:
        assert b["preset"] in table
        assert all(b.get(k) is None for k in table[b["preset"]] if k in SHAPE_KEYS), b
    for preset, shape in table.items():
        sizes = {k: v for k, v in shape.items() if k in SHAPE_KEYS}
        assert {k: b.get(k) for k in sizes} != sizes, f"{name} repeats preset {preset}"


def test_overrides_change_one_number_of_a_preset():
    b = composed("backbone=dit_small", "backbone.n_layers=2")["backbone"]
    with torch.device("meta"):
        m = instantiate(b, section="backbone", vocab_size=11)
    assert (m.embed.weight.shape[1], len(m.blocks), m.blocks[0].n_heads) == (768, 2, 12)
    b = composed("backbone=caduceus_ps_d118", "backbone.d_model=64")["backbone"]
    with torch.device("meta"):
        m = instantiate(b, section="backbone", vocab_size=7, complement_map=(0, 1, 2, 3, 4, 5, 6))
    assert (m.embedding.weight.shape[1], len(m.layers)) == (64, 4)


def test_the_cli_accepts_null_sizes_only_where_a_preset_fills_them():
    check_arguments(composed("backbone=dit_small"))
    check_arguments(composed("backbone=hyenadna", "process=ar", "sampler=autoregressive"))
    with pytest.raises(ConfigError, match=r"^backbone.d_model: expected an integer >= 1, got None \(null takes the size "
                                          r"from backbone.preset, which is not set\)$"):
        check_arguments(composed("backbone=bimamba", "backbone.d_model=null"))
    with pytest.raises(ConfigError, match=r"^backbone.n_heads: expected an integer >= 1, got None"):
        check_arguments(composed("backbone=dit", "backbone.n_heads=null"))  # dit.yaml: preset null
    with pytest.raises(ConfigError, match=r"^backbone.n_layers: expected an integer >= 1, got 0$"):
        check_arguments(composed("backbone=dit_small", "backbone.n_layers=0"))
