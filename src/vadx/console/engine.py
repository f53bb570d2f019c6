"""One analysis engine for every camera of a site: :class:`CameraHub`.

Each camera has its own capture thread (:class:`~vadx.watch.capture.Capture`) filling its own
bounded queue: a live camera's queue drops its **oldest** frames when analysis lags, and
counts them, so a slow or dead camera never holds up another. One analysis thread takes the
waiting frames of every camera in turn (at most ``batch_size`` from each per round), and
runs the CNN **once per model over the frames of every camera** that model watches (in calls
of ``batch_size`` frames): cameras that name the same checkpoint share one copy of it. Each
camera keeps its own windows, recurrent pass and event tracker (a
:class:`~vadx.watch.engine.StreamDetector`), so its events are exactly those ``vadx detect``
finds in the frames it analysed.

A camera can also have its own normal **beside** its classifier (``normal:`` in the YAML, a
model of ``vadx learn-normal``): two signals, "looks like a fight" and "unusual for this
camera", from the same decoded frames. Each has its own event tracker; their events share one
numbering (an alert's :attr:`~vadx.watch.engine.Alert.signal` says which raised it) and one
footage recorder, whose frames carry their anomaly maps.

With ``on_footage``, each camera also keeps the footage around its events
(:class:`~vadx.console.footage.FootageRecorder`): the seconds before an event starts, the event
and the seconds after it ends, handed over as one :class:`~vadx.console.footage.EventFootage` once
complete, or with what there is when the camera stops or its stream ends.

>>> hub = CameraHub(read_cameras("cameras.yaml"), on_alert=print)       # doctest: +SKIP
>>> hub.start(); ...; hub.close()                                        # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vadx.borrowed import eval_mode
from vadx.console.cameras import CameraConfig
from vadx.console.footage import EventFootage, FootageRecorder, KeptFrame
from vadx.errors import InputError
from vadx.models.crnn import CRNN
from vadx.normality import NormalityModel, calibrated_config
from vadx.settings import RUNTIMES, Runtime
from vadx.video.live import LiveFrame, LiveSource
from vadx.watch.capture import Capture, FrameQueue
from vadx.watch.engine import Alert, FrameInfo, StreamDetector
from vadx.watch.unusual import UnusualStream

LOG = logging.getLogger("vadx.console")
#: ``on_alert(camera name, alert)``: an event started or ended on a camera
CameraAlertFn = Callable[[str, Alert], None]
#: ``on_footage(camera name, footage)``: the footage around an event, complete or cut short
CameraFootageFn = Callable[[str, EventFootage], None]
#: seconds over which a camera's analysed frame rate is measured
RATE_WINDOW = 10.0


@dataclass(frozen=True)
class CameraStatus:
    """A camera's live status, as the console shows it.

    Attributes:
        name: the camera's name.
        state: ``disabled``, ``starting`` (no frame yet), ``running``, ``reconnecting`` (its
            stream failed; retrying), ``ended`` (a file read to its end), ``failed`` (the source
            gave up: see ``error``) or ``stopped``.
        connected: frames arrived within the last ``RATE_WINDOW`` seconds.
        fps: frames analysed per second over the last ``RATE_WINDOW`` seconds.
        frames: frames analysed since the camera was added.
        dropped: frames its queue dropped (oldest first) because analysis lagged.
        last_frame_at: wall-clock time (``time.time()``) of the last frame analysed.
        reconnects: connections after the first (for a looped file: passes after the first).
        error: the last error of its source, if any.
        events: events started on it since it was added.
        scores: the latest anomaly score of each signal that watches it: ``classifier``
            (``1 - p(normal)`` of its last window) and ``normality`` (``p(unusual)`` of its
            last frame); a signal without a decision yet is not there.
    """

    name: str
    state: str
    connected: bool
    fps: float
    frames: int
    dropped: int
    last_frame_at: float | None
    reconnects: int
    error: str | None
    events: int
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class _Camera:
    """A camera the hub runs: its settings, source, queue, capture and detector."""

    config: CameraConfig
    detector: StreamDetector
    source: LiveSource
    queue: FrameQueue
    capture: Capture
    footage: FootageRecorder | None = None  # with the hub's on_footage
    beside: UnusualStream | None = None  # the camera's normal beside its classifier
    session: int = 0
    frames: int = 0
    events: int = 0
    last_frame_at: float | None = None
    ended: bool = False
    stopped: bool = False
    latest: np.ndarray | None = None  # the last frame analysed, uint8 RGB
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=4096))

    @property
    def detectors(self) -> list[StreamDetector]:
        """Its detectors: the model's, and the normal's beside it."""
        return [self.detector] if self.beside is None else [self.detector, self.beside]

    @property
    def unusual(self) -> UnusualStream | None:
        """The detector that draws anomaly maps, if any: the normal's."""
        if self.beside is not None:
            return self.beside
        return self.detector if isinstance(self.detector, UnusualStream) else None


