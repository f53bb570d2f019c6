"""Anomalies over a whole video: ``vadx detect MODEL VIDEO --out DIR``.

Sliding windows of the model's clip length cover the video (``stride`` frames apart, their
frames ``step`` apart — by default as far apart as the frames of the model's training clips).
The CNN runs **once per frame**: per-frame features are computed once and every window reuses
them, so only the small RNN + head runs per window. Each frame's class probabilities are the
mean over the windows that span it; the anomaly score ``1 − p(normal)`` is smoothed, and events
are found with hysteresis: one starts where the score reaches ``on`` and ends where it falls
below ``off``. An event's class is the anomaly class most probable over its frames.

Every window also gets a domain score (:mod:`vadx.domain`): its distance to the model's
training data in feature space over the calibrated threshold; above 1 the footage is unlike
anything the model was trained on, and its probabilities mean little. ``DetectConfig.domain``
flags such windows (default), suppresses their alerts, or skips the check.

Outputs: ``events.json`` (with the domain verdict, and each event's share of frames outside the
domain), ``scores.csv`` (per frame), ``scores.png`` (scores over time with the events, frames
outside the domain shaded grey), ``annotated.mp4`` (each frame with "Fight: 98%", red while an
event is on).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx._version import __version__
from vadx.borrowed import eval_mode
from vadx.errors import InputError, NonFiniteError
from vadx.files import read_json, staged_folder, write_json
from vadx.models.crnn import CRNN
from vadx.models.domain_stats import domain_summary, missing_note
from vadx.progress import ProgressFn
from vadx.render.overlay import band_height, class_label, label_frame
from vadx.render.plots import png_bytes
from vadx.settings import DetectConfig
from vadx.video.decode import VideoInfo, VideoReader, video_sha256
from vadx.video.encode import Mp4Writer
from vadx.video.preprocess import fit_frames, frames_to_clip
from vadx.video.sampling import Window, sliding_windows

#: normalised frames ``(N, 3, H, W)`` → per-frame features ``(N, F)``
FrameEncoder = Callable[[torch.Tensor], np.ndarray]
#: where the per-frame CNN of :func:`detect` runs
RUNTIMES = ("torch", "onnx")


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
    settings: dict[str, Any] = field(default_factory=dict)
    #: per window and per frame (mean over the windows covering it): distance to the training
    #: domain over its threshold (> 1: outside); None when unchecked
    window_domain: np.ndarray | None = None
    frame_domain: np.ndarray | None = None
    #: :func:`vadx.domain.domain_summary` of the windows
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


def frame_features(
    model: CRNN,
    video: VideoReader,
    indices: np.ndarray,
    batch_size: int = 32,
    progress: ProgressFn | None = None,
    encode: FrameEncoder | None = None,
) -> np.ndarray:
    """Per-frame CNN features ``(len(indices), F)`` of the given frames, each computed once —
    by ``model``, or by ``encode`` (normalised frames ``(N, 3, H, W)`` → ``(N, F)``, e.g.
    :class:`vadx.export.OnnxFrames`)."""
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
    runtime: str = "torch",
) -> Detection:
    """Detect anomalies over the whole video ``source`` (see the module docstring).

    ``runtime="onnx"`` runs the per-frame CNN in ONNX Runtime (:class:`vadx.export.OnnxFrames`,
    on the CPU), the RNN and head in PyTorch.
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
            from vadx.export import OnnxFrames

            encode = OnnxFrames(model)
        features = frame_features(model, video, needed, config.batch_size, progress, encode)
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
    settings = {
        **asdict(config),
        "stride": stride,
        "step": step,
        "window": length,
        "runtime": runtime,
    }
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


# ----------------------------------------------------------------------------- outputs
def write_detection(
    out: str | Path,
    detection: Detection,
    source: str | Path,
    model_id: str | None = None,
    annotate: bool = True,
    progress: ProgressFn | None = None,
) -> Path:
    """Write events.json, scores.csv, scores.png and (optionally) annotated.mp4 into ``out``:
    all of them or, if anything fails or a signal stops it, none (``events.json`` comes last:
    a reader that finds it finds the rest)."""
    with staged_folder(out, last="events.json") as staging:
        write_detection_files(staging, detection, source, model_id, annotate, progress)
    return Path(out) / "events.json"


def write_detection_files(
    folder: Path,
    detection: Detection,
    source: str | Path,
    model_id: str | None = None,
    annotate: bool = True,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """The files of :func:`write_detection`, written straight into ``folder`` (a staging
    folder of the caller's), ``events.json`` last; returns its document."""
    _write_scores_csv(folder / "scores.csv", detection)
    (folder / "scores.png").write_bytes(scores_png(detection))
    if annotate:
        write_annotated(folder / "annotated.mp4", detection, source, progress)
    document = {
        "video": str(source),
        "video_sha256": video_sha256(source),
        "video_info": asdict(detection.info),
        "model": model_id,
        "vadx_version": __version__,
        "settings": detection.settings,
        "classes": list(detection.class_names),
        "events": [asdict(e) for e in detection.events],
        "windows": len(detection.windows),
        "domain": detection.domain,
    }
    write_json(folder / "events.json", document)
    return document


def _write_scores_csv(path: Path, detection: Detection) -> None:
    names = detection.class_names
    domain = detection.frame_domain
    active = _event_of_frame(detection)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "frame",
                "time",
                *[f"p_{n}" for n in names],
                "anomaly",
                "smoothed",
                "event",
                *(["domain_score", "out_of_domain"] if domain is not None else []),
            ]
        )
        for t, row in enumerate(detection.frame_probabilities):
            familiarity = [] if domain is None else [f"{domain[t]:.3f}", int(domain[t] > 1)]
            writer.writerow(
                [
                    t,
                    f"{detection.timestamps[t]:.4f}",
                    *[f"{p:.5f}" for p in row],
                    f"{detection.anomaly_score[t]:.5f}",
                    f"{detection.smoothed_score[t]:.5f}",
                    active[t] or "",
                    *familiarity,
                ]
            )


