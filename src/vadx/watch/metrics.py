"""Live metrics of a watch: rates, latency, queue, drops — printed and served as JSON."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class DomainMetrics:
    """How many windows were outside the model's domain, and the latest window's score."""

    windows_outside: int
    latest_score: float


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """A watch's metrics at one moment: rates since the previous snapshot, totals since the
    start, the queue, and decision latencies (milliseconds: p50, p95, max)."""

    uptime_s: float
    capture_fps: float
    processed_fps: float
    frames_captured: int
    frames_processed: int
    frames_dropped: int
    queue_depth: int
    windows: int
    #: None: the model has no domain statistics (or no window was decided yet)
    domain: DomainMetrics | None
    latency_ms: dict[str, float | None]


class LiveMetrics:
    """Counters and recent latencies; :meth:`snapshot` gives rates since the previous call
    and totals since the start."""

    def __init__(self, window: int = 500) -> None:
        self.started = time.monotonic()
        self.processed = 0
        self.windows_decided = 0
        self.windows_outside = 0  # windows outside the model's domain
        self.domain_score: float | None = None  # the latest window's
        self.latencies: deque[float] = deque(maxlen=window)
        self._mark = (self.started, 0, 0)  # time, captured, processed at the last snapshot
        self._lock = threading.Lock()
        self.last: MetricsSnapshot | None = None

    def frames_done(self, count: int) -> None:
        with self._lock:
            self.processed += count

    def decision(self, latency: float, domain_score: float | None = None) -> None:
        with self._lock:
            self.windows_decided += 1
            self.latencies.append(latency)
            if domain_score is not None:
                self.domain_score = domain_score
                self.windows_outside += domain_score > 1

    def snapshot(self, captured: int, dropped: int, depth: int) -> MetricsSnapshot:
        """Metrics now (``captured``: frames the source delivered, ``dropped`` of them by the
        queue, ``depth``: frames waiting)."""
        now = time.monotonic()
        with self._lock:
            then, captured_then, processed_then = self._mark
            elapsed = max(now - then, 1e-9)
            self._mark = (now, captured, self.processed)
            self.last = MetricsSnapshot(
                uptime_s=round(now - self.started, 2),
                capture_fps=round((captured - captured_then) / elapsed, 2),
                processed_fps=round((self.processed - processed_then) / elapsed, 2),
                frames_captured=captured,
                frames_processed=self.processed,
                frames_dropped=dropped,
                queue_depth=depth,
                windows=self.windows_decided,
                domain=None
                if self.domain_score is None
                else DomainMetrics(self.windows_outside, round(self.domain_score, 3)),
                latency_ms=percentiles_ms(self.latencies),
            )
            return self.last


def percentiles_ms(seconds: Iterable[float]) -> dict[str, float | None]:
    """p50, p95 and max of durations in seconds, as milliseconds (None when there are none)."""
    values = np.array(list(seconds), dtype=np.float64)
    return {
        name: round(float(np.percentile(values, q)) * 1000, 1) if len(values) else None
        for name, q in (("p50", 50), ("p95", 95), ("max", 100))
    }
