"""Schedules against their closed forms, and derivatives against finite differences."""

import math

import pytest
import torch

from seqdiff.schedules import CosineSchedule, LinearSchedule, LogLinearSchedule

T = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
ALL = [LogLinearSchedule(1e-3), LogLinearSchedule(0.0), CosineSchedule(1e-3), CosineSchedule(0.0), LinearSchedule(1e-3)]


def test_loglinear_closed_form():
    s = LogLinearSchedule(eps=1e-3)
    assert torch.allclose(s.alpha(T), 1 - (1 - 1e-3) * T)
    assert torch.allclose(s.weight(T), 1 / T)  # MDLM: the NELBO weight is exactly 1/t
    # MDLM's sigma(t) = -log(1 - (1 - eps) t) and its rate sigma' = (1-eps)/(1-(1-eps)t)
    assert torch.allclose(s.sigma(T), -torch.log1p(-(1 - 1e-3) * T))
    rate = (1 - 1e-3) / (1 - (1 - 1e-3) * T)
    assert torch.allclose(s.weight(T), rate / torch.expm1(s.sigma(T)))


def test_cosine_closed_form():
    s = CosineSchedule(eps=0.0)
    assert torch.allclose(s.alpha(T), torch.cos(math.pi * T / 2))
    assert torch.allclose(s.weight(T), (math.pi / 2) * torch.sin(math.pi * T / 2) / (1 - torch.cos(math.pi * T / 2)))


def test_linear_closed_form():
    s = LinearSchedule(eps=1e-3)
    smax = -math.log(1e-3)
    assert torch.allclose(s.alpha(T), torch.exp(-smax * T))
    assert torch.allclose(s.sigma(T), smax * T)
    assert torch.allclose(s.weight(T), smax / torch.expm1(smax * T))


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_boundaries_derivative_and_inverse(s):
    assert float(s.alpha(torch.tensor(0.0, dtype=torch.float64))) == pytest.approx(1.0)
    assert float(s.alpha(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(s.eps, abs=1e-12)
    h = 1e-6
    fd = (s.alpha(T + h) - s.alpha(T - h)) / (2 * h)
    assert torch.allclose(s.alpha_prime(T), fd, rtol=1e-6, atol=1e-8)
    assert torch.allclose(s.weight(T), -s.alpha_prime(T) / (1 - s.alpha(T)), rtol=1e-9)
    assert torch.allclose(s.inverse(s.alpha(T)), T, atol=1e-9)
    assert (s.alpha_prime(T) < 0).all()


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_reveal_probability(s):
    t, u = T[1:], T[:-1]
    p = s.reveal_probability(t, u)
    assert ((p > 0) & (p < 1)).all()
    assert torch.allclose(p, (s.alpha(u) - s.alpha(t)) / (1 - s.alpha(t)))


def test_invalid_eps():
    with pytest.raises(ValueError):
        LinearSchedule(eps=0.0)
    with pytest.raises(ValueError):
        LogLinearSchedule(eps=1.0)
