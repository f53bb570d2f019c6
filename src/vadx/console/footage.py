"""The footage around a camera's events: :class:`FootageRecorder`, one per camera.

As Frigate's ``pre_capture`` / ``post_capture``, an event's clip runs from ``pre_capture``
seconds before the event starts to ``post_capture`` seconds after it ends, never longer than
``max_seconds`` (:class:`~vadx.console.cameras.FootageSettings`). The frames are those the engine
analysed, at their analysed size (a live camera's dropped frames are not in it), each with its
number and times.

* A **ring buffer** holds the recent frames: the newest, the ``lag`` frames before it (an
  event is announced at most that many frames after its first one) and the ``pre_capture``
  seconds before those.
* When an event **starts**, its clip takes the ring's frames from ``pre_capture`` seconds before
  the event's first frame, then every frame that follows.
* When it **ends**, its clip keeps collecting the ``post_capture`` seconds after its last frame,
  then is handed over (:class:`EventFootage`). A clip that reaches ``max_seconds`` is handed over
  at once, cut there. When the stream ends, breaks or is stopped, :meth:`FootageRecorder.flush`
  hands over every clip with what it has.

Memory stays bounded: frames are shared, not copied (the detector holds the same arrays); the
ring holds at most ``lag + 1 + pre_capture × r`` frames and each clip at most
``max_seconds × r``, ``r`` the analysed frame rate, taken as at most :data:`MOST_FPS` (a stream
whose clock stalls cannot make them grow). Every clip's frames lie within the last
``max_seconds``, so a camera holds at most ``lag + 1 + max_seconds × r`` frames of
``H × W × 3`` bytes however many events overlap.

>>> recorder = FootageRecorder(FootageSettings(pre_capture=1, post_capture=1), lag=40)
>>> ring = [KeptFrame(np.zeros((2, 2, 3), np.uint8), FrameInfo(n, n / 25, 0.0, 0.0)) for n in
...         range(100)]
>>> recorder.add(ring)
[]
>>> len(recorder.ring)         # the newest frame, the 40 before it and the second before those
66
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from vadx.console.cameras import FootageSettings
from vadx.watch.engine import Alert, FrameInfo

#: frames per second of footage kept at most (a clock that stalls cannot grow a clip forever)
MOST_FPS = 60.0
#: seconds by which two frame times may differ and still count as equal (float rounding)
TOLERANCE = 1e-6


@dataclass(frozen=True)
class KeptFrame:
    """A frame as analysed: uint8 RGB ``data`` ``(H, W, 3)``, where it came from, and its
    anomaly ``map`` ``(h, w)`` when a camera's normal watches it."""

    data: np.ndarray
    info: FrameInfo
    map: np.ndarray | None = None


@dataclass(frozen=True)
class EventFootage:
    """The footage kept around one event.

    Attributes:
        alert_id: the event's id in the camera's engine (:attr:`~vadx.watch.engine.Alert.id`).
        frames: in order, from ``pre_capture`` seconds before the event to ``post_capture``
            seconds after it (less where the stream had less, or ``max_seconds`` cut it).
        cut: why it ends where it ends: ``"post_capture"`` (all there), ``"max_seconds"``, or
            why the stream stopped (``"stream ended"``, ``"source reconnected"``, …).
    """

    alert_id: int
    frames: tuple[KeptFrame, ...]
    cut: str

    @property
    def numbers(self) -> tuple[int, int]:
        """The source numbers of its first and last frames."""
        return self.frames[0].info.number, self.frames[-1].info.number

    @property
    def times(self) -> tuple[float, float]:
        """The stream times (the session's seconds) of its first and last frames."""
        return self.frames[0].info.time, self.frames[-1].info.time

    @property
    def fps(self) -> float:
        """Its frames' mean rate (25 for a single frame)."""
        elapsed = self.times[1] - self.times[0]
        return (len(self.frames) - 1) / elapsed if elapsed > 0 else 25.0


@dataclass
class _Pending:
    """A clip still collecting: its event's end time once it ended."""

    alert_id: int
    frames: list[KeptFrame]
    end_time: float | None = None
    cut: str | None = field(default=None)


