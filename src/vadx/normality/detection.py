"""Detection with a normality model: its events, as a classifier's, and the video with each
frame's anomaly map over it (``unusual.mp4``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vadx.detect import Detection, Event
from vadx.errors import InputError
from vadx.normality.calibrate import calibrated_config, unusual_track
from vadx.normality.model import CLASSES, NormalityModel
from vadx.progress import ProgressFn
from vadx.settings import DetectConfig, DetectionSettings, Runtime
from vadx.video.decode import VideoReader
from vadx.video.preprocess import fit_frames
from vadx.video.sampling import Window

if TYPE_CHECKING:
    from vadx.models.crnn import CRNN


def detect_unusual(
    model: NormalityModel,
    video: str | os.PathLike[str],
    config: DetectConfig | None = None,
    progress: ProgressFn | None = None,
) -> Detection:
    """Detection with a normality model: per frame, ``p(unusual)`` of its score ``s``
    (:meth:`~vadx.normality.NormalityModel.probability`, 0.5 at the threshold), smoothed, and
    events found as a classifier's are (on, off, shortest event of ``config``); a
    :class:`~vadx.detect.Detection` that :func:`~vadx.detect.files.write_detection` writes like
    any other."""
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
    folder of the caller's): with ``annotate``, ``unusual.mp4`` (:func:`write_map_video`) and
    each event's most unusual frame with its map (:func:`write_event_maps`), then the
    detection's files, ``events.json`` last. Returns the detection."""
    from vadx.detect.files import write_detection_files

    scores, maps = model.scores(video, progress)
    detection = detection_of(scores, model, video, config or DetectConfig())
    if annotate:
        write_map_video(model, video, maps, Path(folder) / "unusual.mp4")
        write_event_maps(model, video, maps, detection.events, Path(folder) / "maps")
    write_detection_files(folder, detection, video, model.model_id, annotate, progress)
    return detection


def write_beside(
    folder: str | os.PathLike[str],
    classifier: CRNN,
    normal: NormalityModel,
    video: str | os.PathLike[str],
    config: DetectConfig | None = None,
    annotate: bool = True,
    progress: ProgressFn | None = None,
    runtime: Runtime = "torch",
) -> tuple[Detection, Detection]:
    """``vadx detect CLASSIFIER VIDEO --normal CAMERA_MODEL``'s files, straight into
    ``folder`` (a staging folder of the caller's): the classifier's, as it writes them alone
    with ``config``; the camera's normal's in ``folder/unusual/`` (:func:`write_unusual`),
    read with the settings its threshold was calibrated with (:func:`calibrated_config`:
    ``config`` is the classifier's); then ``scores.png`` again, drawing both signals.
    Returns (the classifier's detection, the normal's)."""
    from vadx.detect import detect
    from vadx.detect.files import scores_png, write_detection_files

    folder = Path(folder)
    found = detect(classifier, video, config or DetectConfig(), progress, runtime=runtime)
    write_detection_files(folder, found, video, classifier.model_id, annotate, progress)
    (folder / "unusual").mkdir()
    calibrated = calibrated_config(normal)
    unusual = write_unusual(folder / "unusual", normal, video, calibrated, annotate, progress)
    (folder / "scores.png").write_bytes(scores_png(found, unusual))
    return found, unusual


def detection_of(
    scores: np.ndarray,
    model: NormalityModel,
    video: str | os.PathLike[str],
    config: DetectConfig,
) -> Detection:
    """The :class:`~vadx.detect.Detection` of ``video``'s frame ``scores`` (module doc)."""
    with VideoReader(video) as reader:
        info, timestamps = reader.info, reader.timestamps
    track = unusual_track(scores, model.threshold, timestamps, config, model.config.sharpness)
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
    """``video`` with each frame's anomaly map over it (``unusual.mp4``, :func:`draw_map`)."""
    from vadx.video.encode import Mp4Writer

    with VideoReader(video) as reader:
        if len(maps) != reader.info.num_frames:
            raise InputError(f"{len(maps)} maps for the {reader.info.num_frames} frames of {video}")
        size = (reader.info.height, reader.info.width)
        with Mp4Writer(target, reader.info.fps, size) as out:
            for index, _, frame in reader:
                out.write(draw_map(model, frame, maps[index], opacity))
    return Path(target)


def write_event_maps(
    model: NormalityModel,
    video: str | os.PathLike[str],
    maps: np.ndarray,
    events: Sequence[Event],
    folder: str | os.PathLike[str],
) -> list[Path]:
    """Each event's most unusual frame (the largest cell of its maps) with its map over it
    (:func:`draw_map`), as ``folder/event-K.png``, ``K`` the event's index in ``events`` (as
    in events.json and a batch's events.csv): the event's thumbnail. Returns the files."""
    from vadx.video.encode import write_png

    written = []
    scores = model.frame_scores(maps)
    with VideoReader(video) as reader:
        for k, event in enumerate(events):
            span = scores[event.start_frame : event.end_frame + 1]
            peak = event.start_frame + int(span.argmax())
            frame = reader.read(np.array([peak])).data[0]
            written.append(
                write_png(Path(folder) / f"event-{k}.png", draw_map(model, frame, maps[peak]))
            )
    return written


def draw_map(
    model: NormalityModel, frame: np.ndarray, cells: np.ndarray, opacity: float = 0.45
) -> np.ndarray:
    """A uint8 RGB ``frame`` ``(H, W, 3)`` with its anomaly map ``cells`` ``(h, w)`` over it,
    brought back from the model's frame size to the frame's: a cell is full red when it alone
    reaches the threshold (:meth:`~NormalityModel.cell_unit`), transparent where the camera's
    normal holds."""
    import cv2

    from vadx.render.overlay import colourise

    height, width = model.config.frame_size
    _, geometry, _ = fit_frames(frame[None], (height, width), model.config.fit)  # type: ignore[arg-type]
    fitted = cv2.resize(cells / model.cell_unit(), (width, height))
    value = geometry.to_source(fitted).clip(0, 1)  # (H, W) in, (H, W) out
    alpha = (opacity * value)[..., None]  # the map shows only where it is unusual
    colour = colourise(value, "jet").astype(np.float32)
    return (frame * (1 - alpha) + colour * alpha).round().astype(np.uint8)
