"""The override policy of a reopened run on plain dicts: the checkpoint's own sections with the
user's changes on top; what the checkpoint fixes refused by name."""

from __future__ import annotations

import pytest

from seqdiff.errors import ConfigError
from seqdiff.run_config import Override, reopened_config

SAVED = {
    "seed": 0,
    "domain": {"_target_": "D"},
    "backbone": {"_target_": "B", "d_model": 16},
    "data": {"_target_": "Fasta", "fasta": "human.fa", "seq_len": 256, "bed": "a.bed"},
    "process": {"_target_": "MDLM", "num_steps": 0, "time_conditioning": False, "schedule": {"_target_": "LogLinear"}},
    "sampler": {"_target_": "Ancestral", "num_steps": 16, "cache": True},
    "choices": {"data": "fasta", "sampler": "ancestral", "process": "mdlm", "process/schedule": "loglinear"},
}
# what Hydra composed with the checkpoint's options as the base: their defaults plus the user's values
COMPOSED = {
    "domain": {"_target_": "D"},
    "backbone": {"_target_": "B", "d_model": 32},
    "data": {"_target_": "Fasta", "fasta": "other.fa", "seq_len": 1024, "bed": None},
    "process": {"_target_": "MDLM", "num_steps": 100, "time_conditioning": False, "schedule": {"_target_": "Cosine"}},
    "sampler": {"_target_": "Eags", "num_steps": 64},
}


def key(text: str) -> Override:
    return Override(text=text, key=text.split("=")[0].lstrip("+~"), delete=text.startswith("~"))


def group(text: str) -> Override:
    g, o = text.split("=")
    return Override(text=text, key=g, group=True, option=o)


def run(*overrides: Override, composed=COMPOSED) -> dict:
    return reopened_config(SAVED, composed, list(overrides), SAVED["choices"], command="eval")


def test_nothing_named_is_the_checkpoints_config():
    assert run() == SAVED


def test_a_key_goes_on_top_of_the_checkpoints_section():
    out = run(key("data.fasta=other.fa"))
    assert out["data"] == {**SAVED["data"], "fasta": "other.fa"}
    assert out["sampler"] == SAVED["sampler"]  # the checkpoint's sampler, not the composed default
    assert SAVED["data"]["fasta"] == "human.fa"  # the saved config is not modified


def test_the_same_option_keeps_the_section_another_takes_its_defaults():
    assert run(group("data=fasta"), key("data.fasta=other.fa"))["data"]["seq_len"] == 256
    assert run(group("sampler=eags"))["sampler"] == COMPOSED["sampler"]
    assert run(group("sampler=ancestral"), key("sampler.num_steps=64"))["sampler"] == {**SAVED["sampler"], "num_steps": 64}


def test_delete_and_nested_keys():
    assert "bed" not in run(key("~data.bed"))["data"]
    out = run(key("process.schedule._target_=Cosine"), key("process.num_steps=100"))
    assert out["process"]["schedule"] == {"_target_": "Cosine"} and out["process"]["num_steps"] == 100
    assert run(group("process/schedule=cosine"))["process"]["schedule"] == {"_target_": "Cosine"}


def test_sections_the_checkpoint_lacks_are_the_composed_ones():
    saved = {k: v for k, v in SAVED.items() if k != "sampler"}
    assert reopened_config(saved, COMPOSED, [], {}, command="sample")["sampler"] == COMPOSED["sampler"]


@pytest.mark.parametrize("override, msg", [
    (group("domain=protein"), r"^sample: cannot override 'domain=protein': the checkpoint fixes the domain$"),
    (key("backbone.d_model=32"), r"^sample: cannot override 'backbone\.d_model=32': the checkpoint fixes the backbone$"),
    (key("process.time_conditioning=true"), r"time_conditioning is fixed by the checkpoint"),
    (key("+process.foo=1"), r"the checkpoint fixes the process \(only process\.num_steps, process\.estimator"),
])
def test_what_the_checkpoint_fixes(override, msg):
    with pytest.raises(ConfigError, match=msg):
        reopened_config(SAVED, COMPOSED, [override], SAVED["choices"], command="sample")


def test_another_process_option_only_if_its_fixed_keys_agree():
    ar = {**COMPOSED, "process": {"_target_": "AR"}}
    with pytest.raises(ConfigError, match=r"'process=ar': the checkpoint's process is MDLM"):
        run(group("process=ar"), composed=ar)
    tc = {**COMPOSED, "process": {**COMPOSED["process"], "time_conditioning": True}}
    with pytest.raises(ConfigError, match=r"it changes process\.time_conditioning \(False -> True\)"):
        run(group("process=mdlm_tc"), composed=tc)
    assert run(group("process=mdlm_discrete"))["process"] == COMPOSED["process"]


def test_other_sections_are_left_alone():
    out = run(key("eval.draws=2"), key("trainer.device=cpu"), key("num_samples=3"))
    assert out == SAVED
