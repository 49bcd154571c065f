"""SEDD's geometric noise against its closed form (noise_lib.GeometricNoise) and the
identities the SEDD process relies on."""

import math

import pytest
import torch

from seqdiff.schedules import StepLaw
from seqdiff.schedules import GeometricSchedule, LogLinearSchedule

T = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)


def test_geometric_closed_form_derivative_and_inverse():
    s = GeometricSchedule(1e-4, 20.0)
    total = 1e-4 ** (1 - T) * 20.0**T
    rate = total * (math.log(20.0) - math.log(1e-4))
    assert torch.allclose(s.sigma(T), total) and torch.allclose(s.alpha(T), torch.exp(-total))
    assert torch.allclose(s.weight(T), rate / torch.expm1(total))
    h = 1e-6
    assert torch.allclose(s.alpha_prime(T), (s.alpha(T + h) - s.alpha(T - h)) / (2 * h), rtol=1e-6, atol=1e-9)
    assert torch.allclose(s.weight(T), -s.alpha_prime(T) / (1 - s.alpha(T)), rtol=1e-9)
    assert torch.allclose(s.inverse(s.alpha(T)), T, atol=1e-9)
    assert float(s.alpha(torch.tensor(0.0, dtype=torch.float64))) == pytest.approx(math.exp(-1e-4))  # < 1
    assert float(s.alpha(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(s.eps)
    assert s.to_config() == {"_target_": "seqdiff.schedules.GeometricSchedule", "sigma_min": 1e-4, "sigma_max": 20.0}


@pytest.mark.parametrize("schedule", [LogLinearSchedule(1e-3), GeometricSchedule(1e-4, 20.0)], ids=repr)
def test_step_law_coefficients(schedule):
    """analytic: c_j = (e^{dsigma} - 1)/(e^{sigma_j} - 1) (SEDD's staggered score times its
    transposed transition) = (alpha_{j-1} - alpha_j)/(1 - alpha_j); euler: dt * sigma'(t_j) / (e^sigma_j - 1)."""
    law = StepLaw.build(schedule, 10, 0.0, "analytic")
    sig = schedule.sigma(law.t)
    want = torch.expm1(sig[1:] - sig[:-1]) / torch.expm1(sig[1:])
    assert torch.allclose(law.log_c[1:].exp(), want, rtol=1e-9) and torch.allclose(law.rho[1:], want, rtol=1e-9)
    euler = StepLaw.build(schedule, 10, 0.0, "euler")
    assert torch.allclose(euler.log_c[1:].exp(), 0.1 * schedule.weight(law.t[1:]), rtol=1e-9)
    assert torch.allclose(law.rate, 1 - schedule.alpha(law.t))
    if isinstance(schedule, LogLinearSchedule):  # m(t) proportional to t: both predictors give 1/j
        j = torch.arange(1, 11, dtype=torch.float64)
        assert torch.allclose(law.rho[1:], 1 / j) and torch.allclose(euler.log_c[1:].exp(), 1 / j)
