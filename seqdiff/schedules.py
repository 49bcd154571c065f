r"""Noise schedules for absorbing-state diffusion, written in terms of :math:`\alpha(t)`.

:math:`\alpha(t)` is the probability that a token is still clean at time :math:`t\in[0,1]`,
so :math:`1-\alpha(t)` is the masking rate. Every schedule here has :math:`\alpha(0)=1`
and :math:`\alpha(1)=\varepsilon` (``eps``), except SEDD's geometric one
(:math:`\alpha(0)=e^{-\sigma_{min}}`). The continuous-time NELBO weight of the
masked cross-entropy is

.. math:: w(t) = \frac{-\alpha'(t)}{1-\alpha(t)}

(MDLM eq. 10), which is exactly :math:`1/t` for the log-linear schedule. For a denoiser
that does not see :math:`t`, the NELBO is the same for every schedule with
:math:`\alpha(0)=1, \alpha(1)=0` (MDLM §3.3); ``eps > 0`` only truncates the integral.

The "linear" schedule is linear in the total noise :math:`\sigma(t)=-\log\alpha(t)`
(MDLM's ``LinearNoise``): :math:`\alpha(t)=\varepsilon^{t}`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor


class Schedule(ABC):
    """Abstract masking schedule; all methods are elementwise on tensors of times."""

    eps: float

    @abstractmethod
    def alpha(self, t: Tensor) -> Tensor:
        """Probability that a token is clean at time ``t``."""

    @abstractmethod
    def alpha_prime(self, t: Tensor) -> Tensor:
        """:math:`d\\alpha/dt` (non-positive)."""

    @abstractmethod
    def inverse(self, a: Tensor) -> Tensor:
        """The time at which :math:`\\alpha(t) = a`, for ``a`` in ``[eps, 1]``."""

    def weight(self, t: Tensor) -> Tensor:
        """NELBO weight :math:`-\\alpha'(t)/(1-\\alpha(t))` of the masked cross-entropy."""
        return -self.alpha_prime(t) / (1.0 - self.alpha(t))

    def sigma(self, t: Tensor) -> Tensor:
        """Total noise :math:`-\\log\\alpha(t)` (MDLM's parameterisation)."""
        return -torch.log(self.alpha(t))

    def reveal_probability(self, t: Tensor, s: Tensor) -> Tensor:
        """Probability that a token masked at ``t`` is clean at ``s < t``:
        :math:`(\\alpha_s-\\alpha_t)/(1-\\alpha_t)`."""
        a_t, a_s = self.alpha(t), self.alpha(s)
        return (a_s - a_t) / (1.0 - a_t)

    def to_config(self) -> dict:
        return {"_target_": f"{type(self).__module__}.{type(self).__name__}", "eps": self.eps}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eps={self.eps})"


class LogLinearSchedule(Schedule):
    r""":math:`\alpha(t) = 1-(1-\varepsilon)t`; weight :math:`1/t` (MDLM default, eps=1e-3)."""

    def __init__(self, eps: float = 1e-3) -> None:
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"LogLinearSchedule: eps must be in [0, 1), got {eps}")
        self.eps = float(eps)

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - (1.0 - self.eps) * t

    def alpha_prime(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -(1.0 - self.eps))

    def weight(self, t: Tensor) -> Tensor:
        return 1.0 / t  # exact simplification, avoids 0/0 cancellation near t=0

    def inverse(self, a: Tensor) -> Tensor:
        return (1.0 - a) / (1.0 - self.eps)


class CosineSchedule(Schedule):
    r""":math:`\alpha(t) = \varepsilon + (1-\varepsilon)\cos(\pi t/2)`; weight
    :math:`\tfrac{\pi}{2}\cot(\pi t/4)`."""

    def __init__(self, eps: float = 1e-3) -> None:
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"CosineSchedule: eps must be in [0, 1), got {eps}")
        self.eps = float(eps)

    def alpha(self, t: Tensor) -> Tensor:
        return self.eps + (1.0 - self.eps) * torch.cos(0.5 * math.pi * t)

    def alpha_prime(self, t: Tensor) -> Tensor:
        return -(1.0 - self.eps) * 0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def weight(self, t: Tensor) -> Tensor:
        # sin(x)/(1-cos(x)) = cot(x/2): no cancellation near t=0.
        return 0.5 * math.pi / torch.tan(0.25 * math.pi * t)

    def inverse(self, a: Tensor) -> Tensor:
        c = ((a - self.eps) / (1.0 - self.eps)).clamp(-1.0, 1.0)
        return torch.arccos(c) * (2.0 / math.pi)


class LinearSchedule(Schedule):
    r"""Linear total noise :math:`\sigma(t)=\sigma_{max}t`, i.e. :math:`\alpha(t)=\varepsilon^t`;
    weight :math:`\sigma_{max}/(e^{\sigma_{max}t}-1)`. Needs ``eps > 0``."""

    def __init__(self, eps: float = 1e-3) -> None:
        if not 0.0 < eps < 1.0:
            raise ValueError(f"LinearSchedule: eps must be in (0, 1), got {eps}")
        self.eps = float(eps)
        self.sigma_max = -math.log(self.eps)

    def alpha(self, t: Tensor) -> Tensor:
        return torch.exp(-self.sigma_max * t)

    def alpha_prime(self, t: Tensor) -> Tensor:
        return -self.sigma_max * torch.exp(-self.sigma_max * t)

    def weight(self, t: Tensor) -> Tensor:
        return self.sigma_max / torch.expm1(self.sigma_max * t)

    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_max * t

    def inverse(self, a: Tensor) -> Tensor:
        return -torch.log(a) / self.sigma_max


