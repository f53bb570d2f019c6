"""The threshold of a normality model, calibrated at a false-alarm rate per hour on held-back
footage, and the one rule that reads frame scores against it (detection's and calibration's)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadx.detect import Event, all_events, moving_average
from vadx.errors import CheckpointError
from vadx.files import read_json
from vadx.normality.model import (
    CLASSES,
    CONFIG_FILE,
    NormalityModel,
    frame_span,
    unusual_probability,
)
from vadx.progress import ProgressFn
from vadx.settings import DetectConfig
from vadx.video.decode import VideoReader

#: the calibrated threshold's margin over the boundary found, relative
MARGIN = 1e-3


@dataclass(frozen=True)
class UnusualTrack:
    """Frame scores read against a threshold, as detection reads them: ``unusual`` =
    ``unusual_probability(s, threshold)`` per frame, ``probabilities`` its (unusual, normal)
    columns, ``smoothed`` its moving average and ``events`` what the hysteresis finds in it."""

    unusual: np.ndarray
    probabilities: np.ndarray
    smoothed: np.ndarray
    events: list[Event]


def unusual_track(
    scores: np.ndarray,
    threshold: float,
    timestamps: np.ndarray,
    config: DetectConfig,
    sharpness: float = 1.0,
) -> UnusualTrack:
    """The one rule detection and calibration share (module doc): ``scores`` read at
    ``threshold`` (:func:`~vadx.normality.model.unusual_probability` with ``sharpness``),
    smoothed and searched for events with ``config``'s on, off and shortest event."""
    scores = np.asarray(scores, np.float64)  # as calibration computed them
    unusual = unusual_probability(scores, threshold, sharpness)
    probabilities = np.stack([unusual, 1 - unusual], axis=1)
    smoothed = moving_average(unusual, config.smooth)
    events = all_events(probabilities, smoothed, CLASSES, "normal", timestamps, config)
    return UnusualTrack(unusual, probabilities, smoothed, events)


@dataclass(frozen=True, slots=True)
class Calibration:
    """What :func:`calibrate` measured (``dataclasses.asdict`` is the checkpoint's
    ``calibration``): the false-alarm rate asked for, the seconds held back, the alarms they
    raise at the threshold and their rate per hour (None without footage), the highest score
    held back, the detection settings the threshold was calibrated with
    (:data:`CALIBRATED_SETTINGS`), and the seconds fitted and the alarms they raise at the
    threshold (:func:`calibrate`)."""

    alarms_per_hour: float
    held_back_seconds: float
    held_back_alarms: int
    measured_alarms_per_hour: float | None
    held_back_max_score: float
    smooth: int
    on: float
    off: float
    min_frames: int
    fitted_seconds: float = 0.0
    fitted_alarms: int = 0


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
    them* (:func:`unusual_track`), and at which the whole footage (the share fitted too, each
    share read as detection reads a video) does as well; with what was measured.

    The held-back share is the honest test, footage the statistics never saw; but minutes of
    it may be calmer than the rest, and a threshold just above its ordinary frames would then
    alarm on the very footage learnt from. The fitted share scores a little lower than unseen
    footage would (its frames shaped the statistics), so it only ever raises the threshold.

    Every frame's ``p(unusual)`` falls as the threshold rises, so the alarms fall too (up to
    events merging): the search walks a geometric grid down from a threshold no frame reaches
    until the rate is broken, then halves the last step 20 times. The boundary found is raised
    by ``MARGIN``: CNN batches of other sizes move scores by a few parts in a million, which
    must not raise an alarm exactly at it."""
    sharp = model.config.sharpness
    held, seconds = _scores(model, footage, 1.0 - holdout, 1.0, "calibrating", progress)
    fitted, fitted_seconds = _scores(model, footage, 0.0, 1.0 - holdout, "checking", progress)

    def alarms(tracks: list[tuple[np.ndarray, np.ndarray]]) -> Callable[[float], int]:
        def count(threshold: float) -> int:
            return sum(
                len(unusual_track(v, threshold, t, detection, sharp).events) for v, t in tracks
            )

        return count

    def search(tracks: list[tuple[np.ndarray, np.ndarray]], hours: float) -> float:
        highest = float(max(v.max() for v, _ in tracks))
        allowed = int(alarms_per_hour * hours)
        return lowest_threshold(alarms(tracks), allowed, highest, detection.on, sharp)

    hours = seconds / 3600
    good = max(search(held, hours), search(held + fitted, hours + fitted_seconds / 3600))
    found = alarms(held)(good)
    return good, Calibration(
        alarms_per_hour=alarms_per_hour,
        held_back_seconds=round(seconds, 2),
        held_back_alarms=found,
        measured_alarms_per_hour=round(found / hours, 3) if hours else None,
        held_back_max_score=round(float(max(v.max() for v, _ in held)), 4),
        smooth=detection.smooth,
        on=detection.on,
        off=detection.off,
        min_frames=detection.min_frames,
        fitted_seconds=round(fitted_seconds, 2),
        fitted_alarms=alarms(fitted)(good),
    )


def _scores(
    model: NormalityModel,
    footage: Sequence[str | os.PathLike[str]],
    start: float,
    stop: float,
    stage: str,
    progress: ProgressFn | None,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    """Per video, the frame scores from ``start`` to ``stop`` (shares of its length), read as
    detection reads a video from there, with their timestamps; and their seconds in all."""
    tracks, seconds = [], 0.0
    for path in footage:
        with VideoReader(path) as reader:
            fps, timestamps = reader.info.fps, reader.timestamps
            first, _ = frame_span(reader.info.num_frames, start, stop)
        maps = model.video_maps(path, start, stop, progress, f"{stage} {Path(path).name}")
        values = np.concatenate([model.frame_scores(m) for m in maps]).astype(np.float64)
        tracks.append((values, np.asarray(timestamps[first : first + len(values)])))
        seconds += len(values) / fps
    return tracks, seconds


def lowest_threshold(
    alarms: Callable[[float], int], allowed: int, highest: float, on: float, sharpness: float
) -> float:
    """The lowest threshold at which ``alarms(threshold) <= allowed`` (:func:`calibrate`'s
    search), raised by ``MARGIN``; ``highest``: the largest score, ``on``: detection's on
    level, ``sharpness``: the probability's."""
    # above this no frame's p(unusual), smoothed or not, reaches the "on" level
    odds = (1 - on) / max(on, 1e-6)
    good = max(highest, 1e-6) * odds ** (1 / sharpness) * 1.05 + 1e-6
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
    return good * (1 + MARGIN)


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


def calibrated_config(model: NormalityModel) -> DetectConfig:
    """The detection settings a normality model's threshold was calibrated with (its
    ``calibration``; detect's defaults where it records none): a camera's normal beside a
    classifier reads frames with these, since the classifier's settings are the classifier's,
    and the false-alarm rate measured holds only with these."""
    calibrated = {k: model.calibration[k] for k in CALIBRATED_SETTINGS if k in model.calibration}
    return DetectConfig(**calibrated)