class CameraHub:
    """Every camera's analysis in one engine (module doc).

    Args:
        cameras: the cameras to run (disabled ones are kept, not read).
        load: reads a model from a checkpoint path (default: a classifier by
            :func:`vadx.models.load_model`, a camera's normality model by
            :func:`vadx.normality.load_normality`); each path is read once, whatever the
            number of cameras naming it.
        on_alert: called with the camera's name and each :class:`~vadx.watch.engine.Alert`.
        on_footage: called with the camera's name and each
            :class:`~vadx.console.footage.EventFootage` (None: no footage is kept around events).
        batch_size: frames per CNN call, over all cameras (and the most each camera gives a
            round). On a CPU, 8–16 frames per call cost no more per frame than 32, and often
            less (benchmarks/bench_console.py); on a GPU, larger batches pay.
        queue_size: frames each camera's queue holds before it drops the oldest.
        max_retries: consecutive failed attempts before a live camera is given up (None:
            never; it keeps reconnecting with back-off).
        keep_clips: a started event's alert carries the window that decided it (its frames,
            to keep as the event's clip and to explain).
        open_timeout, read_timeout: seconds a network source may take to open and per read.
        runtime: where the classifiers' per-frame CNN runs: ``torch``, or ``onnx`` (ONNX
            Runtime on the CPU, as ``vadx detect --runtime onnx``; needs ``vadx[onnx]``): the
            graph is exported once per model when it loads. The RNN, the head, normality
            models and explanations stay in PyTorch.
    """

    def __init__(
        self,
        cameras: Iterable[CameraConfig] = (),
        *,
        load: Callable[[str], CRNN] | None = None,
        on_alert: CameraAlertFn | None = None,
        on_footage: CameraFootageFn | None = None,
        batch_size: int = 16,
        queue_size: int = 64,
        max_retries: int | None = None,
        open_timeout: float = 10.0,
        read_timeout: float = 5.0,
        keep_clips: bool = False,
        runtime: Runtime = "torch",
    ) -> None:
        if batch_size < 1 or queue_size < 1:
            raise InputError("batch_size and queue_size must be at least 1")
        if runtime not in RUNTIMES:
            raise InputError(f"runtime must be {' or '.join(RUNTIMES)}, got {runtime!r}")
        self.runtime = runtime
        #: the ONNX Runtime CNN of each classifier (by id), with ``runtime="onnx"``
        self._encoders: dict[int, Callable[[torch.Tensor], np.ndarray]] = {}
        self._load = load or _load_model
        self.on_alert, self.on_footage = on_alert, on_footage
        self.batch_size, self.queue_size = batch_size, queue_size
        self.max_retries = max_retries
        self.keep_clips = keep_clips
        self.timeouts = (open_timeout, read_timeout)
        self.models: dict[str, CRNN] = {}  # one copy per checkpoint path
        self._cameras: dict[str, _Camera | None] = {}  # None: declared, disabled
        self._configs: dict[str, CameraConfig] = {}
        self._lock = threading.RLock()  # the cameras' tables
        self._analysis = threading.RLock()  # a camera's detector, used by one thread at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cnn_batches: list[int] = []  # frames per CNN call, over all cameras (recent)
        for camera in cameras:
            self.add(camera)

    # --------------------------------------------------------------------- the cameras
    @property
    def names(self) -> list[str]:
        """The cameras' names, in the order they were added."""
        with self._lock:
            return list(self._configs)

    def config(self, name: str) -> CameraConfig:
        """The settings of camera ``name``."""
        with self._lock:
            if name not in self._configs:
                known = ", ".join(self._configs) or "none"
                raise InputError(f"no camera {name!r}; the cameras are: {known}")
            return self._configs[name]

    def model(self, name: str, signal: str | None = None) -> CRNN | NormalityModel:
        """The model watching camera ``name`` (an enabled one); with ``signal``
        ``normality``, the camera's normal (beside its classifier, or its only model)."""
        with self._lock:
            self.config(name)
            camera = self._cameras[name]
        if camera is None:
            raise InputError(f"camera {name!r} is disabled")
        if signal == "normality" and camera.beside is not None:
            return camera.beside.model
        return camera.detector.model

    def model_id(self, name: str, signal: str | None = None) -> str:
        """The id of the model of ``signal`` watching camera ``name`` (:meth:`model`;
        empty for a disabled camera)."""
        with self._lock:
            self.config(name)
            camera = self._cameras[name]
        if camera is None:
            return ""
        return str(self.model(name, signal).model_id or "")

    def add(self, camera: CameraConfig) -> None:
        """Start running ``camera`` (at the next round, if the hub runs); its model is loaded
        unless another camera already uses it."""
        with self._lock:
            if camera.name in self._configs:
                raise InputError(f"there is already a camera {camera.name!r}: change it instead")
            self._cameras[camera.name] = self._open(camera) if camera.enabled else None
            self._configs[camera.name] = camera
            running = self._cameras[camera.name]
            if running is not None and self._thread is not None:
                running.capture.start()

    def remove(self, name: str) -> list[Alert]:
        """Stop camera ``name`` and forget it; its open events end (returned, and given to
        ``on_alert`` while the camera is still known)."""
        with self._lock:
            self.config(name)
            camera = self._cameras[name]
        alerts = [] if camera is None else self._stop_camera(camera, "camera removed")
        with self._lock:
            self._cameras.pop(name, None)
            self._configs.pop(name, None)
        self._forget_unused_models()
        return alerts

    def change(self, camera: CameraConfig) -> list[Alert]:
        """Run camera ``camera.name`` with new settings: its open events end, it starts
        afresh (a new model is loaded if it names one)."""
        previous = self.config(camera.name)
        alerts = self.remove(camera.name)
        try:
            self.add(camera)
        except Exception:
            self.add(previous)  # the old settings keep running when the new ones fail
            raise
        return alerts

    def _open(self, config: CameraConfig) -> _Camera:
        model = self._model(config.model)
        ids = itertools.count(1)  # one numbering for the events of both signals
        if isinstance(model, NormalityModel):  # the camera's own normal (vadx learn-normal)
            detector: StreamDetector = UnusualStream(
                model, config.detection, keep_clips=self.keep_clips, ids=ids
            )
        else:
            detector = StreamDetector(model, config.detection, keep_clips=self.keep_clips, ids=ids)
        beside = None
        if config.normal is not None:
            normal = self._model(config.normal)
            if not isinstance(normal, NormalityModel):
                self._forget_unused_models()
                raise InputError(
                    f"camera {config.name!r}: normal {config.normal!r} is not a camera's "
                    "normality model (vadx learn-normal)"
                )
            if isinstance(model, NormalityModel):
                self._forget_unused_models()
                raise InputError(
                    f"camera {config.name!r}: its model {config.model!r} is a normality model "
                    "already: normal goes beside a classifier"
                )
            beside = UnusualStream(  # with its calibrated settings: detect is the classifier's
                normal, calibrated_config(normal), keep_clips=self.keep_clips, ids=ids
            )
        retries = 0 if config.is_file else self.max_retries
        source = LiveSource(
            config.source, *self.timeouts, max_retries=retries, loop=config.loop and config.is_file
        )
        drop = source.live or (config.is_file and config.pace)
        queue = FrameQueue(self.queue_size, drop_oldest=drop)
        capture = Capture(source, queue, pace=config.is_file and config.pace)
        capture.thread.name = f"vadx-capture-{config.name}"
        footage = None
        if self.on_footage is not None:  # announced up to a history and a round after it starts
            history = max(d.history for d in [detector, *([beside] if beside else [])])
            footage = FootageRecorder(config.footage, history + self.batch_size)
        return _Camera(config, detector, source, queue, capture, footage, beside)

    def _model(self, path: str) -> CRNN | NormalityModel:
        key = str(Path(path).resolve()) if not str(path).startswith(("http:", "https:")) else path
        if key not in self.models:
            loaded = self._load(path)
            if isinstance(loaded, CRNN):
                loaded.eval()
                if self.runtime == "onnx":
                    from vadx.models.export import OnnxFrames

                    self._encoders[id(loaded)] = OnnxFrames(loaded)
            self.models[key] = loaded
        return self.models[key]

    def _forget_unused_models(self) -> None:
        with self._lock:
            used = {
                id(d.model) for c in self._cameras.values() if c is not None for d in c.detectors
            }
            self.models = {k: m for k, m in self.models.items() if id(m) in used}
            self._encoders = {k: e for k, e in self._encoders.items() if k in used}

    # ------------------------------------------------------------------------ running
    def start(self) -> CameraHub:
        """Start every enabled camera's capture and the analysis thread."""
        if self._thread is not None:
            raise InputError("the hub is already running")
        with self._lock:
            for camera in self._cameras.values():
                if camera is not None:
                    camera.capture.start()
            self._thread = threading.Thread(target=self._run, name="vadx-hub", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop every camera (their open events end) and the analysis thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            cameras = [c for c in self._cameras.values() if c is not None and not c.stopped]
        for camera in cameras:
            self._stop_camera(camera, "stopped")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.step() == 0:
                    self._stop.wait(0.01)
            except Exception:  # logged; the other cameras go on
                LOG.exception("an analysis round failed")
                self._stop.wait(1.0)

    def run_to_end(self, timeout: float | None = None) -> None:
        """Analyse in the calling thread until every enabled camera's source has ended or
        failed (files that are not looped), or ``timeout`` seconds (for files and tests)."""
        began = time.monotonic()
        with self._lock:
            for camera in self._cameras.values():
                if camera is not None and camera.capture.thread.ident is None:  # not started
                    camera.capture.start()
        while any(c is not None and not c.ended for c in self._running()):
            if timeout is not None and time.monotonic() - began > timeout:
                break
            if self.step() == 0:
                time.sleep(0.005)

    def step(self) -> int:
        """One analysis round over every camera; returns the frames it took."""
        with self._analysis:
            return self._step()

    def _step(self) -> int:
        with self._lock:
            cameras = [c for c in self._running() if c is not None and not c.ended]
        if not cameras:
            return 0
        share = self.batch_size
        staged: list[tuple[_Camera, list[int]]] = []
        taken = 0
        for camera in cameras:
            frames = camera.queue.get_many(share, timeout=0)
            if frames is None:  # the source ended or failed: the last windows, open events end
                camera.ended = True
                reason = "source failed" if camera.capture.error else "stream ended"
                self._end_segment(camera, reason)
                continue
            taken += len(frames)
            if frames and all(f.session == camera.session for f in frames):
                staged.append((camera, frames))  # batched with the other cameras' frames
                continue
            for first, last in _sessions(frames):  # a reconnection: in order, on its own
                if frames[first].session != camera.session:
                    self._end_segment(camera, "source reconnected")
                    camera.session = frames[first].session
                self._analyse([(camera, frames[first:last])])
        if staged:
            self._analyse(staged)
        return taken

    def _analyse(self, batches: list[tuple[_Camera, list[LiveFrame]]]) -> None:
        """Stage each camera's frames, run each model's CNN once over all of them, give each
        camera its features, then decide its windows."""
        wanted = []
        now = time.time()
        for camera, frames in batches:
            infos = [
                FrameInfo(
                    f.number, f.time, f.captured, now - (time.monotonic() - f.captured), f.session
                )
                for f in frames
            ]
            wanted.append(camera.detector.stage([f.data for f in frames], infos))
            if camera.beside is not None:  # the normal's maps: its own CNN, at once
                camera.beside.stage([f.data for f in frames], infos)
            if camera.footage is not None:
                unusual = camera.unusual
                maps = [None] * len(frames) if unusual is None else list(unusual.staged_maps)
                kept = [
                    KeptFrame(f.data, info, kept_map)
                    for f, info, kept_map in zip(frames, infos, maps, strict=True)
                ]
                self._hand(camera, camera.footage.add(kept))
            camera.frames += len(frames)
            camera.latest = frames[-1].data if frames else camera.latest
            camera.last_frame_at = infos[-1].wall if infos else camera.last_frame_at
            camera.recent.extend([time.monotonic()] * len(frames))
        by_model: dict[int, list[int]] = {}
        for k, (camera, _) in enumerate(batches):
            if wanted[k]:
                by_model.setdefault(id(camera.detector.model), []).append(k)
        for members in by_model.values():
            model = batches[members[0]][0].detector.model
            encoder = self._encoders.get(id(model))
            inputs = torch.cat([batches[k][0].detector.cnn_input(wanted[k]) for k in members])
            rows = []
            for first in range(0, len(inputs), self.batch_size):
                chunk = inputs[first : first + self.batch_size]
                if encoder is not None:
                    rows.append(torch.from_numpy(encoder(chunk)))
                else:
                    with eval_mode(model), torch.no_grad():
                        rows.append(model.frame_features(chunk[None].to(model.device))[0])
                self.cnn_batches.append(len(chunk))
            features = torch.cat(rows)
            offset = 0
            for k in members:
                count = len(wanted[k])
                batches[k][0].detector.take_features(wanted[k], features[offset : offset + count])
                offset += count
        del self.cnn_batches[:-1000]
        for camera, _ in batches:
            for detector in camera.detectors:
                self._give(camera, detector.settle())

    def _give(self, camera: _Camera, alerts: list[Alert]) -> None:
        for alert in alerts:
            if alert.kind == "started":
                camera.events += 1
            if self.on_alert is not None:
                try:
                    self.on_alert(camera.config.name, alert)
                except Exception:  # a failing consumer never stops the cameras
                    LOG.exception("camera %s: handling an alert failed", camera.config.name)
            if camera.footage is not None:  # after on_alert: the event is known first
                recorder = camera.footage
                kept = recorder.started(alert) if alert.kind == "started" else recorder.ended(alert)
                self._hand(camera, kept)

    def _hand(self, camera: _Camera, kept: list[EventFootage]) -> None:
        for footage in kept:
            try:
                self.on_footage(camera.config.name, footage)  # type: ignore[misc]
            except Exception:  # a failing consumer never stops the cameras
                LOG.exception("camera %s: handling an event's footage failed", camera.config.name)

    def _end_segment(self, camera: _Camera, reason: str) -> list[Alert]:
        """The camera's stream ended, broke or stops: its open events end, and the footage
        still collecting is handed over with what it has."""
        alerts = [a for d in camera.detectors for a in d.end_segment(reason)]
        self._give(camera, alerts)
        if camera.footage is not None:
            self._hand(camera, camera.footage.flush(reason))
        return alerts

    def _stop_camera(self, camera: _Camera, reason: str) -> list[Alert]:
        camera.capture.close()
        with self._analysis:  # not in the middle of a round that uses its detector
            camera.stopped = True
            if camera.ended:
                return []
            camera.ended = True
            return self._end_segment(camera, reason)

    def _running(self) -> list[_Camera | None]:
        return list(self._cameras.values())

    def latest_frame(self, name: str) -> np.ndarray | None:
        """The last frame analysed of camera ``name`` (uint8 RGB; None: none yet)."""
        with self._lock:
            self.config(name)
            camera = self._cameras[name]
        return None if camera is None else camera.latest

    # ------------------------------------------------------------------------- status
    def status(self) -> list[CameraStatus]:
        """Every camera's :class:`CameraStatus`, in the order they were added."""
        with self._lock:
            return [self._status(name, self._cameras[name]) for name in self._configs]

    def _status(self, name: str, camera: _Camera | None) -> CameraStatus:
        if camera is None:
            return CameraStatus(name, "disabled", False, 0.0, 0, 0, None, 0, None, 0)
        now = time.monotonic()
        recent = [t for t in camera.recent if now - t <= RATE_WINDOW]
        stats = camera.source.stats
        error = str(camera.capture.error) if camera.capture.error else stats.last_error
        if camera.stopped:
            state = "stopped"
        elif camera.capture.error is not None:
            state = "failed"
        elif camera.ended:
            state = "ended"
        elif stats.failures and camera.capture.thread.is_alive() and not recent:
            state = "reconnecting"
        elif camera.frames == 0:
            state = "starting"
        else:
            state = "running"
        span = min(RATE_WINDOW, now - recent[0]) if len(recent) > 1 else 0.0
        return CameraStatus(
            name=name,
            state=state,
            connected=bool(recent) and state == "running",
            fps=round(len(recent) / span, 2) if span > 0 else 0.0,
            frames=camera.frames,
            dropped=camera.queue.stats.dropped,
            last_frame_at=camera.last_frame_at,
            reconnects=max(0, stats.connections - 1),
            error=error,
            events=camera.events,
            scores={
                d.signal: round(float(d.latest), 4)
                for d in camera.detectors
                if d.latest is not None
            },
        )


def _sessions(frames: list[LiveFrame]) -> list[tuple[int, int]]:
    """``(first, stop)`` of each run of frames from one session."""
    runs, first = [], 0
    for k in range(1, len(frames) + 1):
        if k == len(frames) or frames[k].session != frames[first].session:
            runs.append((first, k))
            first = k
    return runs


def _load_model(path: str) -> CRNN | NormalityModel:
    from vadx.models import load_model
    from vadx.normality import is_normality, load_normality

    return load_normality(path) if is_normality(path) else load_model(path)
