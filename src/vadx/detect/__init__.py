"""Anomalies over a whole video: ``vadx detect MODEL VIDEO --out DIR``.

Sliding windows of the model's clip length cover the video (``stride`` frames apart, their
frames ``step`` apart — by default as far apart as the frames of the model's training clips).
The CNN runs **once per frame**: per-frame features are computed once and every window reuses
them, so only the small RNN + head runs per window. Each frame's class probabilities are the
mean over the windows that span it; the anomaly score ``1 − p(normal)`` is smoothed, and events
are found with hysteresis: one starts where the score reaches ``on`` and ends where it falls
below ``off``. An event's class is the anomaly class most probable over its frames.

Every window also gets a domain score (:mod:`vadx.detect.domain`): its distance to the model's
training data in feature space over the calibrated threshold; above 1 the footage is unlike
anything the model was trained on, and its probabilities mean little. ``DetectConfig.domain``
flags such windows (default), suppresses their alerts, or skips the check.

Its outputs (:mod:`vadx.detect.files`): ``events.json`` (with the domain verdict, and each
event's share of frames outside the domain), ``scores.csv`` (per frame), ``scores.png`` (scores
over time with the events, frames outside the domain shaded grey), ``annotated.mp4`` (each
frame with "Fight: 98%", red while an event is on).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx.borrowed import eval_mode
from vadx.errors import InputError, NonFiniteError
from vadx.models.crnn import CRNN
from vadx.models.domain_stats import domain_summary, missing_note
from vadx.progress import ProgressFn
from vadx.settings import RUNTIMES, DetectConfig, DetectionSettings, Runtime
from vadx.video.decode import VideoInfo, VideoReader
from vadx.video.preprocess import fit_frames, frames_to_clip
from vadx.video.sampling import Window, sliding_windows

#: normalised frames ``(N, 3, H, W)`` → per-frame features ``(N, F)``
FrameEncoder = Callable[[torch.Tensor], np.ndarray]
#: where the per-frame CNN of :func:`detect` runs


@dataclass(frozen=True)
class Event:
    """An anomaly found in a video (frames inclusive)."""

    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    class_name: str
    peak_probability: float
    mean_probability: float
    #: share of the event's frames outside the model's domain (None: not checked)
    out_of_domain: float | None = None
    #: first and last frame of the event's most anomalous window (:func:`event_window`): the
    #: clip that explains the event, wherever it is explained from (None: live detection)
    window: tuple[int, int] | None = None


@dataclass
class Detection:
    """Everything :func:`detect` computed over one video."""

    info: VideoInfo
    class_names: tuple[str, ...]
    windows: list[Window]
    window_probabilities: np.ndarray
    frame_probabilities: np.ndarray
    anomaly_score: np.ndarray
    smoothed_score: np.ndarray
    events: list[Event]
    timestamps: np.ndarray
    settings: DetectionSettings
    #: per window and per frame (mean over the windows covering it): distance to the training
    #: domain over its threshold (> 1: outside); None when unchecked
    window_domain: np.ndarray | None = None
    frame_domain: np.ndarray | None = None
    #: :func:`vadx.detect.domain.domain_summary` of the windows
    domain: dict[str, Any] = field(default_factory=lambda: {"checked": False})

    @property
    def outside_domain(self) -> np.ndarray:
        """Per frame: whether it lies outside the model's domain (all False if unchecked)."""
        if self.frame_domain is None:
            return np.zeros(self.info.num_frames, bool)
        return self.frame_domain > 1


def default_step(model: CRNN) -> int:
    """Spacing of the frames of the model's training clips (1 if the checkpoint doesn't say)."""
    info = model.checkpoint
    step = info.metadata.get("sampling_step") if info is not None else None
    return max(1, round(step)) if step else 1


