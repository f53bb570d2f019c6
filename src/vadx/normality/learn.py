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

from vadx import limits
from vadx.errors import InputError
from vadx.models.backbones import Backbone, build_backbone
from vadx.normality.calibrate import calibrate
from vadx.normality.model import (
    BATCH,
    NormalityConfig,
    NormalityModel,
    layer_maps,
    mahalanobis,
)
from vadx.progress import ProgressFn
from vadx.settings import DetectConfig
from vadx.video.decode import VideoReader, video_sha256
from vadx.video.preprocess import frames_to_clip

#: added to every covariance's diagonal (PaDiM's 0.01), in the projected units
RIDGE = 0.01
#: the most frames the CNN reads to fit the statistics, by default (``fitting_frames``)
FITTING_FRAMES = 1000


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
    fitting_frames: int = FITTING_FRAMES,
    detection: DetectConfig | None = None,
    progress: ProgressFn | None = None,
) -> NormalityModel:
    """Fit the normality model of the scene in ``footage`` (assumed normal: no labels), the
    last ``holdout`` of each video held back to calibrate the threshold at
    ``alarms_per_hour`` false alarms per hour of that footage, counted as detection with
    ``detection`` (default: :class:`~vadx.settings.DetectConfig`'s) would raise them.

    At most ``fitting_frames`` frames of the fitting share are read by the CNN (every k-th of
    each video, the same k for all, the smallest that keeps within it): they fit the Gaussians
    and the motion statistics (each against the frame just before it), and their distances
    give the appearance's unit. Their features are kept for that, so the CNN sees each once.
    The held-back share is scored whole, frame by frame, as detection reads it."""
    if not footage:
        raise InputError("give footage of the scene: at least one video of ordinary activity")
    if not 0 < holdout < 1:
        raise InputError(f"holdout must be between 0 and 1, got {holdout}")
    if not alarms_per_hour > 0:
        raise InputError(f"alarms_per_hour must be positive, got {alarms_per_hour}")
    limits.check_range("fitting_frames", fitting_frames, limits.FITTING_FRAMES, InputError, True)
    fitting = 0
    for path in footage:  # every video readable before any work
        with VideoReader(path) as reader:
            share = int(reader.info.num_frames * (1 - holdout))
        if share < 2:
            raise InputError(f"{path} is too short to learn from: give longer footage")
        fitting += share
    every = math.ceil(fitting / fitting_frames)
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
    # one pass: each location's Gaussian and change statistics; the features kept
    total, sums, outer, change, kept = 0, None, None, [], []
    for frames, before in _fitting(footage, holdout, every, progress):
        features, grey = model.features(frames)
        change.append((grey - model.grey_cells(before)).abs())
        kept.append(features)
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
    # the fitted frames' own distances: the unit of the appearance map
    seen = torch.cat([mahalanobis(f, model.mean, model.precision) for f in kept])
    del kept
    model.appearance = torch.stack([seen.mean(0), seen.std(0).clamp(min=1e-3)])
    model.threshold, calibration = calibrate(
        model, footage, holdout, alarms_per_hour, detection or DetectConfig(), progress
    )
    model.calibration = asdict(calibration)
    model.fitting = {"frames": total, "every": every}
    model.footage = [
        {"path": str(p), "sha256": video_sha256(p), "holdout": holdout} for p in footage
    ]
    return model


def _fitting(footage, holdout: float, every: int, progress: ProgressFn | None):
    """Batches of (every ``every``-th frame of the fitting share of each video, the frame
    before each: itself for a video's first)."""
    for path in footage:
        with VideoReader(path) as reader:
            last = int(reader.info.num_frames * (1.0 - holdout))
            chosen = np.arange(0, last, every)
            for begin in range(0, len(chosen), BATCH):
                wanted = chosen[begin : begin + BATCH]
                before = np.maximum(wanted - 1, 0)
                data = reader.read(np.concatenate([wanted, before])).data
                yield data[: len(wanted)], data[len(wanted) :]
                if progress is not None:
                    done = min(begin + BATCH, len(chosen))
                    progress(f"fitting {Path(path).name}", done, len(chosen))
