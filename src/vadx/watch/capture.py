"""Capture in its own thread, into a bounded queue that never lets the reader fall behind.

For a live source (camera, network stream) the queue drops its **oldest** frame when it is
full — the detector always works on the most recent frames and every dropped frame is
counted. A file is read at full speed and the capture waits for room instead (nothing is
dropped), or, with ``pace=True``, at its own frame rate like a camera (then frames can drop).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, replace

from vadx.video.live import LiveFrame, LiveSource, SourceError


@dataclass
class QueueStats:
    """Frames put, dropped (oldest first) and the deepest the queue has been."""

    put: int = 0
    dropped: int = 0
    deepest: int = 0


class FrameQueue:
    """A bounded FIFO of frames; :meth:`put` drops the oldest or waits when it is full."""

    def __init__(self, size: int, drop_oldest: bool) -> None:
        if size < 1:
            raise ValueError(f"queue size must be at least 1, got {size}")
        self.size, self.drop_oldest = size, drop_oldest
        self.stats = QueueStats()
        self._items: deque[LiveFrame] = deque()
        self._ended = False
        self._changed = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, frame: LiveFrame, stop: threading.Event | None = None) -> None:
        with self._changed:
            while len(self._items) >= self.size:
                if self.drop_oldest:
                    self._items.popleft()
                    self.stats.dropped += 1
                elif stop is not None and stop.is_set():
                    return
                else:
                    self._changed.wait(0.1)
            self._items.append(frame)
            self.stats.put += 1
            self.stats.deepest = max(self.stats.deepest, len(self._items))
            self._changed.notify_all()

    def end(self) -> None:
        """No more frames will come; :meth:`get_many` returns what is left, then ``None``."""
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def get_many(self, most: int, timeout: float) -> list[LiveFrame] | None:
        """Up to ``most`` frames (waiting up to ``timeout`` s for one); ``None`` once ended and
        empty."""
        with self._changed:
            if not self._items and not self._ended:
                self._changed.wait(timeout)
            if not self._items:
                return None if self._ended else []
            batch = [self._items.popleft() for _ in range(min(most, len(self._items)))]
            self._changed.notify_all()
            return batch


class Capture:
    """Reads ``source`` in a daemon thread into ``queue`` until it ends, fails or is stopped.

    ``error`` holds the :class:`SourceError` that ended it, if any. With ``pace``, frames are
    released at the times their timestamps say (a file played like a camera).
    """

    def __init__(self, source: LiveSource, queue: FrameQueue, pace: bool = False) -> None:
        self.source, self.queue, self.pace = source, queue, pace
        self.error: SourceError | None = None
        self.late: deque[float] = deque(maxlen=1000)  # paced: seconds each frame came late
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="vadx-capture", daemon=True)

    def start(self) -> Capture:
        self.thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop reading (the current read finishes first) and wait for the thread."""
        self.stop.set()
        self.source.close()
        self.thread.join(timeout)

    def _run(self) -> None:
        clock: tuple[int, float, float] | None = None  # session, its first frame's time, wall
        try:
            for frame in self.source.frames():
                if self.pace:
                    if clock is None or clock[0] != frame.session:
                        clock = (frame.session, frame.time, time.monotonic())
                    due = clock[2] + (frame.time - clock[1])
                    if due > time.monotonic():
                        self.stop.wait(due - time.monotonic())
                    self.late.append(max(0.0, time.monotonic() - due))
                    frame = replace(frame, captured=time.monotonic())  # released like a camera
                if self.stop.is_set():
                    break
                self.queue.put(frame, self.stop)
        except SourceError as err:
            self.error = err
        finally:
            self.queue.end()
