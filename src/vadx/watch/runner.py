"""``vadx watch``: a source watched until it ends or is stopped, everything written as it happens.

Threads: capture (:class:`~vadx.watch.capture.Capture`) → bounded queue → this loop
(:class:`~vadx.watch.engine.StreamDetector`, the event log, the live view) → the alert
explainer and the webhook in their own threads. A reconnection of the source ends the
detector's segment (open events end with reason ``"source reconnected"``); stopping (SIGINT,
SIGTERM, ``stop.set()``) processes the frames already captured, ends open events with reason
``"stopped"``, finishes the queued explanations and webhook calls and closes every file.

Files in ``out``: ``events.jsonl`` (records ``started``, ``ended``, ``explained``),
``events.sqlite`` (``sqlite=True``), ``alerts/event-NNNNNN/``, ``metrics.json`` (refreshed
every ``metrics_every`` s), ``summary.json`` (at the end), the annotated MP4 when asked.

With a camera's normal (a normality model, ``vadx learn-normal``) as the model or ``normal``
beside a classifier, each of its alerts keeps its maps: ``alerts/event-NNNNNN/map.mp4`` (the
event's first frames with the anomaly map over them) and ``map.png`` (its most unusual frame),
recorded as ``explained``. Beside a classifier, both detectors read the same frames; their
events share one numbering, and each record says its ``signal``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vadx._version import __version__
from vadx.detect import DetectConfig
from vadx.errors import InputError
from vadx.explanations.clip import ExplainSettings
from vadx.files import staged_folder, write_json
from vadx.models.crnn import CRNN
from vadx.normality import NormalityModel, calibrated_config
from vadx.render.overlay import class_label
from vadx.video.live import LiveSource
from vadx.watch.alerts import (
    ALERT_LAYOUT,
    ALERT_SETTINGS,
    AlertExplainer,
    ExplainerStats,
    alert_verdict,
)
from vadx.watch.capture import Capture, FrameQueue
from vadx.watch.engine import Alert, Decision, FrameInfo, StreamDetector
from vadx.watch.metrics import LiveMetrics, MetricsSnapshot, percentiles_ms
from vadx.watch.output import LiveView, MjpegServer
from vadx.watch.sinks import (
    EventLog,
    EventRecord,
    ExplainedRecord,
    LogRecord,
    Webhook,
    WebhookStats,
    event_record,
)
from vadx.watch.unusual import UnusualStream, write_maps


@dataclass(frozen=True, slots=True)
class WatchMetrics:
    """A watch's live metrics (:meth:`Watch.snapshot`): the counters' snapshot, the CNN's
    frames, the open events, the source's reconnections and last error; the explanations'
    counts, the webhook's and how late a paced capture released frames when they apply."""

    live: MetricsSnapshot
    cnn_frames: int
    open_events: list[int]
    reconnections: int
    source_error: str | None
    #: (done, skipped, failed) explanations; None: the watch explains nothing
    explanations: tuple[int, int, int] | None = None
    webhook: WebhookStats | None = None
    capture_late_ms: dict[str, float | None] | None = None

    def to_json(self) -> dict[str, Any]:
        """The metrics as ``metrics.json`` and ``/metrics`` hold them."""
        live = self.live
        document: dict[str, Any] = {
            "uptime_s": live.uptime_s,
            "capture_fps": live.capture_fps,
            "processed_fps": live.processed_fps,
            "frames_captured": live.frames_captured,
            "frames_processed": live.frames_processed,
            "frames_dropped": live.frames_dropped,
            "queue_depth": live.queue_depth,
            "windows": live.windows,
            "domain": None if live.domain is None else asdict(live.domain),
            "latency_ms": live.latency_ms,
            "cnn_frames": self.cnn_frames,
            "open_events": self.open_events,
            "reconnections": self.reconnections,
            "source_error": self.source_error,
        }
        if self.explanations is not None:
            done, skipped, failed = self.explanations
            document["explanations"] = {"done": done, "skipped": skipped, "failed": failed}
        if self.webhook is not None:
            document["webhook"] = asdict(self.webhook)
        if self.capture_late_ms is not None:
            document["capture_late_ms"] = self.capture_late_ms
        return document


@dataclass(frozen=True, slots=True)
class WatchSummary:
    """What a watch did (``summary.json``): its source, model and settings, why it ended and
    after how long, the source's last error, the final metrics and the events that ended."""

    source: str
    model: str | None
    vadx_version: str
    ended: str
    seconds: float
    source_error: str | None
    #: the detection's settings (:attr:`~vadx.watch.engine.StreamDetector.settings`)
    settings: dict[str, int | float | bool]
    metrics: WatchMetrics
    events: list[EventRecord]


