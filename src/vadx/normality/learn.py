"""Learning a scene's normal from footage: the backbone a model reads and the two passes
over the footage (the package's doc)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
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
    FRAME_SIZE,
    NormalityConfig,
    NormalityModel,
    first_fine_layer,
    layer_maps,
    nearest_centres,
    scale_values,
)
from vadx.progress import ProgressFn
from vadx.settings import DetectConfig
from vadx.video.decode import VideoReader, video_sha256
from vadx.video.preprocess import frames_to_clip

#: added to every covariance's diagonal (PaDiM's 0.01), in the projected units
RIDGE = 0.01
#: the most frames the CNN reads to fit the statistics, by default (``fitting_frames``)
FITTING_FRAMES = 1000
#: the least spread of a location, as a quantile of all locations' spreads (``spread_floor``)
SPREAD_FLOOR = 0.9
#: cells around a location whose features its Gaussian is fitted on too (``neighbourhood``)
NEIGHBOURHOOD = 13
#: how far each covariance is pulled toward its mean variance (``shrinkage``)
SHRINKAGE = 0.1
#: the most learnt features a memory keeps, by default (``memory_size``)
MEMORY_SIZE = 8000
#: the most learnt features a memory's coreset is chosen from (a random sample beyond it)
MEMORY_POOL = 65536
#: lists of a memory's inverted file, by default (``memory_lists``; 0: searched whole)
MEMORY_LISTS = 32
#: rounds of k-means that place the lists' centres
LIST_ROUNDS = 10


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
        frame_size=frame_size or FRAME_SIZE,
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
    spread_floor: float = SPREAD_FLOOR,
    neighbourhood: int = NEIGHBOURHOOD,
    shrinkage: float = SHRINKAGE,
    memory_size: int = MEMORY_SIZE,
    memory_lists: int = MEMORY_LISTS,
    detection: DetectConfig | None = None,
    progress: ProgressFn | None = None,
) -> NormalityModel:
    """Fit the normality model of the scene in ``footage`` (assumed normal: no labels), the
    last ``holdout`` of each video held back to calibrate the threshold at
    ``alarms_per_hour`` false alarms per hour of that footage, counted as detection with
    ``detection`` (default: :class:`~vadx.settings.DetectConfig`'s) would raise them.

    At most ``fitting_frames`` frames of the fitting share are read by the CNN (every k-th of
    each video, the same k for all, the smallest that keeps within it): they fit the Gaussians
    and the motion statistics (each against the frame ``config.frame_step`` before it, as the
    model analyses frames), and their distances give the appearance's unit; their maps give the
    unit of each scale of a frame's score (the median, ``config.scales``). Their features are
    kept for that, so the CNN sees each once. The held-back share is scored whole, frame by
    frame, as detection reads it.

    Each location's Gaussian is fitted on the features of every cell within ``neighbourhood``
    cells of it (a square of side ``2 × neighbourhood + 1``, cut at the edges: 0 is PaDiM's
    one cell; people seen walking nearby are then usual here too), its covariance pulled by
    ``shrinkage`` toward its mean variance, ``(1 - s) Σ + s (tr Σ / d) I``, then given PaDiM's
    ridge. A location's unit (the spread of its training frames' distances, and of their
    change) is at least the ``spread_floor`` quantile of all locations' (:func:`floored`).

    A ``memory`` model (``config.appearance``) keeps instead a coreset of ``memory_size`` of
    the fitted frames' features (:func:`coreset`), in ``memory_lists`` lists (an inverted
    file, :func:`inverted_file`: a cell is compared with the features of the lists nearest to
    it only, ``PROBES`` of them; 0 lists: with every feature). A fitted frame is close to
    itself in the memory, so the appearance's unit and the scales' units are read on the
    held-back share (every k-th frame, as the fitting share; at least 2 frames), which the
    memory never saw: distances as new normal footage gives them."""
    if not footage:
        raise InputError("give footage of the scene: at least one video of ordinary activity")
    if not 0 < holdout < 1:
        raise InputError(f"holdout must be between 0 and 1, got {holdout}")
    if not alarms_per_hour > 0:
        raise InputError(f"alarms_per_hour must be positive, got {alarms_per_hour}")
    limits.check_range("fitting_frames", fitting_frames, limits.FITTING_FRAMES, InputError, True)
    limits.check_range("spread_floor", spread_floor, (0.0, 1.0), InputError)
    limits.check_range("shrinkage", shrinkage, (0.0, 1.0), InputError)
    limits.check_range("neighbourhood", neighbourhood, limits.NEIGHBOURHOOD, InputError, True)
    limits.check_range("memory_size", memory_size, limits.MEMORY_SIZE, InputError, True)
    limits.check_range("memory_lists", memory_lists, limits.MEMORY_LISTS, InputError, True)
    backbone.eval()
    if config.layer is None:  # resolved now and recorded: a saved model's meaning never moves
        config = replace(config, layer=first_fine_layer(backbone))
    backbone.resolve_layer(config.layer)  # an unknown layer: a clear error before any work
    counts = []
    for path in footage:  # every video readable before any work
        with VideoReader(path) as reader:
            counts.append(reader.info.num_frames)
        if int(counts[-1] * (1 - holdout)) < 2:
            raise InputError(f"{path} is too short to learn from: give longer footage")
    every = math.ceil(sum(int(n * (1 - holdout)) for n in counts) / fitting_frames)
    held = sum(len(_chosen(n, 1 - holdout, 1.0, every)) for n in counts)
    if config.appearance == "memory" and held < 2:  # the fitted frames are in the memory
        raise InputError(
            f"the held-back share of the footage gives {held} frame(s) to measure the memory's "
            "units on (at least 2): give longer footage, or hold back more of it"
        )
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
    # one pass: the statistics; the features kept
    total, sums, outer, change, kept = 0, None, None, [], []
    gaussian = config.appearance == "gaussian"
    for frames, before in _sample(footage, 0.0, 1 - holdout, every, config.frame_step, progress):
        features, grey = model.features(frames)
        change.append((grey - model.grey_cells(before)).abs())
        kept.append(features)
        total += len(frames)
        if gaussian:
            f = features.double()
            sums = f.sum(0) if sums is None else sums + f.sum(0)
            o = torch.einsum("nld,nle->lde", f, f)
            outer = o if outer is None else outer + o
    if total < 2:
        raise InputError("the footage has fewer than 2 frames to learn from")
    moves = torch.cat(change)
    model.motion = torch.stack([moves.mean(0), floored(moves.std(0), spread_floor)])
    if gaussian and sums is not None and outer is not None:
        model.mean, model.precision = gaussians(
            sums, outer, total, grid, neighbourhood, shrinkage, config.channels
        )
    else:
        memory = coreset(torch.cat(kept).flatten(0, 1), memory_size, generator)
        model.memory, model.memory_centres, model.memory_offsets = inverted_file(
            memory, memory_lists
        )
        kept, change = [], []
        held = _sample(footage, 1 - holdout, 1.0, every, config.frame_step, progress, "units")
        for frames, before in held:
            features, grey = model.features(frames)
            kept.append(features)
            change.append((grey - model.grey_cells(before)).abs())
        moves = torch.cat(change)
    # the unit frames' distances: the unit of the appearance map
    seen = torch.cat([model.distances(f) for f in kept])
    del kept
    model.appearance = torch.stack([seen.mean(0), floored(seen.std(0), spread_floor)])
    # the unit frames' maps: the unit of each scale of a frame's score
    unusual = ((seen - model.appearance[0]) / model.appearance[1]).clamp(min=0)
    if config.motion:
        unusual = torch.maximum(unusual, (moves - model.motion[0]) / model.motion[1])
    values = scale_values(unusual.reshape(-1, *grid).numpy(), config.scales)
    model.scale_units = torch.from_numpy(np.median(values, axis=0).clip(min=1e-3)).float()
    model.threshold, calibration = calibrate(
        model, footage, holdout, alarms_per_hour, detection or DetectConfig(), progress
    )
    model.calibration = asdict(calibration)
    model.fitting = {
        "fitting_frames": fitting_frames,
        "frames": total,
        "every": every,
        "neighbourhood": neighbourhood,
        "shrinkage": shrinkage,
        "spread_floor": spread_floor,
    }
    if not gaussian:
        model.fitting.update(
            memory_size=memory_size,
            memory=len(model.memory),
            memory_lists=memory_lists,
            lists=len(model.memory_centres),
        )
    model.footage = [
        {"path": str(Path(p).absolute()), "sha256": video_sha256(p), "holdout": holdout}
        for p in footage
    ]
    return model


def gaussians(
    sums: torch.Tensor,
    outer: torch.Tensor,
    total: int,
    grid: tuple[int, int],
    neighbourhood: int,
    shrinkage: float,
    channels: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each location's mean and precision from the features' sums ``(L, d)`` and outer
    products ``(L, d, d)`` over ``total`` frames, pooled over its ``neighbourhood`` and
    shrunk (:func:`learn_normal`)."""
    mean = neighbours(sums, grid, neighbourhood) / total
    covariance = neighbours(outer, grid, neighbourhood) / total
    covariance -= torch.einsum("ld,le->lde", mean, mean)
    identity = torch.eye(channels, dtype=torch.float64)
    variance = torch.diagonal(covariance, dim1=1, dim2=2).mean(1)[:, None, None]
    covariance = (1 - shrinkage) * covariance + shrinkage * variance * identity
    covariance += RIDGE * identity
    return mean.float(), torch.linalg.inv(covariance).float()


