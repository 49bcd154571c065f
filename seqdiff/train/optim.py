"""AdamW with decoupled weight decay on the weight matrices only, and gradient clipping.

Weight decay pulls a weight towards 0, a sensible prior for the matrices of linear
layers but not for the gains of norms (whose neutral value is 1), biases, or embedding
tables (the rows of rare tokens, seldom reached by a gradient, would shrink between their
updates). Vectors (biases, norm gains: fewer than 2 dimensions), ``nn.Embedding`` tables
and parameters whose name contains ``embed`` (the time embedders too) therefore form a
second group with ``weight_decay = 0``.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from seqdiff.train.distributed import full_tensor


def decays(name: str, param: nn.Parameter, embedding_params: set[int]) -> bool:
    """Whether weight decay applies to the parameter called ``name``: matrices (2+ dims)
    that are not embeddings."""
    return param.dim() >= 2 and "embed" not in name and id(param) not in embedding_params


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups, ``[decay, no_decay]``, of the trainable parameters, in
    ``named_parameters`` order (the order the optimizer state is saved in)."""
    embedding_params = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if decays(name, p, embedding_params) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, *, lr: float, betas: tuple[float, float], eps: float, weight_decay: float,
                    device: torch.device) -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups`; the fused (one kernel per step) implementation
    on CUDA."""
    kw = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, betas=betas, eps=eps, **kw)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_gradients(parameters: Iterable[nn.Parameter], max_norm: float | None, *, sharded: bool = False) -> float:
    """Scale the gradients so that their global L2 norm is at most ``max_norm`` and return
    the norm before clipping. ``max_norm`` ``<= 0`` or ``None``: no clipping, the norm is only
    measured (0 when no parameter received a gradient). ``sharded`` (FSDP): the gradients are
    DTensor shards; the norm is reduced over the ranks (a collective: every rank calls it)."""
    params = list(parameters)
    clip = max_norm is not None and max_norm > 0
    if sharded:
        return float(full_tensor(nn.utils.clip_grad_norm_(params, max_norm if clip else math.inf)))
    if clip:
        return float(nn.utils.clip_grad_norm_(params, max_norm))
    norms = [p.grad.norm() for p in params if p.grad is not None]
    return float(torch.norm(torch.stack(norms))) if norms else 0.0
