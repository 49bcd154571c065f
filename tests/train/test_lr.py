"""Learning-rate schedule: linear warm-up, then constant / cosine / linear decay to
``min_ratio * base_lr``, against the closed forms at chosen steps."""

from __future__ import annotations

import math

import pytest

from seqdiff.train.lr import lr_at

BASE, WARMUP, TOTAL, MIN = 2e-3, 10, 110, 0.1  # 100 decay steps after the warm-up


def lr(step, decay, **kw):
    return lr_at(step, **{"base_lr": BASE, "warmup": WARMUP, "total": TOTAL, "decay": decay, "min_ratio": MIN, **kw})


@pytest.mark.parametrize("decay", ["constant", "cosine", "linear"])
def test_warmup_is_linear_and_reaches_the_base_rate_at_its_last_step(decay):
    # lr(s) = base * (s + 1) / warmup for s < warmup: the first update already moves
    assert [lr(s, decay) for s in range(WARMUP)] == pytest.approx([BASE * (s + 1) / WARMUP for s in range(WARMUP)], rel=1e-15)
    assert lr(WARMUP - 1, decay) == BASE
    assert lr(WARMUP, decay) == pytest.approx(BASE, rel=1e-15)  # decay starts from the base rate


def test_no_warmup_starts_at_the_base_rate():
    assert lr(0, "cosine", warmup=0) == BASE
    assert lr(0, "linear", warmup=0) == BASE


@pytest.mark.parametrize("progress", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_cosine_decay_matches_the_closed_form(progress):
    step = WARMUP + round(progress * (TOTAL - WARMUP))
    want = BASE * (MIN + (1 - MIN) * 0.5 * (1 + math.cos(math.pi * progress)))
    assert lr(step, "cosine") == pytest.approx(want, rel=1e-13)


def test_cosine_hand_values():
    # progress 1/2: cos(pi/2) = 0, halfway between base and floor; 1/4: cos(pi/4) = 1/sqrt(2)
    assert lr(60, "cosine") == pytest.approx(BASE * (MIN + (1 - MIN) / 2), rel=1e-13)
    assert lr(35, "cosine") == pytest.approx(BASE * (MIN + (1 - MIN) * (0.5 + 0.5 / math.sqrt(2))), rel=1e-13)


@pytest.mark.parametrize("step", [10, 35, 60, 100, 110])
def test_linear_decay_matches_the_closed_form(step):
    progress = (step - WARMUP) / (TOTAL - WARMUP)
    assert lr(step, "linear") == pytest.approx(BASE * (MIN + (1 - MIN) * (1 - progress)), rel=1e-13)


def test_constant_after_warmup():
    assert {lr(s, "constant") for s in range(WARMUP, 3 * TOTAL)} == {BASE}


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_the_floor_is_min_ratio_times_base_and_holds_past_the_end(decay):
    values = [lr(s, decay) for s in range(WARMUP, 3 * TOTAL)]
    assert min(values) == pytest.approx(MIN * BASE, rel=1e-13)
    assert all(v >= MIN * BASE * (1 - 1e-13) for v in values)
    assert all(a >= b for a, b in zip(values, values[1:]))  # non-increasing after warm-up
    assert lr(TOTAL, decay) == pytest.approx(MIN * BASE, rel=1e-13)
    assert lr(10 * TOTAL, decay) == lr(TOTAL, decay)  # progress is clamped at 1
    assert {lr_at(s, base_lr=BASE, warmup=WARMUP, total=TOTAL, decay=decay, min_ratio=1.0) for s in range(WARMUP, TOTAL)} == {BASE}


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_the_last_step_of_a_run(decay):
    """The trainer's last update is step ``total - 1`` (it sets the rate before the update
    that completes step ``total``): one decay step short of the floor."""
    progress = (TOTAL - 1 - WARMUP) / (TOTAL - WARMUP)
    f = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
    assert lr(TOTAL - 1, decay) == pytest.approx(BASE * (MIN + (1 - MIN) * f), rel=1e-13)
    assert MIN * BASE < lr(TOTAL - 1, decay) < lr(TOTAL - 2, decay)


def test_a_run_no_longer_than_its_warmup_keeps_the_base_rate():
    assert lr_at(12, base_lr=BASE, warmup=10, total=10, decay="cosine") == BASE
    assert lr_at(5, base_lr=BASE, warmup=10, total=8, decay="linear") == BASE * 6 / 10  # still warming up


def test_unknown_decay_is_refused():
    with pytest.raises(ValueError, match="unknown decay 'step'"):
        lr(50, "step")
