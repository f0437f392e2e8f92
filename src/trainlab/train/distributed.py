"""Data-parallel training on PyTorch's own engine (``torch.distributed`` + DDP).

``torchrun --nproc-per-node N -m trainlab train RECIPE`` starts N processes; each calls
:func:`init_distributed`, which reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR/PORT) and joins the process group: gloo on the CPU, nccl on CUDA. Every rank builds
the same global batch (same seed, same order) and keeps its slice ``batch[rank::world]``, so N
processes with batch B take the same optimizer steps as one process with batch B. Only rank 0
writes the run directory; evaluation metrics are reduced across ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo", "init_distributed", "shard", "all_reduce_sum", "agree_any", "is_main", "barrier",
    "broadcast_path",
]  # fmt: skip


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes; a no-op for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    if device_type == "cuda":
        torch.cuda.set_device(local)
    return DistInfo(rank, world, local)


def is_main() -> bool:
    """True on rank 0 (or without distributed training): the rank that writes files."""
    return not dist.is_initialized() or dist.get_rank() == 0


def shard(
    batch: tuple[torch.Tensor, torch.Tensor], info: DistInfo
) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's slice of a global batch: samples ``rank, rank+world, …``."""
    if not info.enabled:
        return batch
    x, y = batch
    return x[info.rank :: info.world], y[info.rank :: info.world]


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``t`` over ranks (in place; returns ``t``)."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def agree_any(flag: bool, info: DistInfo, device: torch.device | str = "cpu") -> bool:
    """True on every rank when ``flag`` is true on any rank (one tiny all-reduce and a host
    sync under DDP; free for a single process)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return bool(t.item() > 0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_path(path: Path, info: DistInfo) -> Path:
    """Rank 0's ``path`` on every rank (the run directory name carries a timestamp)."""
    if not info.enabled:
        return path
    box = [str(path)]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])
