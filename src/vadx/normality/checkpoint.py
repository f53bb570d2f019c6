"""A normality model as a checkpoint folder (``config.json`` and ``normality.safetensors``,
checked by sha256), and what ``vadx info`` says of it."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from vadx._version import __version__
from vadx.errors import CheckpointError
from vadx.files import read_json, staged_folder, write_json, write_safetensors
from vadx.models.backbones import build_backbone
from vadx.models.weights import file_sha256
from vadx.normality.model import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    NormalityConfig,
    NormalityModel,
    read_layer,
)

#: the settings of models saved before they existed: what those models did
LEGACY = {"frame_step": 1, "scales": (0.0,), "sharpness": 1.0, "appearance": "gaussian"}


def save_normality(model: NormalityModel, out: str | os.PathLike[str]) -> Path:
    """Write ``model`` as a checkpoint folder ``out`` (module doc), whole or not at all."""
    tensors = {f"backbone.{k}": v for k, v in model.backbone.state_dict().items()}
    tensors.update(
        projection=model.projection,
        mean=model.mean,
        precision=model.precision,
        appearance=model.appearance,
        motion=model.motion,
        scale_units=model.scale_units,
        memory=model.memory,
        memory_centres=model.memory_centres,
        memory_offsets=model.memory_offsets,
    )
    with staged_folder(out, last=CONFIG_FILE, replace=True) as staging:
        write_safetensors(staging / WEIGHTS_FILE, {k: v.contiguous() for k, v in tensors.items()})
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "vadx_version": __version__,
            "config": asdict(model.config),
            "grid": list(model.grid),
            "threshold": model.threshold,
            "calibration": model.calibration,
            "fitting": model.fitting,
            "footage": model.footage,
            "updates": model.updates,
            "weights": {"file": WEIGHTS_FILE, "sha256": file_sha256(staging / WEIGHTS_FILE)},
        }
        write_json(staging / CONFIG_FILE, document)
    return Path(out)


def is_normality(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a normality model's checkpoint folder."""
    try:
        document = read_json(Path(path) / CONFIG_FILE, CheckpointError)
    except CheckpointError:
        return False
    return isinstance(document, dict) and document.get("format") == FORMAT


def load_normality(path: str | os.PathLike[str]) -> NormalityModel:
    """The normality model saved at ``path``, its weights checked against their sha256."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise CheckpointError(f"no normality model at {path}: it has no {CONFIG_FILE}")
    document = read_json(path / CONFIG_FILE, CheckpointError)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a normality model (no format {FORMAT!r})")
    if document.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} is of a newer format than this vadx reads: upgrade vadx")
    weights = path / WEIGHTS_FILE
    try:
        sha = document["weights"]["sha256"]
        settings = {**LEGACY, **document["config"]}
        for key in ("frame_size", "mean", "std", "scales"):
            settings[key] = tuple(settings[key])
        config = NormalityConfig(**settings)
        grid = (int(document["grid"][0]), int(document["grid"][1]))
        threshold = float(document["threshold"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path / CONFIG_FILE} is damaged: {err}") from err
    if not weights.is_file() or file_sha256(weights) != sha:
        raise CheckpointError(f"{weights} is missing, or corrupt or was changed (sha256 differs)")
    tensors = load_file(str(weights))
    backbone = build_backbone(config.backbone, **config.backbone_args)
    prefix = "backbone."
    backbone.load_state_dict(
        {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    )
    backbone.eval()
    return NormalityModel(
        config,
        backbone,
        tensors["projection"],
        tensors["mean"],
        tensors["precision"],
        tensors["appearance"],
        tensors["motion"],
        grid,
        threshold,
        document.get("calibration", {}),
        document.get("footage", []),
        path,
        f"sha256:{sha[:16]}",
        document.get("fitting", {}),
        tensors.get("scale_units", torch.ones(1)),
        document.get("updates", []),
        tensors.get("memory", torch.zeros(0)),
        tensors.get("memory_centres", torch.zeros(0)),
        tensors.get("memory_offsets", torch.zeros(0, dtype=torch.long)),
    )


@dataclass(frozen=True, slots=True)
class NormalityDescription:
    """What ``vadx info`` says of a normality model (``dataclasses.asdict`` is its
    ``--json``): its kind, id, backbone and layer, how it judges appearance, the features
    its memory keeps (0: none) and the lists they are in (0: searched whole), frame size and
    fit, grid of cells, channels, whether it learnt motion, the frames it analyses (every
    ``frame_step``-th), the scales its frame score reads, threshold, calibration, footage and
    updates."""

    kind: str
    model_id: str | None
    backbone: str
    layer: str
    appearance: str
    memory: int
    memory_lists: int
    frame_size: list[int]
    fit: str
    grid: list[int]
    channels: int
    motion: bool
    frame_step: int
    scales: list[float]
    threshold: float
    calibration: dict[str, Any]
    footage: list[dict[str, Any]]
    updates: list[dict[str, Any]]


def describe_normality(model: NormalityModel) -> NormalityDescription:
    """What ``vadx info`` says of a normality model."""
    c = model.config
    return NormalityDescription(
        kind="normality",
        model_id=model.model_id,
        backbone=c.backbone,
        layer=read_layer(model.backbone, c),
        appearance=c.appearance,
        memory=len(model.memory),
        memory_lists=len(model.memory_centres),
        frame_size=list(c.frame_size),
        fit=c.fit,
        grid=list(model.grid),
        channels=c.channels,
        motion=c.motion,
        frame_step=c.frame_step,
        scales=list(c.scales),
        threshold=round(model.threshold, 4),
        calibration=model.calibration,
        footage=model.footage,
        updates=model.updates,
    )
