"""How a training run is spread over processes (DDP ranks of a torchrun launch) and threads.

    torchrun --nproc_per_node=2 -m rpmnet train ...   # WORLD_SIZE=2: two ranks, one batch

Every rank sees its share of the same batch (rpmnet.train.StepBatches); these helpers are the
rest of what makes the ranks act as one process.
"""
from __future__ import annotations

import contextlib
import os

import torch

from .config import resolve_device


@contextlib.contextmanager
def process_group(device_name: str):
    """(rank, world, device): one process, or one rank of a torchrun launch (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world == 1:
        yield 0, 1, device
        return
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield dist.get_rank(), world, device
    finally:
        dist.destroy_process_group()


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes the run folder and prints."""
    return int(os.environ.get("RANK", "0")) == 0


def mean_over_ranks(value, world: int):
    """The mean of a tensor over the ranks (the value itself in one process)."""
    if world > 1:
        import torch.distributed as dist

        value = value.detach().clone()
        dist.all_reduce(value)
        value /= world
    return value


def broadcast_buffers(net, world: int) -> None:
    """Rank 0's buffers on every rank: DDP syncs the BN statistics at each forward, so the last
    forward's are still per rank."""
    if world > 1:
        import torch.distributed as dist

        for buffer in net.buffers():
            dist.broadcast(buffer, 0)


@contextlib.contextmanager
def num_threads(threads: int | None):
    """torch's intra-op threads set to `threads` (None: unchanged) for a block, then restored."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