def coreset(features: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """At most ``size`` rows of ``features`` ``(n, d)`` that cover them all: greedy k-centre
    (PatchCore's coreset), from a random first row, each next the row farthest from those
    chosen, so the largest distance of any row to its nearest chosen one is within twice the
    best possible. Beyond ``MEMORY_POOL`` rows, it chooses among a random sample of them."""
    if len(features) > MEMORY_POOL:
        features = features[torch.randperm(len(features), generator=generator)[:MEMORY_POOL]]
    if len(features) <= size:
        return features.clone()
    chosen = torch.empty(size, dtype=torch.long)
    farthest = int(torch.randint(len(features), (1,), generator=generator))
    norms = (features * features).sum(1)
    gap = torch.full_like(norms, math.inf)  # each row's squared distance to those chosen
    for k in range(size):
        chosen[k] = farthest
        to_it = norms - 2 * features @ features[farthest] + norms[farthest]
        gap = torch.minimum(gap, to_it.clamp(min=0))
        farthest = int(gap.argmax())
    return features[chosen].clone()


def inverted_file(
    memory: torch.Tensor, lists: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``memory`` ``(M, d)`` put in ``lists`` lists: its rows sorted by list, the lists'
    centres ``(C, d)`` and where each list starts ``(C + 1,)``. The centres are placed by
    ``LIST_ROUNDS`` rounds of k-means from the first ``lists`` rows (a coreset's first rows
    are spread over all of it); each row is then in the list of its nearest centre. No lists
    (empty centres) when ``lists`` is 0 or the memory has fewer than 4 rows per list."""
    if lists == 0 or len(memory) < 4 * lists:
        return memory, torch.zeros(0), torch.zeros(0, dtype=torch.long)
    centres = memory[:lists].clone()
    for _ in range(LIST_ROUNDS):
        owner = nearest_centres(memory, centres, 1)[:, 0]
        counts = torch.bincount(owner, minlength=lists)
        sums = torch.zeros_like(centres).index_add_(0, owner, memory)
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
    owner = nearest_centres(memory, centres, 1)[:, 0]
    order = torch.argsort(owner, stable=True)
    counts = torch.bincount(owner, minlength=lists)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    return memory[order].clone(), centres, offsets


def neighbours(statistic: torch.Tensor, grid: tuple[int, int], radius: int) -> torch.Tensor:
    """Per location, the mean of a per-location ``statistic`` ``(L, …)`` over the locations
    within ``radius`` cells (a square cut at the grid's edges)."""
    if radius == 0:
        return statistic
    shape = statistic.shape[1:]
    planes = statistic.reshape(*grid, -1).permute(2, 0, 1)[None]
    side = min(2 * radius + 1, 2 * max(grid) + 1)
    pooled = torch.nn.functional.avg_pool2d(
        planes, side, stride=1, padding=side // 2, count_include_pad=False
    )
    return pooled[0].permute(1, 2, 0).reshape(-1, *shape)


def floored(spreads: torch.Tensor, quantile: float) -> torch.Tensor:
    """Per location, its spread or at least the ``quantile`` of all locations' spreads (and
    at least 1e-3): a location whose training footage hardly varied (a wall; a cell nobody
    crossed) would otherwise make any small change there a large number of its own units."""
    return spreads.clamp(min=max(float(torch.quantile(spreads, quantile)), 1e-3))


def _sample(
    footage,
    start: float,
    stop: float,
    every: int,
    step: int,
    progress: ProgressFn | None,
    stage: str = "fitting",
):
    """Batches of (every ``every``-th frame of each video from its share ``start`` to
    ``stop``, the frame ``step`` before each, as the model analyses them: the first for a
    video's first)."""
    for path in footage:
        with VideoReader(path) as reader:
            chosen = _chosen(reader.info.num_frames, start, stop, every)
            for begin in range(0, len(chosen), BATCH):
                wanted = chosen[begin : begin + BATCH]
                before = np.maximum(wanted - step, 0)
                data = reader.read(np.concatenate([wanted, before])).data
                yield data[: len(wanted)], data[len(wanted) :]
                if progress is not None:
                    done = min(begin + BATCH, len(chosen))
                    progress(f"{stage} {Path(path).name}", done, len(chosen))


def _chosen(count: int, start: float, stop: float, every: int) -> np.ndarray:
    """The frames :func:`_sample` reads of a video of ``count`` frames: every ``every``-th
    from its share ``start`` to ``stop``."""
    return np.arange(int(count * start), int(count * stop), every)
