"""Learning a scene's normal from footage: the backbone a model reads and the two passes
over the footage (the package's doc)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx.errors import InputError
from vadx.models.backbones import Backbone, build_backbone
from vadx.normality.calibrate import calibrate
from vadx.normality.model import (
    NormalityConfig,
    NormalityModel,
    frame_batches,
    grey_changes,
    layer_maps,
    mahalanobis,
)
from vadx.progress import ProgressFn
from vadx.settings import DetectConfig
from vadx.video.decode import VideoReader, video_sha256
from vadx.video.preprocess import frames_to_clip

#: added to every covariance's diagonal (PaDiM's 0.01), in the projected units
RIDGE = 0.01


def source_backbone(
    source: str | os.PathLike[str],
    weights: str | None = None,
    frame_size: tuple[int, int] | None = None,
    **settings: Any,
) -> tuple[Backbone, NormalityConfig]:
    """The per-frame CNN a normality model reads, and its settings: a vadx checkpoint's
    backbone (its weights, input normalisation, fit and frame size), or a backbone by name
    with ``weights`` (``imagenet``: those it ships; EfficientNet-Lite0's is the default)."""
    from vadx.models import load_model
    from vadx.models.checkpoint import is_checkpoint
    from vadx.models.weights import load_backbone_weights

    if Path(source).is_dir() and is_checkpoint(source):
        classifier = load_model(source)
        c = classifier.config
        config = NormalityConfig(
            backbone=c.backbone,
            backbone_args=dict(c.backbone_args),
            frame_size=frame_size or tuple(c.frame_size),  # type: ignore[arg-type]
            fit=c.fit,
            mean=tuple(c.mean),  # type: ignore[arg-type]
            std=tuple(c.std),  # type: ignore[arg-type]
            **settings,
        )
        return classifier.backbone, config
    name = str(source)
    backbone = build_backbone(name)
    chosen = weights or ("imagenet" if name == "efficientnet_lite0" else None)
    if chosen is None:
        raise InputError(
            f"{{weights}} are needed for {name}: a file or URL of its pretrained weights "
            "(only efficientnet_lite0 ships its own), or give a vadx checkpoint instead",
            "weights",
        )
    load_backbone_weights(backbone, chosen)
    config = NormalityConfig(
        backbone=name,
        frame_size=frame_size or (224, 224),
        mean=backbone.input_mean,
        std=backbone.input_std,
        **settings,
    )
    return backbone, config


def learn_normal(
    backbone: Backbone,
    footage: Sequence[str | os.PathLike[str]],
    config: NormalityConfig,
    *,
    holdout: float = 0.2,
    alarms_per_hour: float = 1.0,
    detection: DetectConfig | None = None,
    progress: ProgressFn | None = None,
) -> NormalityModel:
    """Fit the normality model of the scene in ``footage`` (assumed normal: no labels), the
    last ``holdout`` of each video held back to calibrate the threshold at
    ``alarms_per_hour`` false alarms per hour of that footage, counted as detection with
    ``detection`` (default: :class:`~vadx.settings.DetectConfig`'s) would raise them."""
    if not footage:
        raise InputError("give footage of the scene: at least one video of ordinary activity")
    if not 0 < holdout < 1:
        raise InputError(f"holdout must be between 0 and 1, got {holdout}")
    if not alarms_per_hour > 0:
        raise InputError(f"alarms_per_hour must be positive, got {alarms_per_hour}")
    for path in footage:  # every video readable before any work
        with VideoReader(path) as reader:
            if int(reader.info.num_frames * (1 - holdout)) < 2:
                raise InputError(f"{path} is too short to learn from: give longer footage")
    backbone.eval()
    generator = torch.Generator().manual_seed(config.seed)
    probe = np.zeros((1, *config.frame_size, 3), np.uint8)
    with torch.no_grad():
        channels = layer_maps(backbone, config, frames_to_clip(probe, config.mean, config.std))
    grid = tuple(channels.shape[-2:])
    projection = torch.randn(channels.shape[1], config.channels, generator=generator)
    projection /= math.sqrt(config.channels)
    model = NormalityModel(
        config, backbone, projection, torch.zeros(0), torch.zeros(0), torch.zeros(0),
        torch.zeros(0), grid,  # type: ignore[arg-type]
    )  # fmt: skip
    # first pass: each location's Gaussian, and the change statistics
    total, sums, outer, change = 0, None, None, []
    for frames, previous in _fitting(footage, holdout, progress, "fitting"):
        features, grey = model.features(frames)
        change.append(grey_changes(grey, model._grey(previous)))
        f = features.double()
        sums = f.sum(0) if sums is None else sums + f.sum(0)
        o = torch.einsum("nld,nle->lde", f, f)
        outer = o if outer is None else outer + o
        total += len(frames)
    if total < 2 or sums is None or outer is None:
        raise InputError("the footage has fewer than 2 frames to learn from")
    mean = sums / total
    covariance = outer / total - torch.einsum("ld,le->lde", mean, mean)
    covariance += RIDGE * torch.eye(config.channels, dtype=torch.float64)
    model.mean = mean.float()
    model.precision = torch.linalg.inv(covariance).float()
    moves = torch.cat(change)
    model.motion = torch.stack([moves.mean(0), moves.std(0).clamp(min=1e-3)])
    # second pass: the training frames' own distances, the unit of the appearance map
    distances = [
        mahalanobis(model.features(frames)[0], model.mean, model.precision)
        for frames, _ in _fitting(footage, holdout, progress, "scaling")
    ]
    seen = torch.cat(distances)
    model.appearance = torch.stack([seen.mean(0), seen.std(0).clamp(min=1e-3)])
    model.threshold, calibration = calibrate(
        model, footage, holdout, alarms_per_hour, detection or DetectConfig(), progress
    )
    model.calibration = asdict(calibration)
    model.footage = [
        {"path": str(p), "sha256": video_sha256(p), "holdout": holdout} for p in footage
    ]
    return model


def _fitting(footage, holdout: float, progress: ProgressFn | None, stage: str):
    """(frames, the frame before them) of the fitting share of every video, in batches."""
    for path in footage:
        previous = None
        for frames, total, done in frame_batches(path, 0.0, 1.0 - holdout):
            yield frames, previous
            previous = frames[-1]
            if progress is not None:
                progress(f"{stage} {Path(path).name}", done, total)
