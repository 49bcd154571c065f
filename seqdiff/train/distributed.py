"""Data-parallel set-up for ``torchrun`` (single node or several, via its rendezvous).

``torchrun --nproc_per_node=N -m seqdiff train ...`` sets ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``; :func:`init_distributed` then joins the process group (NCCL on CUDA,
gloo on CPU) and pins each rank to its GPU. Without those variables it does nothing
and the trainer runs as a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group if launched by torchrun; returns this rank's info."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda") or device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def info() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (e.g. the run directory, whose name has a timestamp)."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- FSDP
# ``trainer.parallel=fsdp`` shards parameters, gradients and optimizer moments over the
# ranks (FSDP2, ``torch.distributed.fsdp.fully_shard``) for models whose weights and Adam
# moments do not fit one GPU. Checkpoints are gathered to full tensors on rank 0 and
# written exactly as a single-process (or DDP) run writes them, so they load anywhere
# (``seqdiff sample``/``eval`` on one device, a DDP or FSDP resume on any world size).


def fsdp_available() -> bool:
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError:
        return False
    return True


def shard_model(model: torch.nn.Module, device_type: str) -> torch.nn.Module:
    """``fully_shard`` every element of every ``nn.ModuleList`` (the blocks/layers of the
    backbones), then the root: one all-gather per block in the forward pass. The model
    must already be on this rank's device; it is changed in place and returned."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device_type, (dist.get_world_size(),))
    blocks = [child for m in model.modules() if isinstance(m, torch.nn.ModuleList) for child in m]
    for block in blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _is_dtensor(t) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover
        return False
    return isinstance(t, DTensor)


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """A sharded (DTensor) value gathered to a plain CPU tensor (a collective: every rank
    calls it, in the same order); plain tensors are returned as they are, on the CPU."""
    return (t.full_tensor() if _is_dtensor(t) else t).detach().cpu()


def full_model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The full state dict (plain CPU tensors, names as in the unsharded model) on rank 0;
    other ranks take part in the gathers and get ``{}``."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def full_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each (sharded) tensor gathered, one at a time; kept on rank 0 only."""
    main = not dist.is_initialized() or dist.get_rank() == 0
    out = {}
    for k, v in tensors.items():
        t = full_tensor(v)
        if main:
            out[k] = t
    return out


def full_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """``optimizer.state_dict()`` with every sharded moment gathered, on rank 0: the same
    layout (and values) as the optimizer of one process holding the whole model."""
    sd = optimizer.state_dict()
    state = {}
    for idx in sorted(sd["state"]):
        tensors = {k: v for k, v in sd["state"][idx].items() if isinstance(v, torch.Tensor)}
        st = full_tensors(tensors)
        st.update({k: v for k, v in sd["state"][idx].items() if not isinstance(v, torch.Tensor)})
        state[idx] = st
    return {"state": state, "param_groups": sd["param_groups"]}


def shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``full`` cut into this rank's shard of ``like`` (a DTensor parameter or moment)."""
    if not _is_dtensor(like):
        return full.to(like.device, like.dtype)
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full.to(like.device, like.dtype), like.device_mesh, like.placements)


def load_sharded_model(model: torch.nn.Module, full: dict[str, torch.Tensor]) -> None:
    """Copy a full state dict into a sharded model (every rank holds ``full``)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(full))
    unexpected = sorted(set(full) - set(own))
    if missing or unexpected:
        raise KeyError(f"missing {missing[:3]} unexpected {unexpected[:3]}")
    with torch.no_grad():
        for k, t in own.items():
            t.copy_(shard_like(full[k], t))


def shard_optimizer_state(optimizer: torch.optim.Optimizer, full: dict) -> dict:
    """A full optimizer state dict (as :func:`full_optimizer_state` writes it) with each
    moment cut to the shard of its (sharded) parameter, ready for ``load_state_dict``."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    ids = [i for g in full["param_groups"] for i in g["params"]]
    out = {}
    for idx, st in full["state"].items():
        p = params[ids.index(idx)]
        out[idx] = {
            k: shard_like(v, p) if isinstance(v, torch.Tensor) and tuple(v.shape) == tuple(p.shape) and v.dim() > 0 else v
            for k, v in st.items()
        }
    return {"state": out, "param_groups": full["param_groups"]}
