"""The live detection engine: frames in, window decisions and events out, as they happen.

:class:`StreamDetector` computes exactly what ``vadx detect`` computes over a file, but one
frame at a time and with bounded memory:

* a **per-frame feature cache** — the CNN runs once per frame that some window uses (every
  ``step``-th frame on the regular grid), and the RNN + head run over the cached features of
  each window as soon as its last frame arrives (every ``stride`` frames); the cost per frame
  does not grow with the window length;
* a frame's probabilities are the mean over the windows that cover it, so a frame is
  **final** once no later window can cover it (about one window span after it arrived); the
  anomaly score is smoothed as soon as the frames around it are final;
* events come from the same :class:`~vadx.detect.EventTracker` as offline detection: an
  event is announced (``"started"``) once it has lasted ``min_frames`` and reported again
  when it ends (``"ended"``, final).

A stream can break (a camera reconnects): :meth:`StreamDetector.end_segment` closes the
current segment like the end of a file — the last window is moved back to end at the last
frame, the open event ends there — so frames from before and after a gap never share a window.

>>> detector = StreamDetector(model, on_alert=print)                     # doctest: +SKIP
>>> for number, frame in enumerate(my_pipeline()):                       # doctest: +SKIP
...     detector.push(frame, FrameInfo.now(number, number / 25))
>>> detector.end_segment()                                               # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from vadx.borrowed import eval_mode
from vadx.detect import (
    DetectConfig,
    Event,
    EventTracker,
    EventUpdate,
    anomaly_score,
    check_domain_mode,
    tracks,
    window_spacing,
)
from vadx.errors import InputError
from vadx.models.crnn import CRNN
from vadx.video.preprocess import fit_frames, frames_to_clip


@dataclass(frozen=True)
class FrameInfo:
    """Where a frame came from.

    Attributes:
        number: the frame's number in the source (frames delivered since it was opened).
        time: seconds since the first frame of its session (the stream's timestamps).
        captured: ``time.monotonic()`` when it was captured (end-to-end latency starts here).
        wall: ``time.time()`` when it was captured (for the events' clock times).
        session: connections to the source before this frame (0 until a reconnection).
    """

    number: int
    time: float
    captured: float
    wall: float
    session: int = 0

    @classmethod
    def now(cls, number: int, seconds: float, session: int = 0) -> FrameInfo:
        """A frame captured now."""
        return cls(number, seconds, time.monotonic(), time.time(), session)


@dataclass(frozen=True)
class Decision:
    """The model's output on one window (``first``…``last`` are its first and last frames)."""

    window: int
    first: FrameInfo
    last: FrameInfo
    probabilities: np.ndarray
    anomaly: float
    decided: float
    #: distance to the model's training domain over its threshold (> 1: outside), or None
    domain_score: float | None = None

    @property
    def latency(self) -> float:
        """Seconds from the capture of the window's last frame to this decision."""
        return self.decided - self.last.captured


@dataclass(frozen=True)
class Alert:
    """An event update of the live engine.

    Attributes:
        id: the event's number in this engine (``started`` and ``ended`` share it).
        kind: ``"started"`` or ``"ended"``.
        event: frames are source frame numbers, times the session's seconds.
        started_at, ended_at: clock times (``time.time()``) of the first and last frames.
        session: the source session the event happened in.
        reason: why it ended: ``"score"`` (fell below ``off``) or the reason given to
            :meth:`StreamDetector.end_segment` (the stream ended, broke, or was stopped).
        window, window_frames, window_times, window_fps: for ``started``, the window of the
            event most probable for its class (uint8 frames, their numbers, their stream times,
            their rate), to explain and to keep; None when not kept.
        signal: what raised it: ``classifier`` (a classifier's classes) or ``normality`` (a
            camera's normal: ``unusual``); a camera watched by both has events of each.
        window_maps: with a normality model's ``window``, the anomaly map of each of its frames
            ``(N, h, w)`` in the model's standard units.
    """

    id: int
    kind: str
    event: Event
    started_at: float
    ended_at: float
    session: int
    reason: str | None = None
    window: np.ndarray | None = None
    window_frames: tuple[int, ...] = ()
    window_times: tuple[float, ...] = ()
    window_fps: float = 0.0
    signal: str = "classifier"
    window_maps: np.ndarray | None = None


@dataclass(frozen=True)
class WindowPlan:
    """Windows of ``length`` frames ``step`` apart, starting every ``stride`` frames."""

    length: int
    step: int
    stride: int

    @property
    def span(self) -> int:
        """Frames from a window's first to its last frame, inclusive."""
        return (self.length - 1) * self.step + 1

    def indices(self, start: int) -> np.ndarray:
        """The frames of the window starting at ``start``."""
        return start + self.step * np.arange(self.length)

    def needed(self, index: int) -> bool:
        """Whether a regular window (start a multiple of ``stride``) uses frame ``index``."""
        first = max(0, -(-(index - self.span + 1) // self.stride))
        return any(
            (index - m * self.stride) % self.step == 0
            for m in range(first, index // self.stride + 1)
        )


class SegmentTracker:
    """Per-frame probabilities, smoothing and event tracks of one segment, fed window by window:
    window probabilities in, event updates out.

    Equal to :func:`~vadx.detect.spread_over_frames`, :func:`~vadx.detect.moving_average`
    and :func:`~vadx.detect.all_events` over the same windows (tested), but incremental. The
    tracks see frames by their index in the segment.
    """

    def __init__(
        self,
        names: tuple[str, ...],
        normal: str | None,
        config: DetectConfig,
        *,
        span: int,
        times: Callable[[int], float],
        checked: bool = False,
    ) -> None:
        self.names, self.normal, self.config, self.span = names, normal, config, span
        self.checked = checked  # whether windows come with domain scores
        self.times = times
        self.zeros = np.zeros(len(names))
        self.totals: dict[int, np.ndarray] = {}
        self.counts: dict[int, int] = {}
        self.domain_totals: dict[int, float] = {}
        self.outside: dict[int, bool | None] = {}  # final frames: outside the domain?
        self.final = 0  # frames whose probabilities are final
        self.emitted = 0  # frames smoothed and fed to the tracks
        self.values: dict[int, np.ndarray] = {}  # final [anomaly, p_0, …] kept for smoothing
        self.tracks = [
            (column, EventTracker(names, normal, config, None if column is None else [column]))
            for column in tracks(names, normal, config.per_class)
        ]

    def add_window(
        self, start: int, probabilities: np.ndarray, domain_score: float | None = None
    ) -> None:
        for index in range(start, start + self.span):
            self.totals[index] = self.totals.get(index, 0.0) + probabilities
            self.counts[index] = self.counts.get(index, 0) + 1
            if domain_score is not None:
                self.domain_totals[index] = self.domain_totals.get(index, 0.0) + domain_score

    def advance(self, final: int, ended: bool = False) -> list[tuple[int | None, EventUpdate]]:
        """Frames before ``final`` are final (no later window covers them): smooth and track
        what can be. ``ended``: the segment ends at ``final`` frames; open events end there.

        Returns each update with its track (``None``: the anomaly score; else a class column).
        """
        if final > self.final:
            # a frame no window covers (stride > span) gets zeros, like spread_over_frames
            for i in range(self.final, final):
                # a frame no window covers scores 0, like spread_over_frames
                domain = self.domain_totals.pop(i, 0.0) / max(self.counts.get(i, 0), 1)
                self.outside[i] = domain > 1 if self.checked else None
            rows = np.stack(
                [
                    self.totals.pop(i, self.zeros) / max(self.counts.pop(i, 0), 1)
                    for i in range(self.final, final)
                ]
            )
            scores = anomaly_score(rows, self.names, self.normal)
            for index, value in zip(
                range(self.final, final), np.column_stack([scores, rows]), strict=True
            ):
                self.values[index] = value
        self.final = max(self.final, final)
        width = self.config.smooth
        left, right = width // 2, (width - 1) // 2
        updates: list[tuple[int | None, EventUpdate]] = []
        last = self.final if ended else self.final - right
        for index in range(self.emitted, last):
            around = [
                self.values[j]
                for j in range(max(0, index - left), min(self.final, index + right + 1))
            ]
            smoothed = np.mean(around, axis=0)
            row = self.values[index][1:]
            outside = self.outside.pop(index, None)
            for column, tracker in self.tracks:
                score = smoothed[0] if column is None else smoothed[column + 1]
                updates += [
                    (column, u)
                    for u in tracker.update(index, float(score), row, self.times(index), outside)
                ]
            self.values.pop(index - left, None)
        self.emitted = max(self.emitted, last)
        if ended:
            for column, tracker in self.tracks:
                updates += [(column, update) for update in tracker.close()]
        return updates


AlertFn = Callable[[Alert], None]
DecisionFn = Callable[[Decision], None]


class StreamDetector:
    """Live anomaly detection over frames pushed one by one (see the module docstring).

    Args:
        model: a trained :class:`~vadx.models.CRNN`.
        config: the same settings as ``vadx detect`` (stride, step, smoothing, thresholds,
            ``min_frames``, ``per_class``); defaults likewise.
        on_alert: called with each :class:`Alert` (an event started or ended).
        on_decision: called with each window's :class:`Decision`.
        keep_clips: keep the recent frames so a started event carries the clip to explain.
        ids: the events' ids (default 1, 2, 3…); detectors beside each other on one source
            share one, so that their events' ids never meet.
    """

    #: what raises this detector's alerts (:attr:`Alert.signal`)
    signal = "classifier"

    def __init__(
        self,
        model: CRNN,
        config: DetectConfig | None = None,
        *,
        on_alert: AlertFn | None = None,
        on_decision: DecisionFn | None = None,
        keep_clips: bool = False,
        ids: Iterator[int] | None = None,
    ) -> None:
        self.model = model
        self.class_names, self.normal_class = model.class_names, model.config.normal_class
        self.config = config or DetectConfig()
        check_domain_mode(model, self.config.domain)
        #: the domain check in use (None: the model has none, or it is off)
        self.domain = model.domain if self.config.domain != "off" else None
        step, _, stride = window_spacing(model, self.config)
        self.plan = WindowPlan(model.config.num_frames, step, stride)
        self.device = model.device
        self.on_alert, self.on_decision = on_alert, on_decision
        self.keep_clips = keep_clips
        self.windows_decided = 0  # over all segments
        self.cnn_frames = 0  # frames through the CNN, over all segments
        self.alerts = 0
        self.ids = ids or itertools.count(1)
        #: the anomaly score of the latest window decided (None: none yet)
        self.latest: float | None = None
        self._new_segment()

    @property
    def settings(self) -> dict[str, int | float | bool]:
        """The detection settings in effect (those of ``vadx detect``'s ``events.json``)."""
        config = self.config
        return {
            "stride": self.plan.stride,
            "step": self.plan.step,
            "window": self.plan.length,
            "smooth": config.smooth,
            "on": config.on,
            "off": config.off,
            "min_frames": config.min_frames,
            "per_class": config.per_class,
            "domain": config.domain,
        }

    def _new_segment(self) -> None:
        self.infos: dict[int, FrameInfo] = {}
        self.tracker = SegmentTracker(
            self.class_names,
            self.normal_class,
            self.config,
            span=self.plan.span,
            times=lambda index: self.infos[index].time,
            checked=self.domain is not None,
        )
        self.received = 0
        self.next_start = 0
        self.features: dict[int, torch.Tensor] = {}
        self.distances: dict[int, float] = {}  # frame → distance to the training domain
        self.fitted: dict[int, np.ndarray] = {}
        self.recent: dict[int, np.ndarray] = {}
        self.window_rows: deque[tuple[int, np.ndarray]] = deque(maxlen=self.history)
        self._open: dict[int | None, tuple[int, FrameInfo]] = {}

    @property
    def history(self) -> int:
        """Frames kept for explanations: a started event's windows reach this far back, and an
        event starts at most this many frames before the frame that announces it."""
        return 3 * self.plan.span + self.plan.stride + self.config.smooth + self.config.min_frames

    # ------------------------------------------------------------------------- feeding
    def push(self, frame: np.ndarray, info: FrameInfo) -> list[Alert]:
        """Feed one uint8 RGB frame ``(H, W, 3)``; returns the alerts it caused."""
        return self.push_many([frame], [info])

    def push_many(self, frames: Sequence[np.ndarray], infos: Sequence[FrameInfo]) -> list[Alert]:
        """Feed frames in order (the CNN runs on them as one batch)."""
        self._compute_features(self.stage(frames, infos))
        return self.settle()

    def stage(self, frames: Sequence[np.ndarray], infos: Sequence[FrameInfo]) -> list[int]:
        """The first half of :meth:`push_many`, for an engine that runs one CNN batch over
        several streams (:class:`vadx.console.engine.CameraHub`): take the frames in order and
        return the indices of those whose features the windows need. Give them with
        :meth:`take_features` (the CNN's input is :meth:`cnn_input`), then :meth:`settle`."""
        if len(frames) != len(infos):
            raise InputError(f"{len(frames)} frames but {len(infos)} frame infos")
        if not frames:
            return []
        size = self.model.config.frame_size
        fitted, _, _ = fit_frames(np.stack(frames), size, self.model.config.fit)
        wanted = []
        for frame, small, info in zip(frames, fitted, infos, strict=True):
            index = self.received
            self.received += 1
            self.infos[index] = info
            self.fitted[index] = small
            if self.keep_clips:
                self.recent[index] = frame
            if self.plan.needed(index):
                wanted.append(index)
        return wanted

    def cnn_input(self, indices: Sequence[int]) -> torch.Tensor:
        """The staged frames ``indices`` as the CNN takes them: ``(N, 3, H, W)``, normalised."""
        frames = np.stack([self.fitted[i] for i in indices])
        return frames_to_clip(frames, self.model.config.mean, self.model.config.std)

    def take_features(self, indices: Sequence[int], rows: torch.Tensor) -> None:
        """The CNN's features ``(N, F)`` of the staged frames ``indices``."""
        if len(indices) != len(rows):
            raise InputError(f"{len(rows)} feature rows for {len(indices)} frames")
        self.features.update(zip(indices, rows, strict=True))
        if self.domain is not None:
            distances = self.domain.frame_distances(rows.cpu()).tolist()
            self.distances.update(zip(indices, distances, strict=True))
        self.cnn_frames += len(indices)

    def settle(self) -> list[Alert]:
        """The second half of :meth:`push_many`: decide the windows the staged frames
        complete (their features given) and return the alerts they cause."""
        starts = []
        while self.next_start + self.plan.span <= self.received:
            starts.append(self.next_start)
            self.next_start += self.plan.stride
        self._decide(starts)
        final = min(self.next_start, self.received - self.plan.span)
        alerts = self._advance(final, ended=None)
        self._forget(final)
        return alerts

    def end_segment(self, reason: str = "stream ended") -> list[Alert]:
        """The stream ended or broke: decide the last window, end open events (``reason``
        says why), start afresh."""
        alerts: list[Alert] = []
        span = self.plan.span
        if self.received >= span:
            tail = self.received - span
            if self.next_start - self.plan.stride + span < self.received:  # end not covered
                self._compute_features(
                    [int(i) for i in self.plan.indices(tail) if int(i) not in self.features]
                )
                self._decide([tail])
            alerts += self._advance(self.received, ended=reason)
        self._new_segment()
        return alerts

    # ------------------------------------------------------------------------- internals
    def _compute_features(self, indices: list[int]) -> None:
        batch = self.config.batch_size
        for first in range(0, len(indices), batch):
            chunk = indices[first : first + batch]
            with eval_mode(self.model), torch.no_grad():
                rows = self.model.frame_features(self.cnn_input(chunk)[None].to(self.device))[0]
            self.take_features(chunk, rows)

    def _decide(self, starts: list[int]) -> None:
        if not starts:
            return
        features = torch.stack(
            [torch.stack([self.features[int(i)] for i in self.plan.indices(s)]) for s in starts]
        )
        with eval_mode(self.model), torch.no_grad():
            probabilities = self.model.forward_features(features).softmax(-1).cpu().numpy()
        decided = time.monotonic()
        probabilities = probabilities.astype(np.float64)
        scores = anomaly_score(probabilities, self.class_names, self.normal_class)
        for start, row, score in zip(starts, probabilities, scores.tolist(), strict=True):
            domain = self._domain_score(start)
            self.tracker.add_window(start, row, domain)
            self.window_rows.append((start, row))
            end = start + self.plan.span - 1
            decision = Decision(
                self.windows_decided,
                self.infos[start],
                self.infos[end],
                row,
                score,
                decided,
                domain,
            )
            self.windows_decided += 1
            self.latest = score
            if self.on_decision is not None:
                self.on_decision(decision)

    def _domain_score(self, start: int) -> float | None:
        if self.domain is None:
            return None
        distance = np.mean([self.distances[int(i)] for i in self.plan.indices(start)])
        return float(self.domain.scores(distance))

    def _advance(self, final: int, ended: str | None) -> list[Alert]:
        alerts = []
        for column, update in self.tracker.advance(final, ended is not None):
            alert = self._alert(column, update, ended)
            alerts.append(alert)
            if self.on_alert is not None:
                self.on_alert(alert)
        return alerts

    def _alert(self, track: int | None, update: EventUpdate, ended: str | None) -> Alert:
        """The update as an :class:`Alert`: source frame numbers, clock times, an id."""
        event = update.event
        if update.kind == "started":
            self.alerts += 1
            self._open[track] = (next(self.ids), self.infos[event.start_frame])
        number, first = self._open[track]
        last = self.infos[event.end_frame]
        reason = None
        if update.kind == "ended":
            del self._open[track]
            closed_by_end = ended is not None and event.end_frame == self.received - 1
            reason = ended if closed_by_end else "score"
        alert = Alert(
            number,
            update.kind,
            replace(event, start_frame=first.number, end_frame=last.number),
            first.wall,
            last.wall,
            last.session,
            reason,
            signal=self.signal,
        )
        if update.kind == "started" and self.keep_clips:
            alert = self._with_window(alert, event)
        return alert

    def _with_window(self, alert: Alert, event: Event) -> Alert:
        """``alert`` with the kept window overlapping ``event`` (segment indices) most
        probable for its class."""
        column = self.class_names.index(event.class_name)
        best = None
        for start, row in self.window_rows:
            indices = [int(i) for i in self.plan.indices(start)]
            if not all(i in self.recent for i in indices):
                continue
            if indices[0] > event.end_frame or indices[-1] < event.start_frame:
                continue
            if best is None or row[column] > best[0]:
                best = (row[column], indices)
        if best is None:
            return alert
        infos = [self.infos[i] for i in best[1]]
        elapsed = infos[-1].time - infos[0].time
        fps = (len(infos) - 1) / elapsed if elapsed > 0 else 25.0 / self.plan.step
        return replace(
            alert,
            window=np.stack([self.recent[i] for i in best[1]]),
            window_frames=tuple(i.number for i in infos),
            window_times=tuple(i.time for i in infos),
            window_fps=fps,
        )

    def _forget(self, final: int) -> None:
        """Drop what no window, smoothing or explanation will use again (the last span
        stays for the segment's last window)."""
        features_from = min(final, self.received - self.plan.span)
        for index in [i for i in self.features if i < features_from]:
            del self.features[index]
            self.distances.pop(index, None)
        for index in [i for i in self.fitted if i < features_from]:
            del self.fitted[index]
        history = self.received - self.history
        for store in (self.infos, self.recent):
            for index in [i for i in store if i < history]:
                del store[index]