class GeometricSchedule(Schedule):
    r"""SEDD's geometric noise: total noise :math:`\sigma(t)=\sigma_{min}^{1-t}\sigma_{max}^{t}`,
    rate :math:`\sigma'(t)=\sigma(t)\log(\sigma_{max}/\sigma_{min})`, :math:`\alpha=e^{-\sigma}`.

    Unlike the others, :math:`\alpha(0)=e^{-\sigma_{min}}<1`: data at ``t = 0`` is already
    noised by :math:`\sigma_{min}` (SEDD's defaults ``1e-4``, ``20``); ``eps`` is
    :math:`\alpha(1)=e^{-\sigma_{max}}`. Weight :math:`\sigma'(t)/(e^{\sigma(t)}-1)`.
    """

    def __init__(self, sigma_min: float = 1e-4, sigma_max: float = 20.0) -> None:
        if not 0.0 < sigma_min < sigma_max:
            raise ValueError(f"GeometricSchedule: need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)
        self.eps = math.exp(-self.sigma_max)

    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_min * torch.exp(self._log_ratio * t)

    def alpha(self, t: Tensor) -> Tensor:
        return torch.exp(-self.sigma(t))

    def alpha_prime(self, t: Tensor) -> Tensor:
        s = self.sigma(t)
        return -s * self._log_ratio * torch.exp(-s)

    def weight(self, t: Tensor) -> Tensor:
        s = self.sigma(t)
        return s * self._log_ratio / torch.expm1(s)

    def inverse(self, a: Tensor) -> Tensor:
        s = -torch.log(a)
        return (torch.log(s / self.sigma_min) / self._log_ratio).clamp(0.0, 1.0)

    def to_config(self) -> dict:
        return {"_target_": f"{type(self).__module__}.{type(self).__name__}",
                "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}

    def __repr__(self) -> str:
        return f"GeometricSchedule(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"


SCHEDULES = {"loglinear": LogLinearSchedule, "cosine": CosineSchedule, "linear": LinearSchedule,
             "geometric": GeometricSchedule}


#: SEDD's predictors on a T-step grid (:class:`StepLaw`).
PREDICTORS = ("analytic", "euler")


@dataclass
class StepLaw:
    r"""The grid and per-step reveal law shared by SEDD's samplers and the T-step bound.

    Step ``j`` (``T .. 1``) goes from :math:`t_j` to :math:`t_{j-1}`; a masked position with
    log mass :math:`\lambda` is revealed with probability :math:`\min(1, c_j e^{\lambda})`
    and its token drawn from :math:`p_\theta`. This is SEDD's update, normalised:

    ``analytic`` (Tweedie tau-leaping): ``staggered_score * transp_transition`` gives
        :math:`(e^{d\sigma}-1)s_y` for :math:`y` and :math:`1-(e^{d\sigma}-1)\sum_y s_y` for
        [MASK], :math:`d\sigma=\sigma_j-\sigma_{j-1}`; with :math:`s=re^\lambda p_\theta`,
        :math:`c_j=(e^{d\sigma}-1)/(e^{\sigma_j}-1)=(\alpha_{j-1}-\alpha_j)/(1-\alpha_j)=\rho_j`.
    ``euler``: :math:`\Delta t\,\sigma'(t_j)s_y`, so :math:`c_j=\Delta t\,w(t_j)`.

    SEDD draws from the unnormalised vector with negative entries never chosen, which is
    the ``min(1, .)`` here. Index 0 is the final time :math:`t_0=t_{min}`.
    """

    t: Tensor  # [T+1] grid times, t[0] = t_min, t[T] = 1
    rate: Tensor  # [T+1] masking rate m(t_j) the network is queried at
    log_c: Tensor  # [T+1] log c_j (index 0 unused)
    rho: Tensor  # [T+1] Q's reveal probability per step (index 0 unused)

    @classmethod
    def build(cls, schedule: Schedule, num_steps: int, t_min: float = 0.0, predictor: str = "analytic") -> "StepLaw":
        if predictor not in PREDICTORS:
            raise ValueError(f"SEDD: predictor must be one of {PREDICTORS}, got {predictor!r}")
        if num_steps < 1:
            raise ValueError(f"SEDD: num_steps must be >= 1, got {num_steps}")
        if not 0.0 <= t_min < 1.0:
            raise ValueError(f"SEDD: t_min must be in [0, 1), got {t_min}")
        j = torch.arange(num_steps + 1, dtype=torch.float64)
        t = t_min + (1.0 - t_min) * j / num_steps
        alpha = schedule.alpha(t)
        rho = torch.zeros_like(t)
        rho[1:] = (alpha[:-1] - alpha[1:]) / (1.0 - alpha[1:])
        if predictor == "analytic":
            c = rho.clone()
        else:
            c = torch.zeros_like(t)
            c[1:] = (t[1:] - t[:-1]) * schedule.weight(t[1:])
        log_c = torch.log(c)
        log_c[0] = float("nan")
        return cls(t=t, rate=1.0 - alpha, log_c=log_c, rho=rho.clamp(0.0, 1.0))

    @property
    def num_steps(self) -> int:
        return len(self.t) - 1

    def log_reveal(self, j: int | Tensor, log_mass: Tensor) -> Tensor:
        """:math:`\\log a_j = \\min(0, \\log c_j + \\lambda)`."""
        return (self.log_c.to(log_mass.device)[j] + log_mass).clamp(max=0.0)
