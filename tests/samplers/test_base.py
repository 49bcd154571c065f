"""The sampler contract (seqdiff/samplers/base.py): typed per-sampler state (no string bag
left anywhere), and the explicit hook through which a run hands a sampler its defaults
(``Sampler.context_defaults``), replacing injection by constructor-parameter name."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest
import torch

import seqdiff.samplers as samplers
from seqdiff.run import build_run
from seqdiff.samplers import (
    AncestralSampler, AncestralState, AutoregressiveSampler, AutoregressiveState, EAGSSampler, OrderedSampler,
    OrderedState, RCSymmetricSampler, RCSymmetricState, SamplerState, SamplingContext, SemiAutoregressiveSampler,
    SemiAutoregressiveState,
)
from seqdiff.schedules import CosineSchedule
from support.dummies import DNA, Arbitrary
from support.runs import tiny_config

ROOT = Path(__file__).resolve().parents[2]

USER_SAMPLERS = '''
from seqdiff.samplers import AncestralSampler


class WantsSchedule(AncestralSampler):
    """Declares the schedule (inherited from AncestralSampler's hook)."""


class IgnoresTheRun(AncestralSampler):
    """Takes a schedule argument but asks the run for nothing: it is not given one."""

    @classmethod
    def context_defaults(cls, context):
        return {}


class WantsTheLength(AncestralSampler):
    def __init__(self, vocab, schedule=None, num_steps=4, *, length=None):
        super().__init__(vocab, schedule, num_steps)
        self.length = length

    @classmethod
    def context_defaults(cls, context):
        return {"length": context.trained_length, "schedule": context.schedule}
'''


@pytest.fixture
def run(tmp_path, monkeypatch):
    (tmp_path / "user_samplers.py").write_text(textwrap.dedent(USER_SAMPLERS))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = tiny_config()
    cfg["process"]["schedule"] = {"_target_": "seqdiff.schedules.CosineSchedule"}
    return build_run(cfg)


def test_a_sampler_that_asks_for_the_schedule_gets_the_processs(run):
    assert isinstance(run.process.schedule, CosineSchedule)
    s = run.build_sampler({"_target_": "user_samplers.WantsSchedule", "num_steps": 4})
    assert s.schedule is run.process.schedule


def test_a_sampler_that_asks_for_nothing_is_given_nothing(run):
    """Before, a constructor parameter named ``schedule`` was enough to be handed the
    process's schedule; now only what the sampler declares is."""
    s = run.build_sampler({"_target_": "user_samplers.IgnoresTheRun", "num_steps": 4})
    assert type(s.schedule).__name__ == "LogLinearSchedule" and s.schedule is not run.process.schedule


def test_the_context_fills_only_what_the_config_leaves_unset(run):
    s = run.build_sampler({"_target_": "user_samplers.WantsTheLength"})
    assert s.length == 16 and s.schedule is run.process.schedule  # data.seq_len of tiny_config
    s = run.build_sampler({"_target_": "user_samplers.WantsTheLength", "length": 7})
    assert s.length == 7
    semi = run.build_sampler({"_target_": "seqdiff.samplers.SemiAutoregressiveSampler", "block_length": None,
                              "num_steps": 4})
    assert semi.block_length == 16 and semi.inner.schedule is run.process.schedule
    assert run.build_sampler({"_target_": "seqdiff.samplers.SemiAutoregressiveSampler", "block_length": 8}).block_length == 8
    ctx = run.sampling_context()
    assert ctx == SamplingContext(vocab=run.vocab, schedule=run.process.schedule, trained_length=16, process_kind="masked")


def test_the_rc_wrapper_applies_the_inner_classs_hook(run):
    rc = run.build_sampler({"_target_": "seqdiff.samplers.RCSymmetricSampler", "inner": "seqdiff.samplers.EAGSSampler",
                            "num_steps": 3})
    assert isinstance(rc.inner, EAGSSampler) and rc.inner.schedule is run.process.schedule
    semi = run.build_sampler({"_target_": "seqdiff.samplers.RCSymmetricSampler", "rc": "strand",
                              "inner": "seqdiff.samplers.SemiAutoregressiveSampler", "num_steps": 3})
    assert semi.inner.block_length == 16  # the trained length, through the wrapper
    # by hand, without a run: the wrapped class's defaults are its own
    plain = RCSymmetricSampler(DNA, inner="seqdiff.samplers.AncestralSampler", num_steps=3)
    assert type(plain.inner.schedule).__name__ == "LogLinearSchedule"


def test_sampler_state_has_no_string_bag():
    assert "extra" not in {f.name for f in dataclasses.fields(SamplerState)}
    for name in dir(samplers):
        obj = getattr(samplers, name)
        if isinstance(obj, type) and issubclass(obj, SamplerState):
            assert dataclasses.is_dataclass(obj) and "extra" not in {f.name for f in dataclasses.fields(obj)}, name
    # grep-style: no sampler module reads or writes a state bag
    hits = [f"{f.name}:{i + 1}" for f in sorted((ROOT / "seqdiff" / "samplers").glob("*.py"))
            for i, line in enumerate(f.read_text().splitlines()) if re.search(r"\.extra\b|extra\[|extra\.(get|update)", line)]
    assert hits == []


@pytest.mark.parametrize("sampler,state", [
    (AncestralSampler(DNA, num_steps=4), AncestralState),
    (AncestralSampler(DNA, num_steps=4, cache=False), AncestralState),
    (OrderedSampler(DNA, num_steps=3, order="confidence", refine_sweeps=1), OrderedState),
    (EAGSSampler(DNA, num_steps=3, refine_sweeps=1, refine_mode="remask"), OrderedState),
    (SemiAutoregressiveSampler(DNA, block_length=6, stride=2, num_steps=3), SemiAutoregressiveState),
    (RCSymmetricSampler(DNA, inner="seqdiff.samplers.EAGSSampler", num_steps=3, refine_sweeps=1), RCSymmetricState),
])
def test_each_sampler_runs_on_its_own_typed_state(sampler, state):
    L, n = 10, 3
    den = Arbitrary(DNA, sampler.window(L), seed=4)  # semi-AR reads windows of its block length
    cond = samplers.Condition.from_segments(L, {0: [0, 1], -2: [2, 3]})
    st = sampler.start(n, L, cond, generator=torch.Generator().manual_seed(0))
    assert type(st) is state and not hasattr(st, "extra")
    while not st.done:
        st = sampler.step(st, den)
    assert type(st) is state
    assert (st.x[:, :2] == torch.tensor([0, 1])).all() and (st.x[:, -2:] == torch.tensor([2, 3])).all()
    assert not (st.x == DNA.mask_id).any()
    if state is SemiAutoregressiveState:
        assert isinstance(st.inner, AncestralState)
    if state is RCSymmetricState:
        assert isinstance(st.inner, OrderedState)
        # the wrapper's counts: two backbone evaluations per averaged call
        assert st.calls == 2 * st.inner.calls and torch.equal(st.nfe, 2 * st.inner.nfe)


def test_the_autoregressive_sampler_state_is_typed():
    st = AutoregressiveSampler(DNA).start(2, 5)
    assert type(st) is AutoregressiveState and st.i == 0 and st.cache_exact and st.session is None


def test_eags_is_findable_by_name_and_is_entropy_high_ordered_sampling():
    L, n = 12, 5
    den = Arbitrary(DNA, L, seed=9)
    a = EAGSSampler(DNA, num_steps=4).sample(den, n, L, generator=torch.Generator().manual_seed(3))
    b = OrderedSampler(DNA, num_steps=4, order="entropy_high").sample(den, n, L, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.trace["entropy_sum"], b.trace["entropy_sum"])
    assert EAGSSampler(DNA).order == "entropy_high" and EAGSSampler(DNA).num_steps == 5
    for name in ("eags.yaml", "eags_rc.yaml"):
        text = (ROOT / "configs" / "sampler" / name).read_text()
        assert "seqdiff.samplers.EAGSSampler" in text and "\nbase:" not in text, name


def test_the_old_rc_key_base_still_builds_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="'base' is now 'inner'"):
        s = RCSymmetricSampler(DNA, base="seqdiff.samplers.AncestralSampler", num_steps=3)
    assert isinstance(s.inner, AncestralSampler)
    with pytest.raises(ValueError, match="not also base"):
        RCSymmetricSampler(DNA, inner="seqdiff.samplers.AncestralSampler", base="seqdiff.samplers.EAGSSampler")
