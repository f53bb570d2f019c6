"""The console as one service (:class:`Console`): the cameras' engine
(:class:`~vadx.console.engine.CameraHub`), their events in the database
(:class:`~vadx.console.store.EventStore`) with a clip each, MQTT out
(:class:`~vadx.console.mqtt.MqttPublisher`), live listeners (the page's Server-Sent Events),
and retention. ``vadx serve --cameras cameras.yaml`` runs one beside the upload API.

Detection never waits on the disk: each event's row, clip and explanation are written by
writer threads (:mod:`vadx.console.recording`), in order, and a full disk or a database that
cannot be written stops the recording with a clear status (:attr:`Console.recording`) while
the cameras go on; the events wait in memory and are stored when writing works again.

Cameras come from the YAML file, then from the database: a camera added or changed through the
API is kept there and runs again after a restart (it overrides the file's camera of the same
name); one removed through the API is gone until the file or the API declares it again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vadx.console.cameras import CameraConfig
from vadx.console.engine import CameraHub, CameraStatus
from vadx.console.footage import EventFootage
from vadx.console.mqtt import MqttPublisher, MqttSettings
from vadx.console.recording import STORAGE_ERRORS, Recording, RecordingStatus
from vadx.console.store import CLIP, EVENTS_FOLDER, EventStore, StoredEvent
from vadx.errors import InputError
from vadx.explanations.clip import ExplainSettings
from vadx.models.crnn import CRNN
from vadx.normality import NormalityModel
from vadx.settings import Runtime
from vadx.watch.alerts import ALERT_SETTINGS, AlertExplainer, alert_verdict
from vadx.watch.engine import Alert
from vadx.watch.sinks import event_record
from vadx.watch.unusual import write_maps

LOG = logging.getLogger("vadx.console")
#: how each event is explained: ``vadx watch``'s alert settings, the map drawn as a heat map
EXPLAIN_SETTINGS: ExplainSettings = replace(ALERT_SETTINGS, view="heatmap")
#: seconds between retention passes and between status messages
RETENTION_EVERY, STATUS_EVERY = 600.0, 5.0
#: seconds the console tries to store what waits when it closes
CLOSE_TIMEOUT = 10.0
#: windows waiting to be explained, per model; an event that finds them all taken is not
#: explained, and says so (``explanation_error``)
EXPLAIN_QUEUE = 4


@dataclass(frozen=True)
class Retention:
    """How long events and their clips are kept: ``days`` (None: no age limit) and
    ``max_bytes`` of clips in all (None: no size limit); the oldest ended events go first."""

    days: float | None = None
    max_bytes: int | None = None


@dataclass(frozen=True)
class LiveMessage:
    """What a live listener receives: ``kind`` ``new`` / ``update`` / ``end`` with the
    ``event``, or ``status`` with every camera's ``cameras`` and the ``recording``."""

    kind: str
    event: StoredEvent | None = None
    cameras: tuple[CameraStatus, ...] = ()
    recording: RecordingStatus | None = None

    def to_json(self) -> dict[str, Any]:
        """The message as the page receives it."""
        if self.event is not None:
            return {"type": self.kind, "event": self.event.to_json()}
        recording = None if self.recording is None else asdict(self.recording)
        return {
            "type": self.kind,
            "cameras": [asdict(c) for c in self.cameras],
            "recording": recording,
        }


