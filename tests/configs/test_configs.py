"""Every YAML under configs/ composes with Hydra and instantiates with tiny overrides.

Each group option is composed on top of the defaults (with the companions it needs,
e.g. the AR process with a causal backbone), and each experiment on its own; the run
is built, a loss is computed and a few tokens are sampled on CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from seqdiff.cli.main import config_dir
from seqdiff.run import build_run
from support.config_options import COMPANIONS, options

CONFIGS = config_dir()
TINY_BACKBONE = {"d_model": 16, "n_layers": 1, "n_heads": 2, "dropout": 0.0}
TINY_DATA = {"seq_len": 16, "train_tokens": 4096, "valid_tokens": 512, "test_tokens": 512, "record_length": 256}


#: Data options that need files: a function writing them into tmp_path and returning overrides.
DATA_FIXTURES: dict[str, callable] = {}

from support.genome import config_fixture as _dna_fixture  # noqa: E402

DATA_FIXTURES["seqdiff_recipes.dna.FastaData"] = _dna_fixture


def _records_fixture(tmp_path: Path) -> list[str]:
    import random

    rng = random.Random(0)
    fa = tmp_path / "records.fa"
    fa.write_text("".join(f">r{i}\n{''.join(rng.choice('ACGT') for _ in range(rng.randint(8, 40)))}\n" for i in range(80)))
    return [f"data.path={fa}"]


DATA_FIXTURES["seqdiff_recipes.records.RecordData"] = _records_fixture

from support.textfiles import text_config_fixture as _text_fixture  # noqa: E402

DATA_FIXTURES["seqdiff_recipes.text.TextData"] = _text_fixture

from support.pairfiles import config_fixture as _pairs_fixture  # noqa: E402

DATA_FIXTURES["seqdiff_recipes.text.PairData"] = _pairs_fixture


def compose_run(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    d = OmegaConf.to_container(cfg, resolve=True)
    for k, v in TINY_BACKBONE.items():
        if k in d["backbone"]:
            d["backbone"][k] = v
    for k, v in TINY_DATA.items():
        if k in d["data"]:
            d["data"][k] = v
    return d


def exercise(d: dict) -> None:
    exp = build_run(d)
    x, valid, *fixed = exp.data.train_batch(0, 4)  # (x0, valid[, fixed]): pair data fixes its source
    kw = {"fixed": fixed[0]} if fixed else {}
    out = exp.process.loss(exp.model, x, valid, generator=torch.Generator().manual_seed(0), **kw)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    sampler = exp.build_sampler({**d["sampler"], **({"num_steps": 4} if "num_steps" in d["sampler"] else {})})
    s = exp.generate(2, exp.data.seq_len, sampler=sampler)
    assert s.tokens.shape == (2, exp.data.seq_len)
    assert not (s.tokens == exp.vocab.mask_id).any()


@pytest.mark.parametrize("group,option", options(), ids=lambda v: str(v))
def test_every_config_option_composes_and_instantiates(group, option, tmp_path):
    if group == "experiment":
        overrides = [f"experiment={option}"]
    else:
        key = group.replace("/", "/")
        overrides = [f"{key}={option}", *COMPANIONS.get((group, option), [])]
    d0 = compose_run(overrides)
    data_name = d0["data"]["_target_"]
    fixture = DATA_FIXTURES.get(data_name)
    if fixture is not None:
        overrides += fixture(tmp_path, d0) if getattr(fixture, "wants_config", False) else fixture(tmp_path)
        d0 = compose_run(overrides)
    exercise(d0)


def test_unknown_keys_are_rejected_clearly():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="Could not override .trainer.stepz."):
        compose_run(["trainer.stepz=3"])
    d = compose_run([])
    d["backbone"]["d_modle"] = 8
    from seqdiff.errors import ConfigError

    with pytest.raises(ConfigError, match=r"backbone: unknown key \['d_modle'\].*accepted"):
        build_run(d)