MetricsFn = Callable[[WatchMetrics], None]


@dataclass(frozen=True)
class WatchConfig:
    """Settings of :func:`watch`.

    Attributes:
        detect: windows, smoothing and thresholds — the same as ``vadx detect``.
        queue_size: frames the capture queue holds; a live source drops its oldest beyond.
        batch: most frames taken from the queue for one CNN batch.
        pace: read a file at its frame rate (like a camera) instead of as fast as possible.
        max_retries: consecutive failed (re)connections before giving up (None: never).
        backoff: first and largest delay between reconnections, seconds.
        open_timeout, read_timeout: seconds to wait for a network source.
        explain: explain each alert's window (``explain_settings``; ``explain_mp4`` adds
            videos).
        annotate: write the annotated frames to this MP4 file.
        mjpeg: serve the live view and metrics over HTTP on ``(host, port)``.
        webhook: POST each event record (JSON) to this URL; ``webhook_token`` as a bearer;
            ``webhook_retries`` more tries for a failed POST (0.5 s, 1 s, 2 s … apart).
        sqlite: also keep the events in ``events.sqlite``.
        metrics_every: seconds between metrics lines and ``metrics.json`` refreshes.
        max_frames, duration: stop after this many frames or seconds (None: run on).
    """

    detect: DetectConfig = field(default_factory=DetectConfig)
    queue_size: int = 64
    batch: int = 16
    pace: bool = False
    max_retries: int | None = None
    backoff: tuple[float, float] = (0.5, 30.0)
    open_timeout: float = 10.0
    read_timeout: float = 5.0
    explain: bool = True
    explain_settings: ExplainSettings = ALERT_SETTINGS
    explain_mp4: bool = False
    annotate: Path | None = None
    mjpeg: tuple[str, int] | None = None
    webhook: str | None = None
    webhook_token: str | None = None
    webhook_retries: int = 3
    sqlite: bool = False
    metrics_every: float = 5.0
    max_frames: int | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.queue_size < 1 or self.batch < 1:
            raise InputError("queue size and batch must be at least 1")
        if self.max_retries is not None and self.max_retries < 0:
            raise InputError(f"max retries must be ≥ 0 or unlimited, got {self.max_retries}")
        if self.metrics_every <= 0:
            raise InputError(f"metrics interval must be positive, got {self.metrics_every}")
        if self.max_frames is not None and self.max_frames < 1:
            raise InputError(f"max frames must be at least 1, got {self.max_frames}")
        if self.duration is not None and self.duration <= 0:
            raise InputError(f"duration must be positive, got {self.duration}")
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise InputError(f"the webhook must be an http(s):// URL, got {self.webhook!r}")