class FootageRecorder:
    """A camera's ring buffer and its events' clips in the making (module doc).

    Args:
        settings: the camera's :class:`~vadx.console.cameras.FootageSettings`.
        lag: the most frames between an event's first frame and the newest frame analysed
            when it is announced (the detector's history plus the frames of one round).
    """

    def __init__(self, settings: FootageSettings, lag: int) -> None:
        self.settings = settings
        self.lag = lag
        self.ring: deque[KeptFrame] = deque(
            maxlen=lag + 1 + math.ceil(settings.pre_capture * MOST_FPS)
        )
        self.most_frames = math.ceil(settings.max_seconds * MOST_FPS)
        self._pending: dict[int, _Pending] = {}

    @property
    def frames_held(self) -> int:
        """Distinct frames the ring and the clips in the making hold."""
        held = {id(f.data) for f in self.ring}
        for pending in self._pending.values():
            held.update(id(f.data) for f in pending.frames)
        return len(held)

    def add(self, frames: list[KeptFrame]) -> list[EventFootage]:
        """Frames just analysed, in order; returns the clips they complete."""
        done = []
        for frame in frames:
            self.ring.append(frame)
            for pending in list(self._pending.values()):
                if self._take(pending, frame):
                    done.append(self._hand_over(pending))
        self._trim_ring()
        return done

    def started(self, alert: Alert) -> list[EventFootage]:
        """An event started: its clip begins ``pre_capture`` seconds before its first frame
        (returned at once only if that already fills ``max_seconds``)."""
        since = alert.event.start_time - self.settings.pre_capture - TOLERANCE
        pending = _Pending(alert.id, [])
        self._pending[alert.id] = pending
        for frame in self.ring:
            if frame.info.time >= since and self._take(pending, frame):
                return [self._hand_over(pending)]
        return []

    def ended(self, alert: Alert) -> list[EventFootage]:
        """An event ended: its clip keeps ``post_capture`` seconds more (returned once they
        are there: at once if the frames analysed already reach that far)."""
        pending = self._pending.get(alert.id)
        if pending is None:  # already cut at max_seconds
            return []
        pending.end_time = alert.event.end_time
        last = pending.end_time + self.settings.post_capture
        pending.frames = [f for f in pending.frames if f.info.time <= last + TOLERANCE]
        if pending.frames and pending.frames[-1].info.time >= last - TOLERANCE:
            pending.cut = "post_capture"
            return [self._hand_over(pending)]
        return []

    def flush(self, reason: str) -> list[EventFootage]:
        """The stream ended, broke or was stopped (``reason``): every clip with what it has;
        the ring starts afresh (frames of another session are no pre-roll)."""
        for pending in self._pending.values():
            pending.cut = pending.cut or reason
        done = [self._hand_over(p) for p in list(self._pending.values())]
        self.ring.clear()
        return done

    def _take(self, pending: _Pending, frame: KeptFrame) -> bool:
        """Add ``frame`` to ``pending`` if it belongs there; whether the clip is complete."""
        frames, time = pending.frames, frame.info.time
        if frames and (
            len(frames) >= self.most_frames
            or time - frames[0].info.time >= self.settings.max_seconds - TOLERANCE
        ):
            pending.cut = "max_seconds"
            return True
        if pending.end_time is None:
            frames.append(frame)
            return False
        last = pending.end_time + self.settings.post_capture
        if time <= last + TOLERANCE:
            frames.append(frame)
        if time >= last - TOLERANCE:
            pending.cut = "post_capture"
            return True
        return False

    def _hand_over(self, pending: _Pending) -> EventFootage:
        del self._pending[pending.alert_id]
        return EventFootage(pending.alert_id, tuple(pending.frames), pending.cut or "")

    def _trim_ring(self) -> None:
        """Keep the newest frame, the ``lag`` before it and the ``pre_capture`` seconds before
        those."""
        if len(self.ring) <= self.lag + 1:
            return
        since = self.ring[-self.lag - 1].info.time - self.settings.pre_capture - TOLERANCE
        while len(self.ring) > self.lag + 1 and self.ring[0].info.time < since:
            self.ring.popleft()
