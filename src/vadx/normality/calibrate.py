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
    first_frame,
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
        first = first_frame(path, 1.0 - holdout)
        stage = f"calibrating {Path(path).name}"
        maps = model.video_maps(path, 1.0 - holdout, 1.0, progress, stage)
        values = np.concatenate([model.frame_scores(m) for m in maps]).astype(np.float64)
        held.append((values, np.asarray(timestamps[first : first + len(values)])))
        seconds += len(values) / fps
    hours = seconds / 3600
    allowed = int(alarms_per_hour * hours)

    def alarms(threshold: float) -> int:
        sharp = model.config.sharpness
        return sum(len(unusual_track(v, threshold, t, detection, sharp).events) for v, t in held)

    highest = float(max(v.max() for v, _ in held))
    good = lowest_threshold(alarms, allowed, highest, detection.on, model.config.sharpness)
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
