"""Multi-process training with PyTorch DDP when launched by ``torchrun`` (no-ops otherwise).

``torchrun --nproc_per_node N -m vadx train …`` sets RANK/WORLD_SIZE; :func:`init` joins the
process group (NCCL on GPUs, gloo on CPUs), each process trains on its shard of every epoch
(DistributedSampler), gradients are averaged by DDP, and only rank 0 writes checkpoints.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def init() -> torch.device:
    """Join the process group described by torchrun's environment; the device to train on."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


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


def gather(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every process's validation outputs, in dataset order, padding removed.

    DistributedSampler (no shuffle) gives process r the padded indices r, r+W, r+2W, …
    """
    world = world_size()
    if world == 1:
        return logits, labels
    parts: list = [None] * world
    dist.all_gather_object(parts, (logits, labels))
    total = sum(len(p[1]) for p in parts)
    order_logits = torch.empty(total, logits.shape[1])
    order_labels = torch.empty(total, dtype=labels.dtype)
    for r, (part_logits, part_labels) in enumerate(parts):
        order_logits[r::world] = part_logits
        order_labels[r::world] = part_labels
    return order_logits, order_labels
