"""Each camera's normal, learnt from its own footage without labels: ``vadx learn-normal``.

A **normality model** holds, for every location of a CNN feature map (a grid over the frame),
what the camera usually shows there:

- *appearance*: a Gaussian of the location's features, projected to ``channels`` dimensions by
  a fixed random projection (PaDiM, Defard et al. 2021): the Mahalanobis distance of a new
  frame's features to it says how unusual the location looks;
- *motion*: the mean and spread of the location's frame-to-frame change (mean absolute
  difference of grey levels over the cell), so that a fight where people usually walk is
  unusual even when every single frame looks ordinary.

Both are turned into standard units against the footage itself (how far the training frames
are from their own Gaussians), and a frame's **anomaly map** is, per cell, the larger of the
two: the map *is* the explanation, by construction. The frame's score is the map's largest
cell; detection smooths it over frames and finds events with the usual hysteresis, on the
score ``s / (s + threshold)`` (0.5 at the threshold). The threshold is calibrated on footage
held back from fitting (the last share of each file), at the rate of false alarms per hour
the operator accepts.

A normality model is a checkpoint like a classifier's: ``config.json`` (format
``vadx-normality``, the settings, the calibration, the footage's sha256) and
``normality.safetensors`` (the backbone's weights, the projection, the statistics).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from vadx._version import __version__
from vadx.detect import Detection, Event, all_events, moving_average
from vadx.errors import CheckpointError, ConfigError, InputError
from vadx.files import read_json, staged_folder, write_json, write_safetensors
from vadx.models.backbones import Backbone, build_backbone
from vadx.models.weights import file_sha256
from vadx.progress import ProgressFn
from vadx.settings import DetectConfig, DetectionSettings
from vadx.video.decode import VideoReader, video_sha256
from vadx.video.preprocess import fit_frames, frames_to_clip
from vadx.video.sampling import Window

FORMAT, FORMAT_VERSION = "vadx-normality", 1
CONFIG_FILE, WEIGHTS_FILE = "config.json", "normality.safetensors"
#: the classes a normality model's detections have
CLASSES = ("unusual", "normal")
#: frames per CNN batch
BATCH = 16
#: added to every covariance's diagonal (PaDiM's 0.01), in the projected units
RIDGE = 0.01
#: the calibrated threshold's margin over the boundary found, relative
MARGIN = 1e-3


@dataclass(frozen=True)
class NormalityConfig:
    """How a normality model sees the scene.

    Attributes:
        backbone, backbone_args: the per-frame CNN (its weights come with the model).
        layer: the feature map read (default: the backbone's last layer at stride 8).
        frame_size: ``(height, width)`` frames are brought to (``fit``).
        fit: ``stretch``, ``pad`` or ``crop``, as a classifier's.
        mean, std: the backbone's input normalisation.
        channels: dimensions the features are projected to (PaDiM's random selection).
        motion: model the frame-to-frame change per location too.
        seed: of the projection.
    """

    backbone: str = "efficientnet_lite0"
    backbone_args: dict[str, Any] = field(default_factory=dict)
    layer: str | None = None
    frame_size: tuple[int, int] = (224, 224)
    fit: str = "stretch"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channels: int = 64
    motion: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.channels <= 512:
            raise ConfigError(f"channels must be from 1 to 512, got {self.channels}")
        if self.fit not in ("stretch", "pad", "crop"):
            raise ConfigError(f"fit must be stretch, pad or crop, got {self.fit!r}")


@dataclass
class NormalityModel:
    """A scene's normal (module doc). ``maps`` gives frames' anomaly maps in standard units,
    ``threshold`` the score above which a frame is unusual."""

    config: NormalityConfig
    backbone: Backbone
    projection: torch.Tensor  # (C, d)
    mean: torch.Tensor  # (L, d)
    precision: torch.Tensor  # (L, d, d)
    appearance: torch.Tensor  # (2, L): mean and std of the training frames' distances
    motion: torch.Tensor  # (2, L): mean and std of the training frames' change
    grid: tuple[int, int]
    threshold: float = math.inf
    calibration: dict[str, Any] = field(default_factory=dict)
    footage: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None
    model_id: str | None = None

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
        distance = mahalanobis(features, self.mean, self.precision)
        unusual = (distance - self.appearance[0]) / self.appearance[1]
        if self.config.motion:
            change = _changes(grey, previous_grey)
            moved = (change - self.motion[0]) / self.motion[1]
            unusual = torch.maximum(unusual, moved)
        return unusual.clamp(min=0).reshape(-1, *self.grid).numpy()

    def _grey(self, frame: np.ndarray | None) -> torch.Tensor | None:
        if frame is None:
            return None
        return _features(
            self.backbone, self.config, self.projection, frame[None], self.grid, cnn=False
        )[1]

    def scores(self, video: str | os.PathLike[str], progress: ProgressFn | None = None):
        """Per frame of ``video``: its score (the map's largest cell) and its map."""
        scores, maps = [], []
        for batch_maps in self.video_maps(video, progress):
            maps.append(batch_maps)
            scores.append(batch_maps.reshape(len(batch_maps), -1).max(axis=1))
        return np.concatenate(scores), np.concatenate(maps)

    def video_maps(
        self, video: str | os.PathLike[str], progress: ProgressFn | None = None
    ) -> Iterator[np.ndarray]:
        previous = None
        for frames, total, done in _batches(video):
            maps = self.maps(frames, previous)
            previous = frames[-1]
            if progress is not None:
                progress("frames", done, total)
            yield maps


def mahalanobis(features: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor):
    """Per location, ``sqrt((x - μ)ᵀ Σ⁻¹ (x - μ))`` of features ``(N, L, d)``: ``(N, L)``."""
    centred = features - mean
    return torch.einsum("nld,lde,nle->nl", centred, precision, centred).clamp(min=0).sqrt()


def _changes(grey: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
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
    clip = frames_to_clip(fitted, config.mean, config.std)
    grey = torch.from_numpy(fitted.astype(np.float32).mean(axis=3) / 255)[:, None]
    features = torch.zeros(0)
    if cnn:
        with torch.no_grad():
            maps = _layer_maps(backbone, config, clip)
        grid = grid or tuple(maps.shape[-2:])  # type: ignore[assignment]
        projected = torch.einsum("nchw,cd->nhwd", maps, projection)
        features = projected.reshape(len(frames), -1, projection.shape[1])
    assert grid is not None
    cells = torch.nn.functional.adaptive_avg_pool2d(grey, grid).reshape(len(frames), -1)
    return features, cells


def _layer_maps(backbone: Backbone, config: NormalityConfig, clip: torch.Tensor) -> torch.Tensor:
    layer = backbone.get_layer(config.layer or backbone.cam_layer(fine=True))
    found: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, _i, output: found.append(output))
    try:
        backbone(clip)
    finally:
        hook.remove()
    return found[-1].float()


def _batches(
    video: str | os.PathLike[str], start: float = 0.0, stop: float = 1.0, with_start: bool = False
):
    """Consecutive frames of ``video`` in batches: those from ``start`` to ``stop`` (shares of
    its length); yields (frames, total, done), and the batch's first frame ``with_start``."""
    with VideoReader(video) as reader:
        count = reader.info.num_frames
        first, last = int(count * start), max(int(count * start) + 1, int(count * stop))
        for begin in range(first, last, BATCH):
            end = min(begin + BATCH, last)
            frames = reader.read(np.arange(begin, end)).data
            yield (frames, last - first, end - first) + ((begin,) if with_start else ())


# ------------------------------------------------------------------------------ learning
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
        channels = _layer_maps(backbone, config, frames_to_clip(probe, config.mean, config.std))
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
        change.append(_changes(grey, model._grey(previous)))
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
        for frames, total, done in _batches(path, 0.0, 1.0 - holdout):
            yield frames, previous
            previous = frames[-1]
            if progress is not None:
                progress(f"{stage} {Path(path).name}", done, total)


# ---------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class UnusualTrack:
    """Frame scores read against a threshold, as detection reads them: ``unusual`` =
    ``s / (s + threshold)`` per frame, ``probabilities`` its (unusual, normal) columns,
    ``smoothed`` its moving average and ``events`` what the hysteresis finds in it."""

    unusual: np.ndarray
    probabilities: np.ndarray
    smoothed: np.ndarray
    events: list[Event]


def unusual_track(
    scores: np.ndarray, threshold: float, timestamps: np.ndarray, config: DetectConfig
) -> UnusualTrack:
    """The one rule detection and calibration share (module doc): ``scores`` read at
    ``threshold``, smoothed and searched for events with ``config``'s on, off and shortest
    event."""
    scores = np.asarray(scores, np.float64)  # as calibration computed them
    unusual = scores / (scores + threshold)
    probabilities = np.stack([unusual, 1 - unusual], axis=1)
    smoothed = moving_average(unusual, config.smooth)
    events = all_events(probabilities, smoothed, CLASSES, "normal", timestamps, config)
    return UnusualTrack(unusual, probabilities, smoothed, events)


@dataclass(frozen=True, slots=True)
class Calibration:
    """What :func:`calibrate` measured (``dataclasses.asdict`` is the checkpoint's
    ``calibration``): the false-alarm rate asked for, the seconds held back, the alarms they
    raise at the threshold and their rate per hour (None without footage), the highest score
    held back, and the detection settings the threshold was calibrated with
    (:data:`CALIBRATED_SETTINGS`)."""

    alarms_per_hour: float
    held_back_seconds: float
    held_back_alarms: int
    measured_alarms_per_hour: float | None
    held_back_max_score: float
    smooth: int
    on: float
    off: float
    min_frames: int


def calibrate(
    model: NormalityModel,
    footage: Sequence[str | os.PathLike[str]],
    holdout: float,
    alarms_per_hour: float,
    detection: DetectConfig,
    progress: ProgressFn | None = None,
) -> tuple[float, Calibration]:
    """The lowest threshold at which the held-back footage (all normal) raises at most
    ``alarms_per_hour`` false alarms per hour *as detection with ``detection`` would raise
    them* (:func:`unusual_track`), with what was measured.

    Every frame's ``p(unusual)`` falls as the threshold rises, so the alarms fall too (up to
    events merging): the search walks a geometric grid down from a threshold no frame reaches
    until the rate is broken, then halves the last step 20 times. The boundary found is raised
    by ``MARGIN``: CNN batches of other sizes move scores by a few parts in a million, which
    must not raise an alarm exactly at it."""
    held: list[tuple[np.ndarray, np.ndarray]] = []
    seconds = 0.0
    for path in footage:
        with VideoReader(path) as reader:
            fps, timestamps = reader.info.fps, reader.timestamps
        scores, first = [], None
        previous = None
        for frames, total, done, begin in _batches(path, 1.0 - holdout, 1.0, with_start=True):
            first = begin if first is None else first
            maps = model.maps(frames, previous)
            previous = frames[-1]
            scores.append(maps.reshape(len(maps), -1).max(axis=1))
            if progress is not None:
                progress(f"calibrating {Path(path).name}", done, total)
        values = np.concatenate(scores).astype(np.float64)
        held.append((values, np.asarray(timestamps[first : first + len(values)])))
        seconds += len(values) / fps
    hours = seconds / 3600
    allowed = int(alarms_per_hour * hours)

    def alarms(threshold: float) -> int:
        return sum(len(unusual_track(v, threshold, t, detection).events) for v, t in held)

    highest = float(max(v.max() for v, _ in held))
    # above this no frame's p(unusual), smoothed or not, reaches the "on" level
    good = max(highest, 1e-6) * (1 - detection.on) / max(detection.on, 1e-6) * 1.05 + 1e-6
    bad = None
    for _ in range(60):  # down by 10 % a step, to a thousandth of the start
        lower = good * 0.9
        if alarms(lower) > allowed:
            bad = lower
            break
        good = lower
    if bad is not None:
        for _ in range(20):
            middle = (good + bad) / 2
            good, bad = (middle, bad) if alarms(middle) <= allowed else (good, middle)
    good *= 1 + MARGIN
    found = alarms(good)
    return good, Calibration(
        alarms_per_hour=alarms_per_hour,
        held_back_seconds=round(seconds, 2),
        held_back_alarms=found,
        measured_alarms_per_hour=round(found / hours, 3) if hours else None,
        held_back_max_score=round(highest, 4),
        smooth=detection.smooth,
        on=detection.on,
        off=detection.off,
        min_frames=detection.min_frames,
    )


#: the detection settings the threshold's calibration depends on
CALIBRATED_SETTINGS = ("smooth", "on", "off", "min_frames")


def calibration_mismatch(model: str | os.PathLike[str], config: DetectConfig) -> dict[str, float]:
    """The settings of ``config`` that differ from those the threshold of the normality model
    saved at ``model`` was calibrated with (name → the calibrated value): with them the
    false-alarm rate is no longer the one measured. Empty for models calibrated before the
    settings were recorded."""
    calibrated = read_json(Path(model) / CONFIG_FILE, CheckpointError).get("calibration", {})
    return {
        name: calibrated[name]
        for name in CALIBRATED_SETTINGS
        if name in calibrated and calibrated[name] != getattr(config, name)
    }


# ------------------------------------------------------------------------ checkpoints
def save_normality(model: NormalityModel, out: str | os.PathLike[str]) -> Path:
    """Write ``model`` as a checkpoint folder ``out`` (module doc), whole or not at all."""
    tensors = {f"backbone.{k}": v for k, v in model.backbone.state_dict().items()}
    tensors.update(
        projection=model.projection,
        mean=model.mean,
        precision=model.precision,
        appearance=model.appearance,
        motion=model.motion,
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
            "footage": model.footage,
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
        settings = dict(document["config"])
        for key in ("frame_size", "mean", "std"):
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
    )


# ------------------------------------------------------------------------------ detection
def detect_unusual(
    model: NormalityModel,
    video: str | os.PathLike[str],
    config: DetectConfig | None = None,
    progress: ProgressFn | None = None,
) -> Detection:
    """Detection with a normality model: per frame, ``p(unusual) = s / (s + threshold)`` of its
    score ``s`` (0.5 at the threshold), smoothed, and events found as a classifier's are (on,
    off, shortest event of ``config``); a :class:`~vadx.detect.Detection` that
    :func:`~vadx.detect.files.write_detection` writes like any other."""
    config = config or DetectConfig()
    scores, _ = model.scores(video, progress)
    return detection_of(scores, model, video, config)


def write_unusual(
    folder: str | os.PathLike[str],
    model: NormalityModel,
    video: str | os.PathLike[str],
    config: DetectConfig | None = None,
    annotate: bool = True,
    progress: ProgressFn | None = None,
) -> Detection:
    """``vadx detect``'s files with a normality model, straight into ``folder`` (a staging
    folder of the caller's): with ``annotate``, ``unusual.mp4`` (:func:`write_map_video`), then
    the detection's files, ``events.json`` last. Returns the detection."""
    from vadx.detect.files import write_detection_files

    scores, maps = model.scores(video, progress)
    detection = detection_of(scores, model, video, config or DetectConfig())
    if annotate:
        write_map_video(model, video, maps, Path(folder) / "unusual.mp4")
    write_detection_files(folder, detection, video, model.model_id, annotate, progress)
    return detection


def detection_of(
    scores: np.ndarray,
    model: NormalityModel,
    video: str | os.PathLike[str],
    config: DetectConfig,
) -> Detection:
    """The :class:`~vadx.detect.Detection` of ``video``'s frame ``scores`` (module doc)."""
    with VideoReader(video) as reader:
        info, timestamps = reader.info, reader.timestamps
    track = unusual_track(scores, model.threshold, timestamps, config)
    windows = [Window(i, np.array([i]), float(t), float(t)) for i, t in enumerate(timestamps)]
    return Detection(
        info,
        CLASSES,
        windows,
        track.probabilities,
        track.probabilities,
        track.unusual,
        track.smoothed,
        track.events,
        timestamps,
        DetectionSettings.resolved(config, 1, 1, 1, "normality"),
    )


def write_map_video(
    model: NormalityModel,
    video: str | os.PathLike[str],
    maps: np.ndarray,
    target: str | os.PathLike[str],
    opacity: float = 0.45,
) -> Path:
    """``video`` with each frame's anomaly map over it (``unusual.mp4``): a cell is full red
    when it alone reaches the threshold, transparent where the camera's normal holds."""
    import cv2

    from vadx.render.overlay import colourise
    from vadx.video.encode import Mp4Writer

    height, width = model.config.frame_size
    with VideoReader(video) as reader:
        if len(maps) != reader.info.num_frames:
            raise InputError(f"{len(maps)} maps for the {reader.info.num_frames} frames of {video}")
        size = (reader.info.height, reader.info.width)
        with Mp4Writer(target, reader.info.fps, size) as out:
            for index, _, frame in reader:
                fit = model.config.fit
                _, geometry, _ = fit_frames(frame[None], (height, width), fit)  # type: ignore[arg-type]
                fitted = cv2.resize(maps[index] / model.threshold, (width, height))
                value = geometry.to_source(fitted)[0].clip(0, 1)
                alpha = (opacity * value)[..., None]  # the map shows only where it is unusual
                colour = colourise(value, "jet").astype(np.float32)
                out.write((frame * (1 - alpha) + colour * alpha).round().astype(np.uint8))
    return Path(target)


@dataclass(frozen=True, slots=True)
class NormalityDescription:
    """What ``vadx info`` says of a normality model (``dataclasses.asdict`` is its
    ``--json``): its kind, id, backbone and layer, frame size and fit, grid of cells,
    channels, whether it learnt motion, threshold, calibration and footage."""

    kind: str
    model_id: str | None
    backbone: str
    layer: str
    frame_size: list[int]
    fit: str
    grid: list[int]
    channels: int
    motion: bool
    threshold: float
    calibration: dict[str, Any]
    footage: list[dict[str, Any]]


def describe_normality(model: NormalityModel) -> NormalityDescription:
    """What ``vadx info`` says of a normality model."""
    c = model.config
    return NormalityDescription(
        kind="normality",
        model_id=model.model_id,
        backbone=c.backbone,
        layer=c.layer or model.backbone.cam_layer(fine=True),
        frame_size=list(c.frame_size),
        fit=c.fit,
        grid=list(model.grid),
        channels=c.channels,
        motion=c.motion,
        threshold=round(model.threshold, 4),
        calibration=model.calibration,
        footage=model.footage,
    )
