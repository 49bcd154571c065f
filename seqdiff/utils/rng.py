"""Random draws that do not depend on the device the model is on."""

from __future__ import annotations

import torch
from torch import Tensor


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