class Console:
    """Many live cameras, one engine, events in a database and on MQTT (module doc).

    Args:
        cameras: the cameras the YAML file declares.
        folder: the data folder: the SQLite database and the events' clips.
        database: a SQLAlchemy URL instead of SQLite in ``folder``.
        mqtt: the broker to publish to (None: no MQTT).
        retention: how long events are kept.
        explain: explain each event's window as it starts (in a worker process per model, as
            ``vadx watch`` explains its alerts): LayerCAM over the frames, frame Shapley values,
            ``explanation/`` beside the event's footage with ``strip.png`` and the map's video.
        trust: give each explanation a trust verdict (docs/trust.md), which costs about as
            much again as the explanation.
        load: reads a model from a checkpoint path (tests give their own).
        batch_size, queue_size, max_retries, open_timeout, read_timeout, runtime: those of
            the engine (:class:`~vadx.console.engine.CameraHub`).
    """

    def __init__(
        self,
        cameras: Sequence[CameraConfig],
        folder: str | Path,
        *,
        database: str | None = None,
        mqtt: MqttSettings | None = None,
        retention: Retention | None = None,
        explain: bool = True,
        trust: bool = False,
        load: Callable[[str], CRNN] | None = None,
        batch_size: int = 16,
        queue_size: int = 64,
        max_retries: int | None = None,
        open_timeout: float = 10.0,
        read_timeout: float = 5.0,
        runtime: Runtime = "torch",
    ) -> None:
        self.store = EventStore(folder, database)
        self.retention = retention or Retention()
        self.explain = explain
        self.explain_settings = replace(EXPLAIN_SETTINGS, trust=trust)
        self._explainers: dict[int, AlertExplainer] = {}  # one worker per model
        self._explainers_closed = False  # an event stored later (closing) is not explained
        declared = {c.name: c for c in cameras}
        declared.update({c.name: c for c in self.store.cameras()})
        self._listeners: list[queue.Queue[LiveMessage]] = []
        self._listeners_lock = threading.Lock()
        self._told = threading.Lock()  # what is read for a message and queued, together
        self._rows: dict[tuple[str, int], int] = {}  # (camera, engine's alert id) → event id
        #: a normality event's id → the normal that draws its maps over its footage
        self._normals: dict[int, NormalityModel] = {}
        #: per camera, its events that last now (MQTT's anomaly is ON while there is one)
        self._lasting: dict[str, set[int]] = {}
        #: whether events are stored, and why not (a full disk…): module doc
        self.recording = Recording(self.store.database)
        self._events = self.recording.writer("events")  # rows, in order
        self._clips = self.recording.writer("clips")  # each event's clip and thumbnail
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.publisher = MqttPublisher(mqtt) if mqtt is not None else None
        try:
            self.hub = CameraHub(
                declared.values(),
                load=load,
                on_alert=self._alert,
                on_footage=self._footage,
                batch_size=batch_size,
                queue_size=queue_size,
                max_retries=max_retries,
                open_timeout=open_timeout,
                read_timeout=read_timeout,
                keep_clips=True,
                runtime=runtime,
            )
        except Exception:
            self.recording.close(0)
            self._close_outputs()
            raise

    # ------------------------------------------------------------------------ cameras
    def add_camera(self, camera: CameraConfig) -> None:
        """Run a new camera, and keep it for restarts (one that cannot be kept, the disk
        full…, does not run either)."""
        self.hub.add(camera)
        try:
            self.store.save_camera(camera)
        except STORAGE_ERRORS:
            self.hub.remove(camera.name)
            raise

    def change_camera(self, camera: CameraConfig) -> None:
        """Run camera ``camera.name`` with new settings, and keep them for restarts (settings
        that cannot be kept are not run either)."""
        previous = self.hub.config(camera.name)
        self.hub.change(camera)
        try:
            self.store.save_camera(camera)
        except STORAGE_ERRORS:
            self.hub.change(previous)
            raise

    def remove_camera(self, name: str) -> None:
        """Forget camera ``name`` and stop it (its open events end)."""
        self.store.forget_camera(name)
        self.hub.remove(name)
        if self.publisher is not None:
            self.publisher.anomaly(name, False)

    # ------------------------------------------------------------------------- events
    def _alert(self, camera: str, alert: Alert) -> None:
        """An event started or ended (on the analysis thread): its row waits for the events'
        writer, so that detection never waits on the disk."""
        model = self.hub.model(camera, alert.signal)
        model_id = self.hub.model_id(camera, alert.signal)
        store = functools.partial(self._store, camera, model_id, model)
        if alert.window is not None:
            if self._events.submit(functools.partial(store, alert), alert.window.nbytes):
                return
            alert = replace(alert, window=None)  # memory holds no more: kept without its clip
        self._events.submit(functools.partial(store, alert))

    def _store(self, camera: str, model_id: str, model: Any, alert: Alert) -> None:
        """Store an alert (the events' writer), tell the listeners, then keep its window
        (the clips' writer) and explain it."""
        before = self.store.open_event(camera, alert.id) if alert.kind == "ended" else None
        stored = self.store.record(camera, alert, model_id)
        try:  # stored: a failure from here on must not make the writer store it again
            normal = model if isinstance(model, NormalityModel) else None
            if alert.kind == "started":  # for its footage, which comes later
                self._rows[(camera, alert.id)] = stored.id
                if normal is not None:
                    self._normals[stored.id] = normal
            self._tell("new" if alert.kind == "started" else "end", stored, before)
            if alert.kind == "started" and alert.window is not None:
                covers = _covers(alert.window_frames, alert.window_times)
                maps = alert.window_maps if normal is not None else None
                footage = functools.partial(
                    self._keep_footage,
                    stored.id,
                    alert.window,
                    alert.window_fps,
                    covers,
                    normal,
                    maps,
                )
                self._clips.submit(footage, alert.window.nbytes)
                if self.explain and not self._explainers_closed and isinstance(model, CRNN):
                    window = (alert.window_frames[0], alert.window_frames[-1])
                    record = event_record(alert, stored.id, window_frames=window)
                    if not self._explainer(model).submit(stored.id, alert, record):
                        busy = f"not explained: the explainer was busy with {EXPLAIN_QUEUE} others"
                        self._store_explanation_error(stored.id, busy)
        except Exception:
            LOG.exception("event %d (camera %s): after it was stored", stored.id, camera)

    def _explainer(self, model: CRNN) -> AlertExplainer:
        if id(model) not in self._explainers:
            self._explainers[id(model)] = AlertExplainer(
                model,
                self.store.folder,
                self.explain_settings,
                mp4=True,
                done=self._explained,
                unwritten=self._unexplained,
                failed=self._explanation_failed,
                capacity=EXPLAIN_QUEUE,
                layout=EVENTS_FOLDER + "/{number}/explanation",
            )
        return self._explainers[id(model)]

    def _explained(self, event_id: int, folder: Path, record: Any) -> None:
        self.recording.worked("explanations")
        self._events.submit(functools.partial(self._store_explanation, event_id, folder))

    def _unexplained(self, event_id: int, error: OSError) -> None:
        """An explanation the worker could not write (the disk full…): given up, and the
        recording's status says why."""
        self.recording.failed("explanations", error)
        self.recording.lose()
        self._explanation_failed(event_id, f"its explanation could not be written: {error}")

    def _explanation_failed(self, event_id: int, reason: str) -> None:
        """Explaining an event failed (the collector thread): why, kept with the event."""
        self._events.submit(functools.partial(self._store_explanation_error, event_id, reason))

    def _store_explanation_error(self, event_id: int, reason: str) -> None:
        before = self.store.event(event_id)
        self.store.set_explanation_error(event_id, reason)
        self._tell("update", self.store.event(event_id), before)

    def _store_explanation(self, event_id: int, folder: Path) -> None:
        before = self.store.event(event_id)
        trust = alert_verdict(folder) if self.explain_settings.trust else None
        relative = folder.relative_to(self.store.folder).as_posix()
        self.store.set_explanation(event_id, relative, trust)
        self._tell("update", self.store.event(event_id), before)

    def _keep_footage(
        self,
        event_id: int,
        frames: Any,
        fps: float,
        covers: dict,
        normal: NormalityModel | None = None,
        maps: np.ndarray | None = None,
    ) -> None:
        """The event's window as ``clip.mp4`` and its middle frame as ``thumb.png``; a
        normality event's (``normal``, the ``maps`` of its frames) also as ``map.mp4``, the
        maps over the frames, with its most unusual frame and map as ``map.png`` and
        ``thumb.png``."""
        from vadx.video.encode import write_mp4, write_png

        folder = self.store.footage_folder(event_id)
        folder.mkdir(parents=True, exist_ok=True)  # each file appears whole (atomic writes)
        drawn = normal is not None and maps is not None and len(maps) == len(frames)
        if drawn:
            write_maps(folder, normal, list(frames), maps, fps)  # type: ignore[arg-type]
        else:
            write_png(folder / "thumb.png", frames[len(frames) // 2])
        write_mp4(folder / CLIP, frames, fps=max(fps, 1.0))
        before = self.store.event(event_id)
        relative = folder.relative_to(self.store.folder).as_posix()
        if drawn:
            self.store.set_maps(event_id, relative)
        self.store.set_footage(event_id, relative, **covers)
        self._tell("update", self.store.event(event_id), before)

    def keep_footage(
        self, event: StoredEvent, read: Callable[[], tuple[np.ndarray, float, np.ndarray]]
    ) -> None:
        """Keep footage for ``event`` from ``read()`` (uint8 frames, their rate and their
        numbers in the event's video), on the clip thread: ``clip.mp4`` and ``thumb.png``,
        what it covers, then an ``update``."""

        def keep() -> None:
            try:
                frames, fps, numbers = read()
            except Exception as error:
                warnings.warn(
                    f"event {event.id}: its footage could not be read: {error}", stacklevel=1
                )
                return
            covers = _covers(list(numbers), [n / fps for n in numbers])
            self._keep_footage(event.id, frames, fps, covers)

        self._clips.submit(keep)

    def review(
        self, event_id: int, reviewed: bool = True, judged_normal: bool | None = None
    ) -> StoredEvent:
        """Mark a camera's event reviewed (and judged normal for its camera, or not:
        :meth:`EventStore.review`) and tell the listeners, so that every open page shows it,
        and a page's own change is not undone by a message about the event sent just before
        it. Returns the event."""
        before = self.store.event(event_id)
        after = self.store.review(event_id, reviewed, judged_normal)
        self._tell("update", after, before)
        return after

    def tell(self, kind: str, event: StoredEvent) -> None:
        """Tell listeners of ``event`` (``new``, ``update`` or ``end``): the page's live
        listeners, and MQTT for a camera's event (an upload's is not the site's news)."""
        self._tell(kind, event, None)

    def _footage(self, camera: str, footage: EventFootage) -> None:
        """An event's footage is complete (on the analysis thread): once its row is stored
        (the events' writer keeps the order), it replaces the event's window."""
        if footage.frames:
            nbytes = sum(f.data.nbytes for f in footage.frames)
            queue_it = functools.partial(self._queue_footage, camera, footage, nbytes)
            self._events.submit(queue_it, nbytes)

    def _queue_footage(self, camera: str, footage: EventFootage, nbytes: int) -> None:
        event_id = self._rows.pop((camera, footage.alert_id), None)
        if event_id is not None:
            replace_it = functools.partial(self._replace_footage, event_id, footage)
            self._clips.submit(replace_it, nbytes)  # after the window's

    def _replace_footage(self, event_id: int, footage: EventFootage) -> None:
        """The footage around the event (``pre_capture`` before it to ``post_capture`` after
        it) as its ``clip.mp4``, in place of its window, encoded frame by frame (no second copy
        of the frames); the file is replaced whole, so a page playing it never reads half a
        file. A normality event's footage with its maps over it replaces its ``map.mp4`` (and
        ``map.png``, ``thumb.png``: the most unusual frame of the footage)."""
        from vadx.video.encode import Mp4Writer, write_png

        folder = self.store.footage_folder(event_id)
        folder.mkdir(parents=True, exist_ok=True)
        normal = self._normals.get(event_id)
        maps = [f.map for f in footage.frames]
        drawn = normal is not None and all(m is not None for m in maps)
        if drawn:
            frames = [f.data for f in footage.frames]
            write_maps(folder, normal, frames, np.stack(maps), footage.fps)  # type: ignore[arg-type]
        elif not (folder / "thumb.png").is_file():  # no window was kept
            write_png(folder / "thumb.png", footage.frames[len(footage.frames) // 2].data)
        size = footage.frames[0].data.shape[:2]
        with Mp4Writer(folder / CLIP, footage.fps, size) as mp4:  # the window stays if not
            for frame in footage.frames:
                mp4.write(frame.data)
        before = self.store.event(event_id)
        covers = _covers(footage.numbers, footage.times)
        relative = folder.relative_to(self.store.folder).as_posix()
        if drawn:
            self.store.set_maps(event_id, relative)
        self.store.set_footage(event_id, relative, **covers)
        self._normals.pop(event_id, None)  # stored: a failed write above is tried again
        self._tell("update", self.store.event(event_id), before)

    def _tell(self, kind: str, event: StoredEvent, before: StoredEvent | None) -> None:
        # the review state as it is when the message is queued (read and queued together): a
        # review made after the caller read the row is not undone on the pages by this message
        with self._told:
            with contextlib.suppress(InputError, *STORAGE_ERRORS):  # gone, or unreadable now
                now = self.store.event(event.id)
                event = replace(
                    event,
                    reviewed=now.reviewed,
                    reviewed_at=now.reviewed_at,
                    judged_normal=now.judged_normal,
                )
            self._broadcast(LiveMessage(kind, event))
        if self.publisher is not None and event.source == "camera":
            self.publisher.event(
                kind, event.to_json(), None if before is None else before.to_json()
            )
            if kind != "update":  # ON while any event lasts: a classifier's, or the normal's
                lasting = self._lasting.setdefault(event.camera, set())
                (lasting.add if event.state == "active" else lasting.discard)(event.id)
                self.publisher.anomaly(event.camera, bool(lasting))

    # ----------------------------------------------------------------- live listeners
    @contextlib.contextmanager
    def listen(self, size: int = 256) -> Iterator[queue.Queue[LiveMessage]]:
        """A queue of :class:`LiveMessage` for the ``with`` block (a full queue drops the
        listener's oldest message: a slow page never holds up the cameras)."""
        inbox: queue.Queue[LiveMessage] = queue.Queue(size)
        with self._listeners_lock:
            self._listeners.append(inbox)
        try:
            yield inbox
        finally:
            with self._listeners_lock:
                self._listeners.remove(inbox)

    def _broadcast(self, message: LiveMessage) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for inbox in listeners:
            while True:
                try:
                    inbox.put_nowait(message)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        inbox.get_nowait()

    # ------------------------------------------------------------------------ running
    def start(self) -> Console:
        """Start the cameras, and the thread that prunes and reports their status."""
        self.hub.start()
        self._thread = threading.Thread(target=self._housekeeping, name="vadx-console")
        self._thread.daemon = True
        self._thread.start()
        return self

    def prune(self) -> list[int]:
        """Apply :attr:`retention` now; returns the events deleted."""
        if self.retention.days is None and self.retention.max_bytes is None:
            return []
        return self.store.prune(days=self.retention.days, max_bytes=self.retention.max_bytes)

    def _housekeeping(self) -> None:
        next_prune = 0.0
        while not self._stop.wait(STATUS_EVERY if next_prune else 0):
            try:
                self._report()
                if time.monotonic() >= next_prune and self._prune():
                    next_prune = time.monotonic() + RETENTION_EVERY
            except Exception:  # logged; the status goes on
                LOG.exception("the console's housekeeping failed")

    def _report(self) -> None:
        """Every camera's status and the recording's, to MQTT and the live listeners."""
        statuses = tuple(self.hub.status())
        if self.publisher is not None:
            for status in statuses:
                self.publisher.status(status.name, status)
        self._broadcast(LiveMessage("status", cameras=statuses, recording=self.recording.status))

    def _prune(self) -> bool:
        """Retention; False when the database could not be written (the recording stops,
        said once, and retention is tried again at the next status)."""
        try:
            self.prune()
        except STORAGE_ERRORS as err:
            self.recording.failed("retention", err)
            return False
        self.recording.worked("retention")
        return True

    def close(self) -> None:
        """Stop the cameras (open events end and are stored), then the outputs. Writes that
        cannot be stored within :data:`CLOSE_TIMEOUT` seconds (the disk full) are lost, and
        said."""
        self._stop.set()
        self.hub.close()
        if self._thread is not None:
            self._thread.join(10)
        self.recording.flush(CLOSE_TIMEOUT)  # every started event's explanation asked for
        self._explainers_closed = True
        for explainer in list(self._explainers.values()):
            explainer.close(timeout=30)
        self.recording.close(CLOSE_TIMEOUT)
        self._close_outputs()

    def _close_outputs(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
        self.store.close()


def _covers(
    frames: Sequence[int], times: Sequence[float]
) -> dict[str, tuple[int, int] | tuple[float, float]]:
    """What a clip.mp4 covers, as the store records it: its first and last frames and times
    (nothing when they are not known)."""
    if not frames or not times:
        return {}
    return {
        "frames": (int(frames[0]), int(frames[-1])),
        "times": (float(times[0]), float(times[-1])),
    }
