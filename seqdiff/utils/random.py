r"""Seeded uniforms and Gumbel noise: the one Gumbel-max of the package.

``uniform`` draws on the generator's device, so a seeded run is identical whatever device
the model is on. Gumbel-max: with :math:`G_i = -\log(-\log U_i)`, :math:`U_i \sim U[0, 1)`
i.i.d., :math:`\arg\max_i (\ell_i + G_i)` is a draw from :math:`\mathrm{softmax}(\ell)`.
The noise is float64: in float32 the tail of :math:`G` is cut (MDLM's draws; Zheng et al.
2024), which silently lowers the sampling temperature.
"""

from __future__ import annotations

import torch
from torch import Tensor

_TINY = torch.finfo(torch.float64).tiny


def uniform(
    shape: tuple[int, ...] | torch.Size,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``torch.rand`` drawn on the generator's device, then moved to ``device``.

    Drawing on the generator's device keeps a seeded run identical whatever device
    the model is on (a CPU generator gives the same masks on CPU and CUDA).
    """
    gen_device = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, dtype=dtype, device=gen_device)
    return u if device is None else u.to(device)


def gumbel(u: Tensor) -> Tensor:
    """Standard Gumbel noise :math:`-\\log(-\\log u)` of uniforms ``u`` in ``[0, 1)``, float64
    (``u = 0`` is read as the smallest positive float64: a finite draw, never ``-inf``)."""
    return -torch.log(-torch.log(u.double().clamp_min(_TINY)))


def gumbel_noise(
    shape: tuple[int, ...] | torch.Size,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``shape`` i.i.d. standard Gumbel draws, float64, from ``generator``."""
    return gumbel(uniform(shape, generator=generator, device=device, dtype=torch.float64))


def gumbel_argmax(logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """One draw from :math:`\\mathrm{softmax}` of each row of ``logits [..., K]`` (Gumbel-max,
    float64): the index, ``[...]``. ``-inf`` entries are never drawn."""
    return (logits.double() + gumbel_noise(logits.shape, generator=generator, device=logits.device)).argmax(-1)
