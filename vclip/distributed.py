"""Process-group helpers for ``torchrun`` data-parallel pre-training.

Paper: VideoCLIP section 4.1 (pre-training on 8 GPUs, 512 pairs per GPU). Reference: fairseq's
distributed training (``mmpt_cli/localjob.py``: ``--distributed-world-size 8``, ``--ddp-backend
no_c10d``) and ``mmpt/tasks/retritask.py`` (``DistributedSampler`` and barriers around the retrieval
pass; lines 58 and 98-100).

``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`init_distributed`
reads them and starts the process group (nccl on GPU, gloo on CPU). Without them the program runs as
a single process and no process group is created (the reference needs a 1-rank process group even
then; vclip does not).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass
class DistInfo:
    """Where this process sits: rank in [0, world_size), its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from err


def init_distributed(device: str | None = None, backend: str | None = None) -> DistInfo:
    """Start the process group described by torchrun's environment, or describe a single process.

    Args:
        device: "cpu", "cuda" or None (cuda when available). Under torchrun each rank uses
            cuda:LOCAL_RANK.
        backend: None picks nccl for cuda and gloo for cpu.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = backend or ("nccl" if use_cuda else "gloo")
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        log.info("process group: backend %s, rank %d of %d, device %s", backend, rank, world_size, dev)
    elif dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...]; [obj] without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s obj on every rank; obj itself without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(value: float, device: torch.device) -> float:
    """The mean of a float over ranks (the value itself without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
