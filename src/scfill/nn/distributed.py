"""Data-parallel training under torchrun: process group, rank, and the few collectives used.

``torchrun --nproc_per_node N $(which scfill) impute ...`` starts N copies of scfill with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set. :func:`setup` joins them into one process
group (gloo on CPU, NCCL on CUDA) the first time a :class:`~scfill.nn.Trainer` runs; the
Trainer then trains one model with DistributedDataParallel and :class:`~scfill.nn.data.
RowLoader` shards every epoch's rows. Outside torchrun everything here is a no-op.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """Whether this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the current process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """True on rank 0 of a torchrun job (the one that writes outputs) and outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def local_rank() -> int:
    """This process's index on its machine (torchrun's ``LOCAL_RANK``; 0 without one)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: torch.device) -> bool:
    """Join torchrun's process group if launched by it; return whether training is parallel.

    The backend is NCCL when ``device`` is CUDA, else gloo. The group is destroyed at exit
    (or earlier by :func:`teardown`).
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if not launched():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    atexit.register(teardown)
    return dist.get_world_size() > 1


def teardown() -> None:
    """Leave the process group (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over the processes in place (no-op outside a process group)."""
    if rank_and_world()[1] > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over the processes (what DDP computes)."""
    world = rank_and_world()[1]
    if world == 1:
        return
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad.div_(world)


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every process."""
    if rank_and_world()[1] == 1:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def barrier() -> None:
    """Wait for every process (no-op outside a process group)."""
    if rank_and_world()[1] > 1:
        dist.barrier()