def _event_of_frame(detection: Detection) -> list[str | None]:
    labels: list[str | None] = [None] * detection.info.num_frames
    for event in detection.events:
        for t in range(event.start_frame, event.end_frame + 1):
            labels[t] = event.class_name
    return labels


def scores_png(detection: Detection) -> bytes:
    """Class probabilities and the smoothed anomaly score over time, events shaded."""
    from matplotlib.figure import Figure

    times = detection.timestamps
    figure = Figure(figsize=(10, 3.8))
    axes = figure.subplots()
    for k, name in enumerate(detection.class_names):
        axes.plot(times, detection.frame_probabilities[:, k], lw=1, label=f"p({name})")
    axes.plot(times, detection.smoothed_score, "k", lw=2, label="anomaly score (smoothed)")
    for event in detection.events:
        axes.axvspan(event.start_time, event.end_time, color="red", alpha=0.15)
        axes.text(event.start_time, 1.02, event.class_name, color="red", fontsize=8)
    outside = detection.outside_domain
    if outside.any():
        axes.fill_between(
            times,
            0,
            1.08,
            where=outside,
            color="grey",
            alpha=0.2,
            lw=0,
            label="outside the model's domain",
        )
    on, off = detection.settings["on"], detection.settings["off"]
    axes.axhline(on, color="red", ls="--", lw=0.8)
    axes.axhline(off, color="grey", ls=":", lw=0.8)
    axes.set_ylim(0, 1.08)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("probability")
    # the legend under the plot: it never covers the curves or the events' labels
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=7, ncol=4, frameon=False)
    figure.tight_layout()
    return png_bytes(figure, dpi=100)


def write_annotated(
    path: Path, detection: Detection, source: str | Path, progress: ProgressFn | None = None
) -> Path:
    """Every frame of the video with its top class and probability ("Fight: 98%"), and
    "(unfamiliar scene)" on frames outside the model's domain."""
    active = _event_of_frame(detection)
    outside = detection.outside_domain
    names = detection.class_names
    info = detection.info
    size = (info.height + band_height(info.width), info.width)  # the label below the picture
    writer = Mp4Writer(path, info.fps, size, reproducible=False)
    with VideoReader(source) as video, writer:
        for t, _, frame in video:
            row = detection.frame_probabilities[t]
            if active[t] is not None:
                name = active[t]
                text = class_label(name, row[names.index(name)])
            else:
                best = int(row.argmax())
                text = class_label(names[best], row[best])
            if outside[t]:
                text += " (unfamiliar scene)"
            writer.write(label_frame(frame, text, active[t] is not None))
            if progress is not None and t % 25 == 0:
                progress("annotating", t + 1, info.num_frames)
    return path


def read_detection(folder: str | Path, model: CRNN, source: str | Path) -> Detection:
    """The detection ``vadx detect`` wrote into ``folder`` (``events.json``, ``scores.csv``),
    checked to be of ``source`` by ``model``: what an explanation's timeline and ``--windows``
    take instead of detecting the whole video again. Its windows are cut again from its
    settings; their probabilities are not on file (NaN), events carry their window."""
    folder = Path(folder)
    try:
        document = read_json(folder / "events.json", InputError)
        with open(folder / "scores.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, ValueError) as err:
        raise InputError(
            f"{folder} holds no detection vadx can read ({err}); give the {{out}} "
            "folder of a vadx detect run",
            "out",
        ) from None
    model_id = model.model_id
    if document.get("model") != model_id:
        raise InputError(
            f"{folder} holds the detection of model {document.get('model')}, not "
            f"of this model ({model_id}); detect again with it"
        ) from None
    if document.get("video_sha256") != video_sha256(source):
        raise InputError(
            f"{folder} holds the detection of another video "
            f"({document.get('video')}), not of {source}"
        )
    info = VideoInfo(**document["video_info"])
    names = tuple(document["classes"])
    settings = document["settings"]

    def column(name: str) -> np.ndarray:
        return np.array([float(row[name]) for row in rows])

    timestamps = column("time")
    windows = sliding_windows(
        info.num_frames, settings["window"], settings["stride"], settings["step"], timestamps
    )
    events = [
        Event(**{**e, "window": tuple(e["window"]) if e.get("window") else None})
        for e in document["events"]
    ]
    frame_domain = column("domain_score") if rows and "domain_score" in rows[0] else None
    return Detection(
        info,
        names,
        windows,
        np.full((len(windows), len(names)), np.nan),
        np.stack([column(f"p_{n}") for n in names], 1),
        column("anomaly"),
        column("smoothed"),
        events,
        timestamps,
        settings,
        None,
        frame_domain,
        document.get("domain", {}),
    )
