"""Where live events go: a durable log (JSON lines, optionally SQLite) and a webhook.

Every record is on disk before the next frame is processed: appended, flushed and fsynced
(SQLite: committed with ``synchronous=FULL``). A watch restarted on the same folder appends
and numbers its events after the ones already there. The webhook POSTs each record from its
own thread with retries, so a slow or dead receiver never holds up detection.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vadx.watch.engine import Alert


def clock(seconds: float) -> str:
    """``time.time()`` as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An alert as the log, the webhook and ``on_alert`` get it: the event (``state``
    ``started`` or ``ended``) with its id in the log, wall-clock times, source session, why it
    ended, its share outside the model's domain and the first and last frame of the window
    that explains it; ``signal``: what raised it, ``classifier`` or ``normality`` (a camera's
    normal, alone or beside a classifier)."""

    id: int
    state: str
    class_name: str
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    started_at: str
    ended_at: str
    peak_probability: float
    mean_probability: float
    session: int
    reason: str | None
    out_of_domain: float | None
    window_frames: tuple[int, int] | None = None
    signal: str = "classifier"

    def to_json(self) -> dict[str, Any]:
        """The record as a line of ``events.jsonl`` (and the webhook's body) holds it."""
        return {
            "id": self.id,
            "state": self.state,
            "class": self.class_name,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "peak_probability": self.peak_probability,
            "mean_probability": self.mean_probability,
            "session": self.session,
            "reason": self.reason,
            "out_of_domain": self.out_of_domain,
            "window_frames": None if self.window_frames is None else list(self.window_frames),
            "signal": self.signal,
        }


@dataclass(frozen=True, slots=True)
class ExplainedRecord:
    """An event's explanation finished (``state`` ``explained``): its folder, relative to
    the watch's output folder, and (when checked) its worst trust verdict."""

    id: int
    class_name: str
    explanation: str
    trust: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as a line of ``events.jsonl`` (and the webhook's body) holds it."""
        document = {
            "id": self.id,
            "state": "explained",
            "class": self.class_name,
            "explanation": self.explanation,
        }
        return document if self.trust is None else {**document, "trust": self.trust}


#: what the log and the webhook take
LogRecord = EventRecord | ExplainedRecord


def event_record(
    alert: Alert, number: int, window_frames: tuple[int, int] | None = None
) -> EventRecord:
    """The record of an alert (``number`` is its id in the log; ``window_frames``: the first
    and last frame of the window that explains it)."""
    event = alert.event
    return EventRecord(
        id=number,
        state=alert.kind,
        class_name=event.class_name,
        start_frame=event.start_frame,
        end_frame=event.end_frame,
        start_time=round(event.start_time, 4),
        end_time=round(event.end_time, 4),
        started_at=clock(alert.started_at),
        ended_at=clock(alert.ended_at),
        peak_probability=round(event.peak_probability, 5),
        mean_probability=round(event.mean_probability, 5),
        session=alert.session,
        reason=alert.reason,
        out_of_domain=None if event.out_of_domain is None else round(event.out_of_domain, 4),
        window_frames=window_frames,
        signal=alert.signal,
    )


class EventLog:
    """``events.jsonl`` (and ``events.sqlite`` with ``sqlite=True``) in ``folder``."""

    def __init__(self, folder: str | Path, sqlite: bool = False) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "events.jsonl"
        self.first_id = self._last_id() + 1
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 — closed in close()
        self._db = None
        if sqlite:
            self._db = sqlite3.connect(self.folder / "events.sqlite", check_same_thread=False)
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS events (id INTEGER, state TEXT, class TEXT, "
                "start_frame INTEGER, end_frame INTEGER, start_time REAL, end_time REAL, "
                "started_at TEXT, ended_at TEXT, peak_probability REAL, record TEXT)"
            )
            self._db.commit()

    def _last_id(self) -> int:
        if not self.path.exists():
            return 0
        last = 0
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                last = max(last, int(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash mid-write: skip it, keep the rest
        return last

    def write(self, record: LogRecord) -> None:
        """Append ``record`` durably."""
        document = record.to_json()
        self._file.write(json.dumps(document) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        if self._db is not None:
            keys = (
                "id",
                "state",
                "class",
                "start_frame",
                "end_frame",
                "start_time",
                "end_time",
                "started_at",
                "ended_at",
                "peak_probability",
            )
            self._db.execute(
                "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [*(document.get(k) for k in keys), json.dumps(document)],
            )
            self._db.commit()

    def close(self) -> None:
        self._file.close()
        if self._db is not None:
            self._db.close()


@dataclass
class WebhookStats:
    sent: int = 0
    failed: int = 0
    retries: int = 0
    dropped: int = 0
    last_error: str | None = None


class Webhook:
    """POSTs records as JSON to ``url`` from a background thread.

    Each record is tried ``attempts`` times, ``backoff`` seconds apart (doubling); one that
    still fails is counted and given up (the log on disk has it). At most ``capacity`` records
    wait; beyond that the newest is counted as dropped rather than blocking.
    """

    def __init__(
        self,
        url: str,
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 5.0,
        capacity: int = 1000,
        token: str | None = None,
    ) -> None:
        self.url, self.attempts, self.backoff, self.timeout = url, attempts, backoff, timeout
        self.token = token
        self.stats = WebhookStats()
        self._queue: queue.Queue[LogRecord | None] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._run, name="vadx-webhook", daemon=True)
        self._thread.start()

    def submit(self, record: LogRecord) -> None:
        """Queue ``record`` to be sent (counted as dropped when too many wait)."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.stats.dropped += 1

    def close(self, timeout: float = 15.0) -> None:
        """Send what is waiting (up to ``timeout`` s), then stop."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while (record := self._queue.get()) is not None:
            self._send(record)

    def _send(self, record: LogRecord) -> None:
        body = json.dumps(record.to_json()).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "vadx-watch"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(self.attempts):
            if attempt:
                self.stats.retries += 1
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if 200 <= response.status < 300:
                        self.stats.sent += 1
                        return
                    self.stats.last_error = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as err:
                self.stats.last_error = str(err)
        self.stats.failed += 1
        if self.stats.failed == 1:  # once: every later failure is counted, not said
            warnings.warn(
                f"the webhook {self.url} did not take a record after {self.attempts} attempts "
                f"({self.stats.last_error}); the log on disk has it, and failures are counted "
                "in metrics.json (webhook.failed)",
                stacklevel=1,
            )