class Watch:
    """One run of :func:`watch` (exposed for tests and integrators that need its parts)."""

    def __init__(
        self,
        model: CRNN | NormalityModel,
        source: str | int,
        out: str | Path,
        config: WatchConfig | None = None,
        *,
        on_alert: Callable[[Alert, EventRecord], None] | None = None,
        on_metrics: MetricsFn | None = None,
        stop: threading.Event | None = None,
        normal: NormalityModel | None = None,
    ) -> None:
        if normal is not None and isinstance(model, NormalityModel):
            raise InputError(
                "the model is a normality model already: normal goes beside a classifier"
            )
        self.config = config = config or WatchConfig()
        self.out = Path(out)
        self.source = LiveSource(
            source, config.open_timeout, config.read_timeout, config.max_retries, config.backoff
        )
        self.on_alert, self.on_metrics = on_alert, on_metrics
        self.stop = stop or threading.Event()
        self.queue = FrameQueue(config.queue_size, drop_oldest=self.source.live or config.pace)
        self.capture = Capture(self.source, self.queue, config.pace)
        self.metrics = LiveMetrics()
        ids = itertools.count(1)  # one numbering for the events of both signals
        unusual = isinstance(model, NormalityModel)
        stream = UnusualStream if unusual else StreamDetector
        self.detector = stream(
            model,  # type: ignore[arg-type]
            config.detect,
            on_alert=self._alert,
            on_decision=self._decision,
            keep_clips=config.explain or unusual,  # a normality alert keeps its maps
            ids=ids,
        )
        #: the camera's normal beside the classifier (None: none)
        self.beside = None
        if normal is not None:
            self.beside = UnusualStream(  # its calibrated settings: detect is the classifier's
                normal, calibrated_config(normal), on_alert=self._alert, keep_clips=True, ids=ids
            )
        self.log = EventLog(self.out, config.sqlite)
        self._log_lock = threading.Lock()
        self.webhook = None
        if config.webhook:
            self.webhook = Webhook(
                config.webhook, attempts=1 + config.webhook_retries, token=config.webhook_token
            )
        self.view = LiveView(config.annotate) if (config.annotate or config.mjpeg) else None
        self.server = None
        if config.mjpeg is not None:
            assert self.view is not None
            self.server = MjpegServer(self.view, lambda: self.snapshot().to_json(), *config.mjpeg)
        # last: a worker process, once everything that can refuse to start has started
        self.explainer: AlertExplainer | None = None
        if config.explain and isinstance(model, CRNN):  # a normality model's maps explain
            self.explainer = AlertExplainer(
                model,
                self.out,
                config.explain_settings,
                mp4=config.explain_mp4,
                done=self._explained,
            )
        self.records: list[LogRecord] = []
        self._windows: dict[int, tuple[int, ...]] = {}  # open event → its explained window
        self._latest: Decision | None = None
        self._open: dict[int, str] = {}  # open event → its class
        self.model_id = model.model_id

    @property
    def detectors(self) -> list[StreamDetector]:
        """The model's detector, and the normal's beside it."""
        return [self.detector] if self.beside is None else [self.detector, self.beside]

    # ------------------------------------------------------------------------ callbacks
    def _decision(self, decision: Decision) -> None:
        self._latest = decision
        self.metrics.decision(decision.latency, decision.domain_score)

    def _alert(self, alert: Alert) -> None:
        number = self.log.first_id + alert.id - 1
        if alert.kind == "started":
            self._open[number] = alert.event.class_name
            self._windows[number] = alert.window_frames
            window = alert.window_frames
        else:
            self._open.pop(number, None)
            window = self._windows.pop(number, ())
        record = event_record(alert, number, (window[0], window[-1]) if window else None)
        self._write(record)
        if self.webhook is not None:
            self.webhook.submit(record)
        if alert.kind == "started" and alert.signal == "normality":
            self._keep_maps(number, alert, record)
        elif alert.kind == "started" and self.explainer is not None:
            self.explainer.submit(number, alert, record)
        if self.on_alert is not None:
            self.on_alert(alert, record)

    def _keep_maps(self, number: int, alert: Alert, record: EventRecord) -> None:
        """A normality alert's maps over its first frames (module doc), as its explanation."""
        if alert.window is None or alert.window_maps is None:
            return
        model = self.beside.model if self.beside is not None else self.detector.model
        folder = self.out / ALERT_LAYOUT.format(number=number)
        with staged_folder(folder) as staging:
            write_maps(staging, model, list(alert.window), alert.window_maps, alert.window_fps)  # type: ignore[arg-type]
        done = ExplainedRecord(number, record.class_name, str(folder.relative_to(self.out)))
        self._write(done)
        if self.webhook is not None:
            self.webhook.submit(done)

    def _explained(self, number: int, folder: Path, record: EventRecord) -> None:
        trust = alert_verdict(folder) if self.config.explain_settings.trust else None
        done = ExplainedRecord(
            number, record.class_name, str(folder.relative_to(self.out)), trust=trust
        )
        self._write(done)
        if self.webhook is not None:
            self.webhook.submit(done)

    def _write(self, record: LogRecord) -> None:
        with self._log_lock:
            self.log.write(record)
            self.records.append(record)

    def snapshot(self) -> WatchMetrics:
        """The live metrics now (also served at ``/metrics``)."""
        queue = self.queue.stats
        live = self.metrics.snapshot(queue.put, queue.dropped, len(self.queue))
        explained: ExplainerStats | None = None if self.explainer is None else self.explainer.stats
        return WatchMetrics(
            live=live,
            cnn_frames=sum(d.cnn_frames for d in self.detectors),
            open_events=sorted(self._open),
            reconnections=max(0, self.source.stats.connections - 1),
            source_error=self.source.stats.last_error,
            explanations=None
            if explained is None
            else (explained.explained, explained.skipped, explained.failed),
            webhook=None if self.webhook is None else replace(self.webhook.stats),
            # how late the capture thread released frames (a camera's clock)
            capture_late_ms=percentiles_ms(self.capture.late) if self.config.pace else None,
        )

    # ------------------------------------------------------------------------ the loop
    def run(self) -> WatchSummary:
        """Watch until the source ends, fails for good, or :attr:`stop` is set."""
        config = self.config
        began = time.monotonic()
        if self.server is not None:
            self.server.start()
        if self.explainer is not None:  # loading it competes for the CPU: before capture
            self.explainer.wait_ready()
        self.capture.start()
        session, processed, next_report = 0, 0, began + config.metrics_every
        ended = "source ended"
        try:
            while True:
                if self.stop.is_set() and self.capture.thread.is_alive():
                    self.capture.close()
                    ended = "stopped"
                batch = self.queue.get_many(config.batch, timeout=0.2)
                if batch is None:
                    break
                if config.max_frames is not None:
                    batch = batch[: max(0, config.max_frames - processed)]
                for first, last in _sessions(batch):
                    if batch[first].session != session:
                        for detector in self.detectors:
                            detector.end_segment("source reconnected")
                        session = batch[first].session
                    self._process(batch[first:last])
                processed += len(batch)
                if (config.max_frames is not None and processed >= config.max_frames) or (
                    config.duration is not None and time.monotonic() - began >= config.duration
                ):
                    self.stop.set()
                if time.monotonic() >= next_report:
                    self._report()
                    next_report = time.monotonic() + config.metrics_every
        finally:
            self.capture.close()
            if self.capture.error is not None:
                ended = f"source failed: {self.capture.error}"
            for detector in self.detectors:
                detector.end_segment("stopped" if ended == "stopped" else "stream ended")
            self._close()
        return self._summary(ended, time.monotonic() - began)

    def _process(self, frames: list) -> None:
        infos = [
            FrameInfo(
                f.number,
                f.time,
                f.captured,
                time.time() - (time.monotonic() - f.captured),
                f.session,
            )
            for f in frames
        ]
        self.detector.push_many([f.data for f in frames], infos)
        if self.beside is not None:
            self.beside.push_many([f.data for f in frames], infos)
        self.metrics.frames_done(len(frames))
        if self.view is not None:
            text = self._label()
            for frame in frames:
                self.view.show(frame.data, frame.time, text, bool(self._open))

    def _label(self) -> str:
        """The live view's label: the open event's class, else the latest window's best."""
        if self._latest is None:
            return "Starting: first window"
        names = self.detector.class_names
        row = self._latest.probabilities
        best = next(reversed(self._open.values()), None) or names[int(row.argmax())]
        text = class_label(best, float(row[names.index(best)]))
        unfamiliar = self._latest.domain_score is not None and self._latest.domain_score > 1
        return f"{text} (unfamiliar scene)" if unfamiliar else text

    def _report(self) -> None:
        metrics = self.snapshot()
        write_json(self.out / "metrics.json", metrics.to_json())
        if self.on_metrics is not None:
            self.on_metrics(metrics)

    def _close(self) -> None:
        if self.explainer is not None:
            self.explainer.close()
        if self.webhook is not None:
            self.webhook.close()
        if self.view is not None:
            self.view.close()
        if self.server is not None:
            self.server.close()
        self.log.close()

    def _summary(self, ended: str, seconds: float) -> WatchSummary:
        metrics = self.snapshot()
        write_json(self.out / "metrics.json", metrics.to_json())
        summary = WatchSummary(
            source=str(self.source.source),
            model=self.model_id,
            vadx_version=__version__,
            ended=ended,
            seconds=round(seconds, 2),
            source_error=None if self.capture.error is None else str(self.capture.error),
            settings=self.detector.settings,
            metrics=metrics,
            events=[r for r in self.records if isinstance(r, EventRecord) and r.state == "ended"],
        )
        write_json(  # the summary as summary.json holds it
            self.out / "summary.json",
            {
                "source": summary.source,
                "model": summary.model,
                "vadx_version": summary.vadx_version,
                "ended": summary.ended,
                "seconds": summary.seconds,
                "source_error": summary.source_error,
                "settings": summary.settings,
                "metrics": summary.metrics.to_json(),
                "events": [event.to_json() for event in summary.events],
            },
        )
        return summary


def _sessions(batch: list) -> list[tuple[int, int]]:
    """``[first, last)`` ranges of the batch's frames from the same source session."""
    if not batch:
        return []
    cuts = [0] + [i for i in range(1, len(batch)) if batch[i].session != batch[i - 1].session]
    return list(zip(cuts, [*cuts[1:], len(batch)], strict=True))


def watch(
    model: CRNN | NormalityModel,
    source: str | int,
    out: str | Path,
    config: WatchConfig | None = None,
    *,
    stop: threading.Event | None = None,
    on_alert: Callable[[Alert, EventRecord], None] | None = None,
    on_metrics: MetricsFn | None = None,
    normal: NormalityModel | None = None,
) -> WatchSummary:
    """Watch ``source`` (a file, a camera index, or an rtsp/http(s)/tcp URL) with ``model``
    (and the camera's ``normal`` beside it) until it ends, fails for good or ``stop`` is set;
    returns (and writes) the summary."""
    return Watch(
        model,
        source,
        out,
        config,
        on_alert=on_alert,
        on_metrics=on_metrics,
        stop=stop,
        normal=normal,
    ).run()
