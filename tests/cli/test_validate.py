"""The CLI's range table (seqdiff/cli/validate.py) and its length rule (seqdiff/cli/length.py).

The table must accept every shipped configuration, name only keys that exist in one, and
reject a value just outside each key's range by the key's full name. The length rule
refuses a window whose attention does not fit in memory, points at semi-AR, and only notes
a fitting length beyond the trained one. (The real CLI with these errors: tests/bad_inputs.)
"""

from __future__ import annotations

import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from seqdiff.cli.length import attention_bytes, check_length
from seqdiff.cli.main import config_dir
from seqdiff.cli.validate import RANGES, Range, check, check_arguments, ints, number
from seqdiff.errors import ConfigError
from seqdiff.run import build_run
from support.runs import tiny_config
from support.config_options import COMPANIONS, options

CONFIGS = config_dir()


def composed(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def every_shipped_configuration() -> list[dict]:
    out = []
    for group, option in options():
        overrides = [f"experiment={option}"] if group == "experiment" else [f"{group}={option}", *COMPANIONS.get((group, option), [])]
        out.append(composed(overrides))
    return out


@pytest.fixture(scope="module")
def shipped() -> list[dict]:
    return every_shipped_configuration()


def lookup(cfg: dict, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def test_every_shipped_configuration_is_in_range(shipped):
    for cfg in shipped:
        check_arguments(cfg)


def test_every_key_of_the_table_exists_in_a_shipped_configuration(shipped):
    missing = [k for k in RANGES if not any(lookup(c, k)[0] for c in shipped)]
    assert not missing, f"keys no configuration has (misspelt or stale): {missing}"


def outside(rule: Range) -> list:
    """Values just outside ``rule``'s range (and ones of the wrong type)."""
    bad: list = ["many", True]
    if rule.boolean:
        return ["yes", 1, None]
    if rule.low is not None:
        bad.append(rule.low if rule.low_open else (rule.low - 1 if rule.integer else rule.low - 0.5))
    if rule.high is not None:
        bad.append(rule.high if rule.high_open else rule.high + 1)
    if rule.integer:
        bad.append((rule.low or 0) + 1.5)
    if rule.null is None:
        bad.append(None)
    bad.append(math.nan)
    return bad


@pytest.mark.parametrize("key", sorted(RANGES))
def test_a_value_outside_each_keys_range_is_one_line_naming_the_key(shipped, key):
    rule = RANGES[key]
    cfg = next(c for c in shipped if lookup(c, key)[0])
    parent, _, leaf = key.rpartition(".")
    for value in outside(rule):
        bad = OmegaConf.to_container(OmegaConf.create(cfg))
        node = lookup(bad, parent)[1] if parent else bad
        node[leaf] = [1 if rule.integer else 0.5, value] if rule.each and value is not None else value
        with pytest.raises(ConfigError) as e:
            check_arguments(bad)
        msg = str(e.value)
        assert msg.startswith(f"{key}: expected ") or msg.startswith(f"{key}[1]: expected ") \
            or (rule.each and msg.startswith(f"{key}: expected a list")), msg
        assert "\n" not in msg and repr(value) in msg


def test_range_descriptions_and_edges():
    assert ints(1).describe() == "an integer >= 1"
    assert ints(1, null="all").describe() == "an integer >= 1 or null (all)"
    assert number(0, 1, low_open=True).describe() == "a number in (0, 1]"
    assert number(0, 1, high_open=True).describe() == "a number in [0, 1)"
    assert ints(1, words=("auto",)).describe() == "an integer >= 1 or auto"
    r = ints(1)
    assert r.accepts(1) and r.accepts(2.0) and not r.accepts(True) and not r.accepts(1.5) and not r.accepts(math.inf)
    assert number(0, finite=False).accepts(math.inf) and not number(0).accepts(math.inf)
    assert not number(0).accepts(math.nan)
    assert check("x", [1, 2], ints(1, each=True)) == [1, 2]
    with pytest.raises(ConfigError, match=r"^x\[0\]: expected an integer >= 1, got 0$"):
        check("x", [0], ints(1, each=True))


def test_sample_time_checks_skip_what_the_checkpoint_fixes():
    cfg = composed(["backbone.d_model=0"])
    with pytest.raises(ConfigError, match="^backbone.d_model"):
        check_arguments(cfg)
    check_arguments(cfg, skip=("domain", "backbone"))


# ------------------------------------------------------------------ the length rule
def dit_run():
    return build_run(tiny_config())  # DiT, 2 heads, trained on 16-token windows


def test_a_length_whose_attention_does_not_fit_is_refused_with_the_semi_ar_hint():
    exp = dit_run()
    notes = []
    with pytest.raises(ConfigError, match=r"^length=100000: AncestralSampler runs the model on all 100000 positions at "
                                          r"once, beyond the 16 tokens.*sampler=semi_ar \(windows of 16 tokens\)$"):
        check_length(exp, exp.build_sampler(), 100_000, 8, warn=notes.append)
    assert attention_bytes(exp.model, 8, 100_000) == 2 * 8 * 2 * 10**10 * 4  # 1.28 TB
    # semi-AR reads trained-length windows: fine at any length, no note
    semi = exp.build_sampler({"_target_": "seqdiff.samplers.SemiAutoregressiveSampler", "num_steps": 4})
    assert semi.window(100_000) == 16
    check_length(exp, semi, 100_000, 8, warn=notes.append)
    assert notes == []
    # ... unless its own window is too long
    wide = exp.build_sampler({"_target_": "seqdiff.samplers.SemiAutoregressiveSampler", "num_steps": 4, "block_length": 100_000})
    with pytest.raises(ConfigError, match="SemiAutoregressiveSampler runs the model on all 100000 positions"):
        check_length(exp, wide, 200_000, 8, warn=notes.append)


def test_a_length_that_fits_beyond_the_trained_one_is_sampled_with_a_note():
    exp = dit_run()
    notes = []
    check_length(exp, exp.build_sampler(), 16, 8, warn=notes.append)
    assert notes == []
    check_length(exp, exp.build_sampler(), 40, 8, warn=notes.append)
    assert len(notes) == 1 and notes[0].startswith("note: length=40 is beyond the 16-token windows") and "semi_ar" in notes[0]


def test_a_mamba_model_grows_linearly_and_an_ar_model_reads_one_token_per_call():
    cfg = tiny_config()
    cfg["backbone"] = {"_target_": "seqdiff.backbones.BiMamba", "d_model": 16, "n_layers": 1}
    exp = build_run(cfg)
    notes = []
    check_length(exp, exp.build_sampler(), 100_000, 8, warn=notes.append)  # no attention: a note only
    assert len(notes) == 1
    cfg = tiny_config()
    cfg["backbone"]["causal"] = True
    cfg["process"] = {"_target_": "seqdiff.processes.AutoregressiveProcess"}
    cfg["sampler"] = {"_target_": "seqdiff.samplers.AutoregressiveSampler"}
    exp = build_run(cfg)
    check_length(exp, exp.build_sampler(), 100_000, 8, warn=notes.append)
    assert len(notes) == 2 and "beyond the 16 tokens the model was trained on" in notes[1]


def test_a_backbone_with_a_position_limit_is_refused_beyond_it():
    pytest.importorskip("transformers")
    from seqdiff_recipes.text import TextDomain  # noqa: F401  (the HF backbone needs only a vocabulary here)

    cfg = tiny_config()
    cfg["backbone"] = {"_target_": "seqdiff.backbones.hf_mlm.HFMaskedLM", "config": {
        "model_type": "bert", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 32, "max_position_embeddings": 64}}
    exp = build_run(cfg)
    assert exp.model.max_length is not None and exp.model.max_length <= 64
    with pytest.raises(ConfigError, match=rf"^length=100: the backbone has {exp.model.max_length} positions.*sampler=semi_ar"):
        check_length(exp, exp.build_sampler(), 100, 8, warn=lambda s: None)
    torch.manual_seed(0)
