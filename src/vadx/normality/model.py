"""A normality model: its settings, its statistics, and the anomaly maps of frames (the
package's doc)."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx import limits
from vadx.errors import ConfigError
from vadx.models.backbones import Backbone
from vadx.progress import ProgressFn
from vadx.video.decode import VideoReader
from vadx.video.preprocess import fit_frames, frames_to_clip

FORMAT, FORMAT_VERSION = "vadx-normality", 1
CONFIG_FILE, WEIGHTS_FILE = "config.json", "normality.safetensors"
#: the classes a normality model's detections have
CLASSES = ("unusual", "normal")
#: frames per CNN batch
BATCH = 16
#: the frame size of a model of a backbone by name, by default (a checkpoint's is its own)
FRAME_SIZE = (160, 160)
#: a new model analyses every ``FRAME_STEP``-th frame, by default
FRAME_STEP = 2
#: how steeply a new model's ``p(unusual)`` rises around its threshold, by default
SHARPNESS = 1.0
#: the shares of a frame's cells whose mean a frame's score reads, by default (``scales``)
SCALES = (0.0, 0.005, 0.02, 0.08)
#: how a location's appearance is judged: ``memory`` (distance to the nearest feature of a
#: coreset of those learnt, PatchCore) or ``gaussian`` (Mahalanobis distance to a Gaussian per
#: location, PaDiM); a new model's default (a model saved without one is ``gaussian``)
APPEARANCES = ("memory", "gaussian")
#: query-by-memory distances computed at once (fastest when they fit the CPU's cache)
NEAREST_PRODUCTS = 1 << 18
#: the lists of a memory's inverted file a cell's nearest feature is searched in: those of the
#: ``PROBES`` centres nearest to it (a memory without lists is searched whole)
PROBES = 4


@dataclass(frozen=True)
class NormalityConfig:
    """How a normality model sees the scene.

    Attributes:
        backbone, backbone_args: the per-frame CNN (its weights come with the model).
        appearance: how unusual a location's features are (``APPEARANCES``): ``memory``, the
            distance to the nearest of a coreset of the features learnt, at any location (so a
            person is usual wherever people were seen, and a pose, colour or object seen
            nowhere is not: one Gaussian per location cannot hold "ground or a person"), or
            ``gaussian``, the Mahalanobis distance to the location's Gaussian.
        layer: the feature map read. Default: the first layer at the backbone's fine stride
            (:func:`first_fine_layer`, stride 8: EfficientNet-Lite0's ``block3``), resolved and
            recorded when the model learns; a model saved without one reads the last layer at
            that stride (``cam_layer(fine=True)``), as it was learnt.
        frame_size: ``(height, width)`` frames are brought to (``fit``).
        fit: ``stretch``, ``pad`` or ``crop``, as a classifier's.
        mean, std: the backbone's input normalisation.
        channels: dimensions the features are projected to (PaDiM's random selection).
        motion: model the frame-to-frame change per location too.
        seed: of the projection.
        frame_step: the model analyses every ``frame_step``-th frame (the first of a video or
            stream, then every ``frame_step``-th after it); a frame between keeps the map and
            score of the one analysed before it, and motion compares analysed frames, so
            ``frame_step`` apart (as it was learnt).
        scales: the shares of a map's cells whose mean (the most unusual ones) the frame's
            score reads, each in units of its typical value on the footage learnt from; the
            score is the largest. 0 is the single most unusual cell, always first: a small
            thing very unusual and a larger one somewhat unusual both count.
        sharpness: how steeply ``p(unusual) = s^k / (s^k + threshold^k)`` rises with the
            score ``s`` (``k``; :func:`unusual_probability`). At 1, detection's ``off`` level
            (0.35) is a score of 0.54 × the threshold, which the ordinary frames of a busy
            scene may not fall below, so that an event lasts as long as they stay up; at 4 it
            is 0.86 × the threshold, and events end sooner but split more often (measured on
            real footage: docs/normality.md), so 1 stays the default.
    """

    backbone: str = "efficientnet_lite0"
    backbone_args: dict[str, Any] = field(default_factory=dict)
    layer: str | None = None
    appearance: str = APPEARANCES[0]
    frame_size: tuple[int, int] = FRAME_SIZE
    fit: str = "stretch"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channels: int = 64
    motion: bool = True
    seed: int = 0
    frame_step: int = FRAME_STEP
    scales: tuple[float, ...] = SCALES
    sharpness: float = SHARPNESS

    def __post_init__(self) -> None:
        if not 1 <= self.channels <= 512:
            raise ConfigError(f"channels must be from 1 to 512, got {self.channels}")
        low, high = limits.FRAME_STEP
        if not low <= self.frame_step <= high:
            raise ConfigError(f"frame_step must be from {low} to {high}, got {self.frame_step}")
        scales = tuple(self.scales)
        if not scales or scales[0] != 0 or list(scales) != sorted(set(scales)) or scales[-1] > 1:
            raise ConfigError(
                f"scales must start at 0 and rise, each at most 1, got {list(self.scales)}"
            )
        if not 0 < self.sharpness <= 64:
            raise ConfigError(f"sharpness must be above 0 and at most 64, got {self.sharpness}")
        if self.appearance not in APPEARANCES:
            raise ConfigError(
                f"appearance must be {' or '.join(APPEARANCES)}, got {self.appearance!r}"
            )
        if self.fit not in ("stretch", "pad", "crop"):
            raise ConfigError(f"fit must be stretch, pad or crop, got {self.fit!r}")


@dataclass
class NormalityModel:
    """A scene's normal (module doc). ``maps`` gives frames' anomaly maps in standard units,
    ``threshold`` the score above which a frame is unusual."""

    config: NormalityConfig
    backbone: Backbone
    projection: torch.Tensor  # (C, d)
    mean: torch.Tensor  # (L, d) (gaussian; empty for memory)
    precision: torch.Tensor  # (L, d, d) (gaussian; empty for memory)
    appearance: torch.Tensor  # (2, L): mean and std of normal frames' distances
    motion: torch.Tensor  # (2, L): mean and std of the training frames' change
    grid: tuple[int, int]
    threshold: float = math.inf
    calibration: dict[str, Any] = field(default_factory=dict)
    footage: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None
    model_id: str | None = None
    #: how the statistics were fitted: frames, every how many, spread floor (empty: not recorded)
    fitting: dict[str, Any] = field(default_factory=dict)
    #: per scale of ``config.scales``, its typical value on the frames learnt from (its unit)
    scale_units: torch.Tensor = field(default_factory=lambda: torch.ones(1))
    #: each time the model learnt again with footage judged normal (:func:`update_normal`)
    updates: list[dict[str, Any]] = field(default_factory=list)
    #: ``(M, d)``: the coreset of learnt features (memory; empty for gaussian)
    memory: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    #: ``(C, d)``: the centres of the memory's lists, an inverted file (empty: no lists)
    memory_centres: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    #: ``(C + 1,)``: where each list starts in ``memory``, which is sorted by list
    memory_offsets: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))

    # ------------------------------------------------------------------------------ maps
    def features(self, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected features ``(N, L, d)`` and grey cells ``(N, L)`` of uint8 frames."""
        return _features(self.backbone, self.config, self.projection, frames, self.grid)

    def maps(self, frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
        """Anomaly maps ``(N, h, w)`` of consecutive uint8 frames ``(N, H, W, 3)`` in standard
        units; ``previous``: the frame before the first (none: its motion counts as usual)."""
        features, grey = self.features(frames)
        return self.maps_of(features, grey, previous_grey=self._grey(previous))

    def maps_of(
        self, features: torch.Tensor, grey: torch.Tensor, previous_grey: torch.Tensor | None
    ) -> np.ndarray:
        distance = self.distances(features)
        unusual = (distance - self.appearance[0]) / self.appearance[1]
        if self.config.motion:
            change = grey_changes(grey, previous_grey)
            moved = (change - self.motion[0]) / self.motion[1]
            unusual = torch.maximum(unusual, moved)
        return unusual.clamp(min=0).reshape(-1, *self.grid).numpy()

    def distances(self, features: torch.Tensor) -> torch.Tensor:
        """Per projected feature ``(N, L, d)``, how far it is from the normal learnt ``(N, L)``
        (``config.appearance``), before the location's unit."""
        if self.config.appearance == "memory":
            return nearest(features, self.memory, self.memory_centres, self.memory_offsets)
        return mahalanobis(features, self.mean, self.precision)

    def _grey(self, frame: np.ndarray | None) -> torch.Tensor | None:
        return None if frame is None else self.grey_cells(frame[None])

    def grey_cells(self, frames: np.ndarray) -> torch.Tensor:
        """Mean grey level ``(N, L)`` per cell of uint8 frames (what motion compares)."""
        return _features(self.backbone, self.config, self.projection, frames, self.grid, False)[1]

    def frame_scores(self, maps: np.ndarray) -> np.ndarray:
        """Per map ``(N, h, w)``: the frame's score, the largest of its scales' values
        (:func:`scale_values`), each in its unit (``config.scales``)."""
        units = self.scale_units.double().numpy()
        return (scale_values(maps, self.config.scales) / units).max(axis=1)

    def probability(self, scores: np.ndarray | float) -> np.ndarray:
        """``p(unusual)`` of frame scores (:func:`unusual_probability` at the threshold)."""
        return unusual_probability(scores, self.threshold, self.config.sharpness)

    def cell_unit(self) -> float:
        """The value one cell alone must reach for its frame's score to reach the threshold."""
        return self.threshold * float(self.scale_units[0])

    def scores(self, video: str | os.PathLike[str], progress: ProgressFn | None = None):
        """Per frame of ``video``: its score (:meth:`frame_scores`) and its map."""
        maps = np.concatenate(list(self.video_maps(video, progress=progress)))
        return self.frame_scores(maps), maps

    def video_maps(
        self,
        video: str | os.PathLike[str],
        start: float = 0.0,
        stop: float = 1.0,
        progress: ProgressFn | None = None,
        stage: str = "frames",
    ) -> Iterator[np.ndarray]:
        """The maps of ``video``'s frames from ``start`` to ``stop`` (shares of its length),
        batch by batch, read as a stream of them is (:meth:`run_maps`)."""
        run = FrameRun()
        batch = BATCH * self.config.frame_step
        for frames, total, done in frame_batches(video, start, stop, batch):
            yield self.run_maps(frames, run)
            if progress is not None:
                progress(stage, done, total)

    def run_maps(self, frames: np.ndarray, run: FrameRun) -> np.ndarray:
        """The maps of the next consecutive frames of a ``run`` (a video read from its start,
        a stream since it connected): every ``frame_step``-th from the run's first is analysed
        against the one analysed before it; the frames between keep the last analysed map."""
        step = self.config.frame_step
        chosen = [i for i in range(len(frames)) if (run.frames + i) % step == 0]
        maps = np.empty((len(frames), *self.grid), np.float32)
        head = chosen[0] if chosen else len(frames)
        if head and run.last_map is not None:  # a run's first frame is always analysed
            maps[:head] = run.last_map
        if chosen:
            analysed = self.maps(frames[chosen], run.analysed)
            for k, (i, j) in enumerate(itertools.pairwise([*chosen, len(frames)])):
                maps[i:j] = analysed[k]
            run.analysed, run.last_map = frames[chosen[-1]], analysed[-1]
            run.analysed_frames += len(chosen)
        run.frames += len(frames)
        return maps


@dataclass
class FrameRun:
    """Where a run of consecutive frames (a video read from its start, a stream since it
    connected) stands: frames given so far, the last analysed frame and its map, and how
    many were analysed."""

    frames: int = 0
    analysed: np.ndarray | None = None
    last_map: np.ndarray | None = None
    analysed_frames: int = 0


def unusual_probability(
    scores: np.ndarray | float, threshold: float, sharpness: float = 1.0
) -> np.ndarray:
    """``p(unusual) = s^k / (s^k + threshold^k)`` of scores ``s ≥ 0`` (``k`` the sharpness):
    0.5 at the threshold, rising from 0 toward 1 the more steeply the larger ``k``."""
    ratio = np.asarray(scores, np.float64) / threshold
    return 1.0 / (1.0 + np.power(np.maximum(ratio, 1e-300), -float(sharpness)))


def scale_values(maps: np.ndarray, scales: Sequence[float]) -> np.ndarray:
    """``(N, S)``: per map ``(N, h, w)`` and scale (a share of its cells, 0: one), the mean of
    its most unusual cells at that scale."""
    flat = np.asarray(maps, np.float64).reshape(len(maps), -1)
    counts = [max(1, round(share * flat.shape[1])) for share in scales]
    widest = max(counts)
    top = -np.sort(-flat, axis=1)[:, :widest] if widest > 1 else flat.max(axis=1, keepdims=True)
    sums = np.cumsum(top, axis=1)
    return np.stack([sums[:, n - 1] / n for n in counts], axis=1)


def mahalanobis(features: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor):
    """Per location, ``sqrt((x - μ)ᵀ Σ⁻¹ (x - μ))`` of features ``(N, L, d)``: ``(N, L)``."""
    centred = features - mean
    return torch.einsum("nld,lde,nle->nl", centred, precision, centred).clamp(min=0).sqrt()


def nearest(
    features: torch.Tensor,
    memory: torch.Tensor,
    centres: torch.Tensor | None = None,
    offsets: torch.Tensor | None = None,
    probes: int = PROBES,
) -> torch.Tensor:
    """Per feature ``(…, d)``, the Euclidean distance to the nearest row of ``memory``
    ``(M, d)``: ``(…)``. With an inverted file (``centres`` ``(C, d)`` of the lists, ``memory``
    sorted by list, list ``c`` its rows ``offsets[c]:offsets[c + 1]``), only the lists of the
    ``probes`` centres nearest to a feature are searched: the distance found is then never
    less than the true one, and equal to it when the nearest row is in one of them (each row
    is in the list of its own nearest centre, so a feature that is a row finds itself)."""
    flat = features.reshape(-1, features.shape[-1]).float()
    bank = memory.float()
    if centres is None or offsets is None or len(centres) <= probes:
        return squared_nearest(flat, bank).clamp(min=0).sqrt().reshape(features.shape[:-1])
    probed = nearest_centres(flat, centres.float(), probes)
    best = torch.full((len(flat),), math.inf)
    for c in range(len(centres)):
        rows = (probed == c).any(1).nonzero().squeeze(1)
        low, high = int(offsets[c]), int(offsets[c + 1])
        if len(rows) and high > low:
            best[rows] = torch.minimum(best[rows], squared_nearest(flat[rows], bank[low:high]))
    return best.clamp(min=0).sqrt().reshape(features.shape[:-1])


def squared_nearest(flat: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Per row of ``flat`` ``(Q, d)``, the squared distance to the nearest row of ``bank``."""
    across = bank.T.contiguous()
    bank_norms = (bank * bank).sum(1)[None]
    out = torch.empty(len(flat))
    # |x - m|² = |x|² - 2 x·m + |m|²: one product per chunk of queries, the minimum over m
    # taken before |x|² is added; chunks keep the (queries × M) products in the CPU's cache
    chunk = max(1, NEAREST_PRODUCTS // len(bank))
    for begin in range(0, len(flat), chunk):
        part = flat[begin : begin + chunk]
        closest = torch.addmm(bank_norms, part, across, alpha=-2).min(1).values
        out[begin : begin + len(part)] = closest + (part * part).sum(1)
    return out


def nearest_centres(flat: torch.Tensor, centres: torch.Tensor, count: int) -> torch.Tensor:
    """``(Q, count)``: per row of ``flat``, its ``count`` nearest ``centres`` (the rule a
    memory's rows were put in lists by, so that a row finds its own list)."""
    squared = torch.addmm((centres * centres).sum(1)[None], flat, centres.T, alpha=-2)
    return squared.topk(count, dim=1, largest=False).indices


def grey_changes(grey: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """Per frame and cell, the mean absolute change of grey level since the frame before."""
    before = torch.cat([grey[:1] if previous is None else previous, grey[:-1]])
    return (grey - before).abs()


def _features(
    backbone: Backbone,
    config: NormalityConfig,
    projection: torch.Tensor,
    frames: np.ndarray,
    grid: tuple[int, int] | None,
    cnn: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    fitted, _, _ = fit_frames(frames, config.frame_size, config.fit)  # type: ignore[arg-type]
    grey = torch.from_numpy(fitted.astype(np.float32).mean(axis=3) / 255)[:, None]
    features = torch.zeros(0)
    if cnn:
        clip = frames_to_clip(fitted, config.mean, config.std)
        with torch.no_grad():
            maps = layer_maps(backbone, config, clip)
        grid = grid or tuple(maps.shape[-2:])  # type: ignore[assignment]
        projected = torch.einsum("nchw,cd->nhwd", maps, projection)
        features = projected.reshape(len(frames), -1, projection.shape[1])
    assert grid is not None
    cells = torch.nn.functional.adaptive_avg_pool2d(grey, grid).reshape(len(frames), -1)
    return features, cells


def read_layer(backbone: Backbone, config: NormalityConfig) -> str:
    """The layer a model of ``config`` reads: its own, or (a model saved without one) the last
    layer at stride 8, as such models were learnt."""
    return config.layer or backbone.cam_layer(fine=True)


def first_fine_layer(backbone: Backbone, size: tuple[int, int] = (64, 64)) -> str:
    """The first layer whose maps have the stride of the backbone's fine layer (stride 8), by
    its alias where it has one: a new model's default. At that stride the first layer's
    features are more local than the last's (EfficientNet-Lite0: ``block3`` against
    ``block4``) and, measured on real footage, tell pasted anomalies from the scene's own
    people better (docs/normality.md)."""
    names = backbone.layer_names()
    fine = backbone.resolve_layer(backbone.cam_layer(fine=True))
    sizes: dict[str, tuple[int, ...]] = {}

    def seen(name: str):
        def hook(_module, _inputs, output) -> None:
            sizes.setdefault(name, tuple(output.shape[-2:]))

        return hook

    hooks = [backbone.get_layer(name).register_forward_hook(seen(name)) for name in names]
    try:
        with torch.no_grad():
            backbone(torch.zeros(1, 3, *size))
    finally:
        for hook in hooks:
            hook.remove()
    first = next(name for name in names if sizes.get(name) == sizes[fine])
    return {module: alias for alias, module in backbone.aliases.items()}.get(first, first)


class _Reached(Exception):
    """Raised by the hook on the layer read: the layers after it are not run."""


def layer_maps(backbone: Backbone, config: NormalityConfig, clip: torch.Tensor) -> torch.Tensor:
    """The feature maps of ``config``'s layer for a clip ``(N, 3, H, W)``; the backbone stops
    there (at stride 8, EfficientNet-Lite0's later blocks are about half of its cost)."""
    layer = backbone.get_layer(read_layer(backbone, config))
    found: list[torch.Tensor] = []

    def reached(_module, _inputs, output) -> None:
        found.append(output)
        raise _Reached

    hook = layer.register_forward_hook(reached)
    try:
        backbone(clip)
    except _Reached:
        pass
    finally:
        hook.remove()
    return found[-1].float()


def frame_span(count: int, start: float, stop: float) -> tuple[int, int]:
    """The frames ``[first, last)`` of a video of ``count`` frames from ``start`` to ``stop``
    (shares of its length; at least one frame)."""
    first = int(count * start)
    return first, max(first + 1, int(count * stop))


def frame_batches(
    video: str | os.PathLike[str], start: float = 0.0, stop: float = 1.0, batch: int = BATCH
):
    """Consecutive frames of ``video`` in batches of ``batch``: those from ``start`` to ``stop``
    (:func:`frame_span`); yields (frames, total, done)."""
    with VideoReader(video) as reader:
        first, last = frame_span(reader.info.num_frames, start, stop)
        for begin in range(first, last, batch):
            end = min(begin + batch, last)
            frames = reader.read(np.arange(begin, end)).data
            yield frames, last - first, end - first
