"""Several processes, on one machine or many, when launched by ``torchrun`` (no-ops
otherwise).

``torchrun --nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT] -m vadx …`` sets
RANK/WORLD_SIZE; :func:`init` joins the process group.

* Training (NCCL on GPUs, gloo on CPUs): each process trains on its shard of every epoch
  (DistributedSampler), gradients are averaged by DDP, and only rank 0 writes checkpoints.
* Batch detection, evaluation and xai-eval (gloo, for Python objects only): each rank takes a
  deterministic share of the work (:func:`share`, balanced by size), rank 0 gathers every
  rank's results (:func:`gather`) and writes what is merged.
"""

from __future__ import annotations

import contextlib
import heapq
import os
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def launched() -> bool:
    """Whether this process is one of several started by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(backend: str | None = None, timeout: timedelta | None = None) -> torch.device:
    """Join the process group described by torchrun's environment; the device to train on.

    ``backend`` defaults to NCCL on GPUs, gloo on CPUs; ``timeout`` bounds every collective
    (a rank waiting at a :func:`barrier` for the others waits at most that long).
    """
    if not launched() or dist.is_initialized():
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend=backend, timeout=timeout)
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def joined(backend: str | None = None, timeout: timedelta | None = None) -> Iterator[int]:
    """The ``with`` block as one rank of a torchrun launch: the process group joined (see
    :func:`init`) and this process's threads sized to its part of the cores
    (:func:`size_threads`); yields this process's rank (0 for one process, which joins
    nothing). However the block ends, the group is left and the threads are as they were."""
    threads = torch.get_num_threads()
    init(backend=backend, timeout=timeout)
    try:
        size_threads()
        yield rank()
    finally:
        shutdown()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def wrap(module: nn.Module) -> nn.Module:
    """``module`` in DistributedDataParallel when several processes train."""
    if world_size() == 1:
        return module
    device = next(module.parameters()).device
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def gather_validation(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every process's validation outputs, in dataset order, padding removed.

    DistributedSampler (no shuffle) gives process r the padded indices r, r+W, r+2W, …
    """
    world = world_size()
    if world == 1:
        return logits, labels
    parts = gather((logits, labels))
    total = sum(len(p[1]) for p in parts)
    order_logits = torch.empty(total, logits.shape[1])
    order_labels = torch.empty(total, dtype=labels.dtype)
    for r, (part_logits, part_labels) in enumerate(parts):
        order_logits[r::world] = part_logits
        order_labels[r::world] = part_labels
    return order_logits, order_labels


T = TypeVar("T")


def share(sizes: Sequence[float], world: int | None = None, rank_: int | None = None) -> list[int]:
    """The indices of ``sizes`` that rank ``rank_`` (default: this one) of ``world`` takes,
    in increasing order: the biggest item first goes to the rank with the least work so far
    (ties: the lower index, the lower rank) — every rank computes the same split, and the
    busiest rank has at most the biggest item more than the least busy."""
    world = world_size() if world is None else world
    rank_ = rank() if rank_ is None else rank_
    loads = [(0.0, r) for r in range(world)]
    mine = []
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        load, owner = heapq.heappop(loads)
        if owner == rank_:
            mine.append(index)
        heapq.heappush(loads, (load + sizes[index], owner))
    return sorted(mine)


def broadcast(value: T) -> T:
    """Rank 0's ``value``, on every rank."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    if world_size() == 1:
        return [value]
    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, value)
    return parts


def size_threads() -> int:
    """Give this process's torch thread pool its part of the machine's cores: ``VADX_THREADS``
    if set, else under torchrun (which starts ``LOCAL_WORLD_SIZE`` processes per machine, each
    with ``OMP_NUM_THREADS=1``) the cores divided among them; outside both, torch's own
    default. Returns the number of threads."""
    if os.environ.get("VADX_THREADS"):
        torch.set_num_threads(max(1, int(os.environ["VADX_THREADS"])))
    elif "LOCAL_WORLD_SIZE" in os.environ:
        local = max(1, int(os.environ["LOCAL_WORLD_SIZE"]))
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(max(1, (cores or 1) // local))
    return torch.get_num_threads()


def in_order(indices: Sequence[int], items: Sequence[T]) -> list[T]:
    """Every rank's ``items`` (those of the global ``indices`` it took, in :func:`share`'s
    order), put together in global index order, on every rank."""
    if world_size() == 1:
        return list(items)
    merged: dict[int, T] = {}
    for part_indices, part_items in gather((list(indices), list(items))):
        merged.update(zip(part_indices, part_items, strict=True))
    return [merged[i] for i in range(len(merged))]
