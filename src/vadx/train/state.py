"""A trainer's state beside its model: everything ``--resume`` needs, nothing pickled.

Tensors (optimizer buffers, the RNG state) go to ``trainer.safetensors``; everything else
(epoch, best score, patience, history, optimizer hyper-parameters, scheduler) to
``trainer.json``. Both are written inside the checkpoint's atomic swap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from vadx.errors import CheckpointError

TENSORS_FILE = "trainer.safetensors"
STATE_FILE = "trainer.json"


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state into named tensors and JSON."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], document: dict
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, entries in document["scalars"].items():
        state.setdefault(int(pid), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": document["param_groups"]})


def writers(
    optimizer: torch.optim.Optimizer, scheduler: Any, progress: dict[str, Any]
) -> dict[str, Callable[[Path], None]]:
    """``save_model`` extra-file writers for the trainer state."""
    tensors, optimizer_doc = optimizer_to_files(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    document = {
        "optimizer": optimizer_doc,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        **progress,
    }

    def write_tensors(path: Path) -> None:
        save_file(tensors, str(path))

    def write_state(path: Path) -> None:
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")

    return {TENSORS_FILE: write_tensors, STATE_FILE: write_state}


@dataclass(frozen=True, slots=True)
class TrainerState:
    """A trainer state as ``trainer.json`` holds it: the optimizer's hyper-parameters and
    scalars and the scheduler's state (torch's own formats), the last epoch done, the best
    score ``(F1, loss)`` and its epoch, the epochs waited without improvement, whether the run
    stopped early, and each epoch's metrics."""

    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    epoch: int
    best_score: tuple[float, float]
    best_epoch: int
    waited: int
    stopped_early: bool
    history: list[dict[str, float]]


def read_trainer_state(directory: Path) -> tuple[dict[str, torch.Tensor], TrainerState]:
    """The tensors and the state of a trainer saved in ``directory``."""
    tensors_path, state_path = directory / TENSORS_FILE, directory / STATE_FILE
    if not (tensors_path.is_file() and state_path.is_file()):
        raise CheckpointError(
            f"{directory} has no trainer state ({TENSORS_FILE}, {STATE_FILE}): it is not the "
            "'last' checkpoint of a vadx training run, so it cannot be resumed"
        )
    try:
        tensors = load_file(str(tensors_path))
        document = json.loads(state_path.read_text(encoding="utf-8"))
        state = TrainerState(
            optimizer=document["optimizer"],
            scheduler=document["scheduler"],
            epoch=document["epoch"],
            best_score=tuple(document["best_score"]),
            best_epoch=document["best_epoch"],
            waited=document["waited"],
            stopped_early=document["stopped_early"],
            history=document["history"],
        )
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot read the trainer state in {directory}: {err}") from err
    return tensors, state
