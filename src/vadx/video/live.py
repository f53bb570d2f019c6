"""Live sources: webcams, ``rtsp://``, ``http(s)://``, ``tcp://`` (and files, read as a stream).

:class:`LiveSource` yields frames as they arrive. Network sources open and read under timeouts
(a stalled camera never hangs the caller) and reconnect with exponential back-off when the
stream fails or ends; after ``max_retries`` consecutive failed attempts a :class:`SourceError`
says what happened. Files end at their end (no reconnect). The stream engine (``vadx watch``)
runs this in a capture thread and drops the oldest frames when inference lags.

>>> source = LiveSource("rtsp://camera.local/stream", max_retries=None)   # doctest: +SKIP
>>> for frame in source.frames():                                         # doctest: +SKIP
...     handle(frame.data)
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import av
import numpy as np

from vadx.video.decode import VideoError, VideoReader, frame_to_rgb

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https", "tcp", "udp", "srt"})


class SourceError(VideoError):
    """A live source cannot be opened or keeps failing; the message says which and why."""


@dataclass(frozen=True)
class LiveFrame:
    """A frame from a live source.

    Attributes:
        number: frames delivered since the source was opened (across reconnections).
        captured: ``time.monotonic()`` when the frame was received (for latency).
        data: uint8 RGB ``(H, W, 3)``.
        session: how many (re)connections preceded this frame (0 for the first).
        time: seconds since the session's first frame, from the stream's timestamps (like
            :attr:`VideoReader.timestamps`); from the capture clock for cameras.
    """

    number: int
    captured: float
    data: np.ndarray
    session: int
    time: float = 0.0


@dataclass
class SourceStats:
    """What happened so far: frames delivered, (re)connections, the last error."""

    frames: int = 0
    connections: int = 0
    failures: int = 0
    last_error: str | None = None
    delays: list[float] = field(default_factory=list)


def is_live(source: str | int) -> bool:
    """Whether ``source`` is a camera index or a network URL (as opposed to a file)."""
    if isinstance(source, int) or str(source).isdigit():
        return True
    return urlparse(str(source)).scheme.lower() in NETWORK_SCHEMES


class LiveSource:
    """Frames from a camera, a network stream or a file, with timeouts and reconnection.

    Args:
        source: a webcam index (``0``), a URL (``rtsp://…``, ``http://…``, ``tcp://host:port``)
            or a file path.
        open_timeout, read_timeout: seconds to wait for the stream to open and for each read.
        max_retries: consecutive failed attempts before giving up (None: never give up).
        backoff: first and largest delay between attempts, seconds; doubles each failure and
            resets after a frame arrives.
        options: FFmpeg options (e.g. ``{"rtsp_transport": "tcp"}``, the default for RTSP).
        loop: a file starts again at its end, as a new session (as after a reconnection).
    """

    def __init__(
        self,
        source: str | int,
        open_timeout: float = 10.0,
        read_timeout: float = 5.0,
        max_retries: int | None = 5,
        backoff: tuple[float, float] = (0.5, 30.0),
        options: dict[str, str] | None = None,
        sleep: Callable[[float], object] | None = None,
        loop: bool = False,
    ) -> None:
        self.source = source
        self.loop = loop
        self.live = is_live(source)
        if not self.live and not Path(str(source)).exists():
            raise SourceError(f"video not found: {source}")
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.options = dict(options or {})
        if str(source).lower().startswith("rtsp"):
            self.options.setdefault("rtsp_transport", "tcp")
        self._closing = threading.Event()
        #: waits between attempts (default: until the delay passes or :meth:`close` is called)
        self.sleep = sleep or self._closing.wait
        self.stats = SourceStats()
        self._closed = False

    def close(self) -> None:
        """Stop after the current read, or at once while waiting to reconnect (safe from
        another thread)."""
        self._closed = True
        self._closing.set()

    def frames(self) -> Iterator[LiveFrame]:
        """Yield frames until the file ends, :meth:`close` is called, or retries run out."""
        failures = 0
        while not self._closed:
            try:
                for data, seconds in self._session():
                    failures = 0
                    self.stats.frames += 1
                    session = self.stats.connections - 1
                    yield LiveFrame(self.stats.frames - 1, time.monotonic(), data, session, seconds)
                    if self._closed:
                        return
            except (SourceError, av.error.FFmpegError, OSError) as err:
                if not self.live:
                    raise SourceError(f"{self.source}: {err}") from err
                error: Exception = err
            else:
                if not self.live and self.loop and self.stats.frames:
                    continue  # a looped file starts again: the next session
                if not self.live:
                    return  # a file ended
                error = SourceError(f"{self.source} ended")
            failures += 1
            self.stats.failures += 1
            self.stats.last_error = str(error)
            if self.max_retries is not None and failures > self.max_retries:
                raise SourceError(
                    f"{self.source} failed {failures} times in a row; last error: {error}"
                ) from error
            delay = min(self.backoff[0] * 2 ** (failures - 1), self.backoff[1])
            self.stats.delays.append(delay)
            if failures == 1:  # once per outage: the metrics count the attempts
                limit = "until stopped" if self.max_retries is None else f"{self.max_retries} times"
                warnings.warn(
                    f"{self.source}: {error}; retrying in {delay:g} s, then less and less often "
                    f"(at most every {self.backoff[1]:g} s), {limit}",
                    stacklevel=1,
                )
            self.sleep(delay)

    def _session(self) -> Iterator[tuple[np.ndarray, float]]:
        self.stats.connections += 1
        if isinstance(self.source, int) or str(self.source).isdigit():
            yield from self._camera(int(self.source))
            return
        if not self.live and Path(str(self.source)).is_dir():  # a folder of frames
            with VideoReader(self.source) as folder:
                for _, seconds, frame in folder:
                    yield frame, seconds
                    if self._closed:
                        return
            return
        try:
            container = av.open(
                str(self.source),
                options=self.options,
                timeout=(self.open_timeout, self.read_timeout),
            )
        except av.error.FFmpegError as err:
            raise SourceError(f"cannot open {self.source}: {err}") from err
        with container:
            if not container.streams.video:
                raise SourceError(f"{self.source} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            base = float(stream.time_base or 0)
            first: int | None = None
            for count, frame in enumerate(container.decode(stream)):
                if frame.pts is None or not base:
                    seconds = count / float(stream.average_rate or 25)
                else:
                    first = frame.pts if first is None else first
                    seconds = (frame.pts - first) * base
                yield frame_to_rgb(frame), seconds
                if self._closed:
                    return

    def _camera(self, index: int) -> Iterator[tuple[np.ndarray, float]]:
        import cv2

        capture = cv2.VideoCapture(index)
        try:
            if not capture.isOpened():
                raise SourceError(f"cannot open camera {index}: no such device or it is busy")
            opened = time.monotonic()
            while not self._closed:
                grabbed, frame = capture.read()
                if not grabbed:
                    raise SourceError(f"camera {index} stopped delivering frames")
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), time.monotonic() - opened
        finally:
            capture.release()
