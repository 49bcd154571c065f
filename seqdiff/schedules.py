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