def default_stride(span: int, step: int) -> int:
    """A quarter of the window's ``span``, rounded down to a multiple of ``step`` (at least
    ``step``): then every window takes the same frames (every ``step``-th), and each of them
    goes through the CNN once — a stride off the step's grid would need every frame.

    >>> default_stride(39, 2), default_stride(20, 1), default_stride(3, 2)
    (8, 5, 2)
    """
    return max(step, (span // 4) // step * step)


def window_spacing(model: CRNN, config: DetectConfig) -> tuple[int, int, int]:
    """``(step, span, stride)`` of the windows detection cuts for ``model``: frames ``step``
    apart, ``span`` frames from first to last, a window every ``stride`` frames."""
    step = config.step or default_step(model)
    span = (model.config.num_frames - 1) * step + 1
    return step, span, config.stride or default_stride(span, step)


def video_features(
    model: CRNN,
    video: VideoReader,
    indices: np.ndarray,
    batch_size: int = 32,
    progress: ProgressFn | None = None,
    encode: FrameEncoder | None = None,
) -> np.ndarray:
    """Per-frame CNN features ``(len(indices), F)`` of the given frames, each computed once —
    by ``model``, or by ``encode`` (normalised frames ``(N, 3, H, W)`` → ``(N, F)``, e.g.
    :class:`vadx.models.export.OnnxFrames`)."""
    config = model.config
    device = model.device
    rows = []
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            frames, _, _ = fit_frames(video.read(chunk).data, config.frame_size, config.fit)
            clip = frames_to_clip(frames, config.mean, config.std)
            if encode is not None:
                rows.append(encode(clip))
            else:
                rows.append(model.frame_features(clip[None].to(device))[0].cpu().numpy())
            if progress is not None:
                progress("frames", min(start + batch_size, len(indices)), len(indices))
    return np.concatenate(rows)


def detect(
    model: CRNN,
    source: str | Path,
    config: DetectConfig | None = None,
    progress: ProgressFn | None = None,
    runtime: Runtime = "torch",
) -> Detection:
    """Detect anomalies over the whole video ``source`` (see the module docstring).

    ``runtime="onnx"`` runs the per-frame CNN in ONNX Runtime
    (:class:`vadx.models.export.OnnxFrames`, on the CPU), the RNN and head in PyTorch.
    """
    config = config or DetectConfig()
    if runtime not in RUNTIMES:
        raise InputError(f"runtime must be {' or '.join(RUNTIMES)}, got {runtime!r}")
    check_domain_mode(model, config.domain)
    length = model.config.num_frames
    step, span, stride = window_spacing(model, config)
    with VideoReader(source) as video:
        info = video.info
        if info.num_frames < span:
            raise InputError(
                f"{source} has {info.num_frames} frames, fewer than one window of the model "
                f"({length} frames {step} apart = {span}): {_too_short_advice(info, length)}",
                "step",
            )
        windows = sliding_windows(info.num_frames, length, stride, step, video.timestamps)
        needed = np.unique(np.concatenate([w.indices for w in windows]))
        encode = None
        if runtime == "onnx":
            from vadx.models.export import OnnxFrames

            encode = OnnxFrames(model)
        features = video_features(model, video, needed, config.batch_size, progress, encode)
        timestamps = video.timestamps.copy()
    row_of = np.full(info.num_frames, -1)
    row_of[needed] = np.arange(len(needed))
    window_features = torch.from_numpy(np.stack([features[row_of[w.indices]] for w in windows]))
    with eval_mode(model), torch.no_grad():
        logits = torch.cat([model.forward_features(chunk) for chunk in window_features.split(256)])
    check_finite_outputs(logits, windows, features, row_of)
    window_probabilities = logits.softmax(-1).numpy()
    frame_probabilities = spread_over_frames(windows, window_probabilities, info.num_frames)
    window_domain = frame_domain = None
    if config.domain != "off" and model.domain is not None:
        distances = model.domain.frame_distances(features)
        window_domain = model.domain.scores([distances[row_of[w.indices]].mean() for w in windows])
        frame_domain = spread_over_frames(windows, window_domain[:, None], info.num_frames)[:, 0]
    names = model.class_names
    normal = model.config.normal_class
    anomaly = anomaly_score(frame_probabilities, names, normal)
    smoothed = moving_average(anomaly, config.smooth)
    outside = None if frame_domain is None else frame_domain > 1
    events = all_events(frame_probabilities, smoothed, names, normal, timestamps, config, outside)
    chosen = [event_window(windows, window_probabilities, names, e) for e in events]
    events = [
        replace(e, window=(int(w.indices[0]), int(w.indices[-1])))
        for e, w in zip(events, chosen, strict=True)
    ]
    settings = DetectionSettings.resolved(config, stride, step, length, runtime)
    threshold = None if window_domain is None else model.domain.threshold
    return Detection(
        info,
        names,
        windows,
        window_probabilities,
        frame_probabilities,
        anomaly,
        smoothed,
        events,
        timestamps,
        settings,
        window_domain,
        frame_domain,
        domain_summary(window_domain, threshold),
    )


def event_window(
    windows: list[Window], probabilities: np.ndarray, names: Sequence[str], event: Event
) -> Window:
    """The event's most anomalous window: of the windows overlapping it (else the nearest),
    the one with the highest probability of the event's class. One rule for every place that
    explains an event (``vadx explain --windows flagged``, the web page's Explain button)."""
    column = list(names).index(event.class_name)
    first, last = event.start_frame, event.end_frame

    def apart(w: Window) -> int:  # frames between the window and the event (0: they overlap)
        return max(0, int(w.indices[0]) - last, first - int(w.indices[-1]))

    # frames no window covers (a stride past the last window) take the nearest windows'
    return min(windows, key=lambda w: (apart(w), -probabilities[w.number, column]))


def _too_short_advice(info: VideoInfo, length: int) -> str:
    if info.num_frames < length:
        return f"the model needs a video of at least {length} frames"
    return f"use a smaller {{step}} (at most {(info.num_frames - 1) // max(length - 1, 1)})"


def check_domain_mode(model: CRNN, mode: str, show_path: bool = True) -> None:
    """Refuse ``suppress`` for a model without domain statistics (nothing to suppress by)."""
    if mode == "suppress" and model.domain is None:
        raise InputError(
            f"domain 'suppress' needs domain statistics: {missing_note(model, show_path)}"
        )


def spread_over_frames(
    windows: list[Window], probabilities: np.ndarray, num_frames: int
) -> np.ndarray:
    """Per-frame probabilities: the mean over the windows whose span covers each frame."""
    total = np.zeros((num_frames, probabilities.shape[1]))
    count = np.zeros(num_frames)
    for window, row in zip(windows, probabilities, strict=True):
        total[window.start : window.end + 1] += row
        count[window.start : window.end + 1] += 1
    return total / np.maximum(count, 1)[:, None]


def check_finite_outputs(logits: torch.Tensor, windows, features: np.ndarray, row_of) -> None:
    """Refuse NaN or infinite model outputs: a detector whose scores are NaN never alerts."""
    bad = ~torch.isfinite(logits).all(1)
    if not bool(bad.any()):
        return
    first = windows[int(bad.nonzero()[0, 0])]
    in_features = not np.isfinite(features[row_of[first.indices]]).all()
    where = "the CNN's features" if in_features else "the sequence model's outputs"
    raise NonFiniteError(
        f"the model produces non-finite outputs (first in the window of frames "
        f"{first.indices[0]}–{first.indices[-1]}, in {where}): its scores would be NaN and it "
        "would never alert; check the model's weights and preprocessing (vadx info MODEL), or "
        "use another checkpoint"
    )


def anomaly_score(probabilities: np.ndarray, names: tuple[str, ...], normal: str | None):
    """``1 − p(normal)``, or the largest class probability when no class is normal."""
    if normal in names:
        return 1.0 - probabilities[:, names.index(normal)]
    return probabilities.max(1)


def moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` frames (``width // 2`` before, ``(width - 1) // 2``
    after, as the live engine smooths), shrinking at the ends (no padding bias); any width,
    also one wider than the video."""
    if width <= 1:
        return values.copy()
    frames = np.arange(len(values))
    first = np.maximum(0, frames - width // 2)
    stop = np.minimum(len(values), frames + (width - 1) // 2 + 1)
    totals = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    return (totals[stop] - totals[first]) / (stop - first)


def tracks(names: tuple[str, ...], normal: str | None, per_class: bool) -> list[int | None]:
    """The score each event track follows: the anomaly score (``None``) or, per class, a
    class's probability (its column)."""
    if not per_class:
        return [None]
    return [k for k, name in enumerate(names) if name != normal]


def all_events(
    probabilities: np.ndarray,
    smoothed: np.ndarray,
    names: tuple[str, ...],
    normal: str | None,
    timestamps: np.ndarray,
    config: DetectConfig,
    outside: np.ndarray | None = None,
) -> list[Event]:
    """Events of every track (:func:`tracks`), in order of start frame; ``outside`` marks the
    frames outside the model's domain (None: unchecked)."""
    events = []
    for column in tracks(names, normal, config.per_class):
        if column is None:
            events += find_events(
                smoothed, probabilities, names, normal, timestamps, config, outside=outside
            )
        else:
            score = moving_average(probabilities[:, column], config.smooth)
            events += find_events(
                score, probabilities, names, normal, timestamps, config, [column], outside
            )
    return sorted(events, key=lambda e: (e.start_frame, e.class_name))


def find_events(
    score: np.ndarray,
    probabilities: np.ndarray,
    names: tuple[str, ...],
    normal: str | None,
    timestamps: np.ndarray,
    config: DetectConfig,
    classes: list[int] | None = None,
    outside: np.ndarray | None = None,
) -> list[Event]:
    """Hysteresis on ``score``: on at ``config.on``, off below ``config.off`` (see
    :class:`EventTracker`, which ``vadx watch`` feeds frame by frame)."""
    tracker = EventTracker(names, normal, config, classes)
    for t, (value, row) in enumerate(zip(score, probabilities, strict=True)):
        flag = None if outside is None else bool(outside[t])
        tracker.update(t, float(value), row, float(timestamps[t]), flag)
    tracker.close()
    return tracker.events


@dataclass(frozen=True)
class EventUpdate:
    """What an :class:`EventTracker` step changed: an event ``"started"`` (it has lasted
    ``min_frames``; its end, class and probabilities are those so far) or ``"ended"`` (final)."""

    kind: str
    event: Event


class EventTracker:
    """Events from a score fed one frame at a time, with hysteresis.

    An event starts at the first frame whose score reaches ``config.on`` and ends at the last
    frame before the score falls below ``config.off``; events shorter than ``config.min_frames``
    are dropped, so an event is announced (``"started"``) only once it has lasted that long.
    Its class is the one of ``classes`` (default: every anomaly class) with the highest mean
    probability over the event's frames; peak and mean are that class's. Frames flagged
    ``outside`` the model's domain count toward the event's ``out_of_domain`` share; with
    ``config.domain == "suppress"`` their score is taken as 0, so they cannot raise an alert.

    Offline detection and the live engine share this class, so both find the same events.
    """

    def __init__(
        self,
        names: tuple[str, ...],
        normal: str | None,
        config: DetectConfig,
        classes: list[int] | None = None,
    ) -> None:
        self.names, self.config = names, config
        self.classes = (
            classes if classes is not None else [k for k, n in enumerate(names) if n != normal]
        )
        self.events: list[Event] = []
        self._open: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        """Whether an event is open (announced or not yet)."""
        return self._open is not None

    def update(
        self,
        frame: int,
        score: float,
        probabilities: np.ndarray,
        time: float,
        outside: bool | None = None,
    ) -> list[EventUpdate]:
        """Feed the next frame: its label, score, class probabilities, time (seconds) and
        whether it is outside the model's domain (None: unchecked)."""
        if outside and self.config.domain == "suppress":
            score = 0.0
        updates: list[EventUpdate] = []
        state = self._open
        if state is not None and score < self.config.off:
            updates += self.close()
            state = None
        if state is None and score >= self.config.on:
            state = self._open = {
                "start": frame,
                "start_time": time,
                "frames": 0,
                "sum": np.zeros(len(self.classes)),
                "max": np.zeros(len(self.classes)),
                "outside": None,
            }
        if state is not None:
            share = np.asarray(probabilities, np.float64)[self.classes]
            state["frames"] += 1
            if outside is not None:
                state["outside"] = (state["outside"] or 0) + int(outside)
            state["sum"] += share
            state["max"] = np.maximum(state["max"], share)
            state["end"], state["end_time"] = frame, time
            if state["frames"] == self.config.min_frames:
                updates.append(EventUpdate("started", self._event(state)))
        return updates

    def close(self) -> list[EventUpdate]:
        """End the open event at the last frame fed (the score fell, or the stream ended)."""
        state, self._open = self._open, None
        if state is None or state["frames"] < self.config.min_frames:
            return []
        event = self._event(state)
        self.events.append(event)
        return [EventUpdate("ended", event)]

    def _event(self, state: dict[str, Any]) -> Event:
        best = int((state["sum"] / state["frames"]).argmax())
        outside = None if state["outside"] is None else state["outside"] / state["frames"]
        return Event(
            state["start"],
            state["end"],
            state["start_time"],
            state["end_time"],
            self.names[self.classes[best]],
            float(state["max"][best]),
            float(state["sum"][best] / state["frames"]),
            outside,
        )
