"""torchrun support: one process per device, nccl on GPU and gloo on CPU, rank 0 logs/evaluates/saves."""

from __future__ import annotations

import os
from argparse import Namespace
from typing import Any

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def setup(args: Namespace) -> None:
    """Join the process group torchrun describes and pin this process to its GPU."""
    if not launched_by_torchrun() or dist.is_initialized():
        return
    args.local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if str(args.device).startswith("cuda"):
        torch.cuda.set_device(args.local_rank)
        args.device = f"cuda:{args.local_rank}"
    backend = args.backend or ("nccl" if str(args.device).startswith("cuda") else "gloo")
    dist.init_process_group(backend)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def is_leader() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (just ``[obj]`` without DDP)."""
    if not dist.is_initialized():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered
