"""Events in a real database: :class:`EventStore`.

SQLite by default — one file, ``vadx.sqlite`` in the data folder, in WAL mode with full
synchronous writes (an event acknowledged is an event on disk) — or any SQLAlchemy URL
(``postgresql+psycopg://user@host/vadx`` for sites that outgrow one file). The schema is
created and upgraded by Alembic migrations (``vadx/console/migrations``) when the store
opens, so a newer vadx opens an older database and brings it up to date.

Tables:

* ``events`` — every camera's events: class, frames and times, scores, the domain flag, the
  session, why it ended, the model, its kept footage (and the frames and times its clip
  covers) and explanation, and the review state;
* ``cameras`` — cameras added or changed at runtime (the YAML file declares the others);
* ``jobs`` — the upload jobs of ``vadx serve`` (:meth:`EventStore.save_job`), whose detected
  events join the cameras' in ``events`` (with their job and their index in its result), so
  uploads and live events share one list and one review workflow.

Each event is kept with a clip (``events/<id>/clip.mp4`` and ``thumb.png`` under the store's
folder): first the window that decided it, then the seconds around it. Retention
(:meth:`EventStore.prune`) deletes the oldest ended events by age and by the clips' total
size: the row goes first (in its own transaction), then the files, so no row ever points at
missing files; files a crash left without a row are removed when the store opens.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from vadx.console.cameras import CameraConfig, camera_from
from vadx.errors import InputError

if TYPE_CHECKING:
    from vadx.detect import Event

#: the folder of the migrations (Alembic's script location)
MIGRATIONS = Path(__file__).with_name("migrations")
#: the kept clips, under the store's folder
EVENTS_FOLDER = "events"
#: an event's kept footage, in its folder
CLIP = "clip.mp4"

_metadata = sa.MetaData()
CAMERAS = sa.Table(
    "cameras",
    _metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("added_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
EVENTS = sa.Table(
    "events",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("camera", sa.String(64), nullable=False),
    sa.Column("class_name", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("start_frame", sa.Integer, nullable=False),
    sa.Column("end_frame", sa.Integer, nullable=False),
    sa.Column("start_time", sa.Float, nullable=False),
    sa.Column("end_time", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float, nullable=False),
    sa.Column("peak_probability", sa.Float, nullable=False),
    sa.Column("mean_probability", sa.Float, nullable=False),
    sa.Column("out_of_domain", sa.Float, nullable=True),
    sa.Column("session", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(256), nullable=True),
    sa.Column("model_id", sa.String(128), nullable=False),
    sa.Column("footage", sa.String(512), nullable=True),
    sa.Column("reviewed", sa.Boolean, nullable=False),
    sa.Column("reviewed_at", sa.Float, nullable=True),
    sa.Column("explanation", sa.String(512), nullable=True),
    sa.Column("trust", sa.String(16), nullable=True),
    sa.Column("job_id", sa.String(32), nullable=True),
    sa.Column("job_event", sa.Integer, nullable=True),
    sa.Column("footage_start_frame", sa.Integer, nullable=True),
    sa.Column("footage_end_frame", sa.Integer, nullable=True),
    sa.Column("footage_start_time", sa.Float, nullable=True),
    sa.Column("footage_end_time", sa.Float, nullable=True),
    sa.Column("explanation_error", sa.String(512), nullable=True),
    sa.Column("signal", sa.String(16), nullable=False, server_default="classifier"),
    sa.Column("maps", sa.String(512), nullable=True),
    sa.Column("judged_normal", sa.Boolean, nullable=False, server_default=sa.false()),
)
JOBS = sa.Table(
    "jobs",
    _metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("video", sa.String(32), nullable=False),
    sa.Column("video_name", sa.String(256), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("started", sa.Float, nullable=True),
    sa.Column("finished", sa.Float, nullable=True),
)
#: where an event comes from: a live camera, or an uploaded video's detection job
Source = Literal["camera", "upload"]


@dataclass(frozen=True)
class StoredEvent:
    """One event as the store holds it (``state``: ``active`` while it lasts, then
    ``ended``; times ``*_at`` are wall-clock seconds, ``*_time`` the stream's).

    ``footage_*`` say what its ``clip.mp4`` covers, in the same frames and seconds as the event:
    first the window that decided it, then (the event ended) from ``pre_capture`` seconds
    before ``start_time`` to ``post_capture`` after ``end_time``, less where the stream had
    less or ``max_seconds`` cut it. None while nothing is kept."""

    id: int
    camera: str
    class_name: str
    state: str
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    started_at: float
    ended_at: float
    peak_probability: float
    mean_probability: float
    out_of_domain: float | None
    session: int
    reason: str | None
    model_id: str
    footage: str | None
    reviewed: bool
    reviewed_at: float | None
    explanation: str | None = None
    trust: str | None = None
    #: an upload's event: its detection job, and its index in the job's ``result.events``
    job_id: str | None = None
    job_event: int | None = None
    #: ``camera`` (a live event) or ``upload`` (found by an upload's detection job)
    source: Source = "camera"
    footage_start_frame: int | None = None
    footage_end_frame: int | None = None
    footage_start_time: float | None = None
    footage_end_time: float | None = None
    #: why it has no explanation: the explainer failed on it, or was busy with others
    explanation_error: str | None = None
    #: what raised it: ``classifier`` (its class is the classifier's) or ``normality`` (the
    #: camera's normal: ``unusual``), alone or beside each other on one camera
    signal: str = "classifier"
    #: a normality event's anomaly maps over its footage (``map.mp4``, ``map.png``): their
    #: folder, relative to the store's; None while none are kept
    maps: str | None = None
    #: an operator judged it normal for its camera, not an incident (``vadx update-normal
    #: --console`` teaches the camera's normal its clip); only a reviewed event is judged
    judged_normal: bool = False

    def to_json(self) -> dict[str, Any]:
        """The event as the API and MQTT messages carry it."""
        return asdict(self)


@dataclass(frozen=True)
class StoredJob:
    """An upload job as the store mirrors it (``vadx.serve``'s ``job.json`` stays the
    record; times are wall-clock seconds)."""

    id: str
    kind: str
    video: str
    video_name: str
    model: str
    state: str
    progress: float
    error: str | None
    created: float
    started: float | None
    finished: float | None


def sqlite_url(folder: str | Path) -> str:
    """The default database: ``vadx.sqlite`` in ``folder``."""
    return f"sqlite:///{Path(folder).resolve() / 'vadx.sqlite'}"


def judged_normal_clips(
    folder: str | Path, camera: str, url: str | None = None
) -> list[tuple[int, Path]]:
    """``(event id, clip)`` of the events of ``camera`` an operator judged normal whose clip
    is kept, oldest first: read from a console's database (``url``, default the SQLite file of
    its data ``folder``) without changing it, so while the console runs too. A database
    older than judgements has none."""
    folder = Path(folder)
    url = url or sqlite_url(folder)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise InputError(
            f"no console database in {folder}: give the folder the console keeps its data in"
        )
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as error:
        raise InputError(f"cannot use the database {_shown(url)}: {error}") from None
    try:
        with engine.connect() as db:
            columns = {c["name"] for c in sa.inspect(db).get_columns("events")}
            if "judged_normal" not in columns:
                return []
            rows = db.execute(
                sa.select(EVENTS.c.id, EVENTS.c.footage)
                .where(EVENTS.c.camera == camera, EVENTS.c.judged_normal.is_(True))
                .where(EVENTS.c.job_id.is_(None), EVENTS.c.footage.is_not(None))
                .order_by(EVENTS.c.started_at, EVENTS.c.id)
            ).all()
    except (sa.exc.OperationalError, sa.exc.NoSuchTableError) as error:
        raise InputError(f"cannot read the console's events in {_shown(url)}: {error}") from None
    finally:
        engine.dispose()
    clips = [(int(row.id), folder / row.footage / CLIP) for row in rows]
    return [(event, clip) for event, clip in clips if clip.is_file()]


def upgrade(engine: sa.Engine, revision: str = "head") -> str:
    """Bring the database of ``engine`` to the newest schema (or to ``revision``); returns
    its revision."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    with engine.connect() as connection:
        return str(MigrationContext.configure(connection).get_current_revision())


class EventStore:
    """The console's events and runtime cameras in one database (module doc).

    Args:
        folder: where kept clips go (``events/<id>/``), and the SQLite file by default.
        url: a SQLAlchemy URL (default :func:`sqlite_url` of ``folder``).
    """

    def __init__(self, folder: str | Path, url: str | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.url = url or sqlite_url(self.folder)
        sqlite = self.url.startswith("sqlite")
        try:
            self.engine = sa.create_engine(
                self.url, connect_args={"check_same_thread": False} if sqlite else {}
            )
        except (sa.exc.ArgumentError, ImportError) as error:
            raise InputError(f"cannot use the database {_shown(self.url)}: {error}") from None
        if sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._lock = threading.Lock()
        self._open: dict[tuple[str, int], int] = {}  # (camera, engine's alert id) → row id
        try:
            self.revision = upgrade(self.engine)
            self.interrupted = self._end_interrupted()
        except sa.exc.OperationalError as error:  # a server away, a full disk, a read-only file
            raise InputError(f"cannot open the database {_shown(self.url)}: {error.orig}") from None
        self.orphans = self._remove_orphan_clips()

    @property
    def database(self) -> str:
        """The database as messages name it: the SQLite file, or the URL without its
        password."""
        return (
            self.url.removeprefix("sqlite:///")
            if self.url.startswith("sqlite:///")
            else _shown(self.url)
        )

    def close(self) -> None:
        """Release the database's connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------------- events
    def record(self, camera: str, alert: Any, model_id: str) -> StoredEvent:
        """Store an alert of :class:`~vadx.console.engine.CameraHub` (an event ``started``:
        a new row, ``active``; ``ended``: that row, ``ended``), with its signal; returns the
        row. All or nothing: after a failed write (a full disk…) the same alert can be stored
        again."""
        event = alert.event
        values = {
            "signal": alert.signal,
            **_event_values(event),
            "camera": camera,
            "state": "active" if alert.kind == "started" else "ended",
            "started_at": float(alert.started_at),
            "ended_at": float(alert.ended_at),
            "session": int(alert.session),
            "reason": alert.reason,
            "model_id": model_id,
        }
        key = (camera, int(alert.id))
        with self._lock:
            with self.engine.begin() as db:
                row_id = self._open.get(key) if alert.kind == "ended" else None
                if row_id is None:
                    row_id = db.execute(
                        sa.insert(EVENTS).values(**values, reviewed=False)
                    ).inserted_primary_key[0]
                else:
                    db.execute(sa.update(EVENTS).where(EVENTS.c.id == row_id).values(**values))
                stored = _stored(db.execute(sa.select(EVENTS).where(EVENTS.c.id == row_id)).one())
            # only once committed: a write that failed leaves the event as it was
            if alert.kind == "started":
                self._open[key] = stored.id
            else:
                self._open.pop(key, None)
        return stored

    def open_event(self, camera: str, alert_id: int) -> StoredEvent | None:
        """The stored row of an event the engine still has open (None: no such event)."""
        row_id = self._open.get((camera, int(alert_id)))
        return None if row_id is None else self.event(row_id)

    def set_footage(
        self,
        event_id: int,
        folder: str,
        frames: tuple[int, int] | None = None,
        times: tuple[float, float] | None = None,
    ) -> None:
        """Record the folder (relative to the store's) of an event's kept footage: its
        ``clip.mp4`` and ``thumb.png``; and what the clip covers: its first and last frames and
        stream times."""
        frames, times = frames or (None, None), times or (None, None)
        with self.engine.begin() as db:
            db.execute(
                sa.update(EVENTS)
                .where(EVENTS.c.id == event_id)
                .values(
                    footage=folder,
                    footage_start_frame=frames[0],
                    footage_end_frame=frames[1],
                    footage_start_time=times[0],
                    footage_end_time=times[1],
                )
            )

    def set_maps(self, event_id: int, folder: str) -> None:
        """Record the folder (relative to the store's) of a normality event's maps over its
        footage: ``map.mp4`` and ``map.png``."""
        with self.engine.begin() as db:
            db.execute(sa.update(EVENTS).where(EVENTS.c.id == event_id).values(maps=folder))

    def set_explanation(self, event_id: int, folder: str, trust: str | None = None) -> None:
        """Record the folder (relative to the store's) of an event's explanation, and its
        worst trust verdict when it was checked."""
        with self.engine.begin() as db:
            db.execute(
                sa.update(EVENTS)
                .where(EVENTS.c.id == event_id)
                .values(explanation=folder, trust=trust)
            )

    def set_explanation_error(self, event_id: int, reason: str) -> None:
        """Record why an event has no explanation (at most 512 characters)."""
        with self.engine.begin() as db:
            db.execute(
                sa.update(EVENTS)
                .where(EVENTS.c.id == event_id)
                .values(explanation_error=reason[:512])
            )

    def footage_folder(self, event_id: int) -> Path:
        """Where an event's footage (clip and thumbnail) is kept."""
        return self.folder / EVENTS_FOLDER / str(int(event_id))

    def event(self, event_id: int) -> StoredEvent:
        """The event ``event_id`` (:class:`~vadx.errors.InputError` if there is none)."""
        with self.engine.connect() as db:
            row = db.execute(sa.select(EVENTS).where(EVENTS.c.id == event_id)).first()
        if row is None:
            raise InputError(f"no event {event_id}")
        return _stored(row)

    def events(
        self,
        *,
        camera: str | None = None,
        class_name: str | None = None,
        reviewed: bool | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        before_id: int | None = None,
        source: Source | None = None,
        job_id: str | None = None,
        judged_normal: bool | None = None,
    ) -> list[StoredEvent]:
        """Events, newest first, filtered by camera (for an upload's: the video's name),
        class, review state (and whether judged normal), start time (``since`` ≤
        ``started_at`` < ``until``), source (live cameras or uploads) and upload job;
        ``before_id`` pages on."""
        query = sa.select(EVENTS).order_by(EVENTS.c.started_at.desc(), EVENTS.c.id.desc())
        for column, value in (
            (EVENTS.c.camera, camera),
            (EVENTS.c.class_name, class_name),
            (EVENTS.c.reviewed, reviewed),
            (EVENTS.c.job_id, job_id),
            (EVENTS.c.judged_normal, judged_normal),
        ):
            if value is not None:
                query = query.where(column == value)
        if source is not None:
            uploaded = EVENTS.c.job_id.is_not(None)
            query = query.where(uploaded if source == "upload" else sa.not_(uploaded))
        if since is not None:
            query = query.where(EVENTS.c.started_at >= since)
        if until is not None:
            query = query.where(EVENTS.c.started_at < until)
        if before_id is not None:
            query = query.where(EVENTS.c.id < before_id)
        with self.engine.connect() as db:
            return [_stored(row) for row in db.execute(query.limit(limit))]

    def review(
        self, event_id: int, reviewed: bool = True, judged_normal: bool | None = None
    ) -> StoredEvent:
        """Mark an event reviewed (or not), and judged normal for its camera (or not; None:
        as it was). An event not reviewed is not judged: unmarking it clears the judgement,
        and judging it normal marks it reviewed. Returns it."""
        self.event(event_id)
        values: dict[str, Any] = {"reviewed": reviewed or bool(judged_normal)}
        values["reviewed_at"] = time.time() if values["reviewed"] else None
        if not values["reviewed"]:
            values["judged_normal"] = False
        elif judged_normal is not None:
            values["judged_normal"] = judged_normal
        with self.engine.begin() as db:
            db.execute(sa.update(EVENTS).where(EVENTS.c.id == event_id).values(**values))
        return self.event(event_id)

    # ---------------------------------------------------------------------- upload jobs
    def save_job(
        self,
        job: StoredJob,
        events: Sequence[Event] = (),
        *,
        model_id: str = "",
        reviews: Mapping[int, float] | None = None,
        signal: str = "classifier",
    ) -> list[StoredEvent]:
        """Keep upload job ``job`` and, once it has them, its detected ``events`` (in the
        order of its result; each an ``ended`` event of ``camera`` = the video's name), with
        their review state: ``reviews`` maps an event's index to when it was marked reviewed;
        ``signal``: what kind of model found them (``classifier`` or ``normality``).
        Saving again updates the rows in place. Returns the job's events."""
        reviews = reviews or {}
        row = {k: v for k, v in asdict(job).items() if k != "id"}
        found_at = job.finished or job.created
        with self._lock, self.engine.begin() as db:
            if db.execute(sa.select(JOBS.c.id).where(JOBS.c.id == job.id)).first() is None:
                db.execute(sa.insert(JOBS).values(id=job.id, **row))
            else:
                db.execute(sa.update(JOBS).where(JOBS.c.id == job.id).values(**row))
            known = dict(
                db.execute(
                    sa.select(EVENTS.c.job_event, EVENTS.c.id).where(EVENTS.c.job_id == job.id)
                ).all()
            )
            for index, event in enumerate(events):
                reviewed_at = reviews.get(index)
                review = {"reviewed": reviewed_at is not None, "reviewed_at": reviewed_at}
                if index in known:
                    db.execute(sa.update(EVENTS).where(EVENTS.c.id == known[index]).values(review))
                    continue
                db.execute(
                    sa.insert(EVENTS).values(
                        **_event_values(event),
                        **review,
                        camera=job.video_name[:64],
                        state="ended",
                        started_at=found_at,
                        ended_at=found_at,
                        session=0,
                        reason="found in an upload",
                        model_id=model_id,
                        signal=signal,
                        job_id=job.id,
                        job_event=index,
                    )
                )
        return self.events(job_id=job.id, limit=max(len(events), len(known), 1))

    def forget_job(self, job_id: str) -> None:
        """Forget an upload job and its events (their rows first, then their footage)."""
        with self._lock, self.engine.begin() as db:
            ids = db.execute(sa.select(EVENTS.c.id).where(EVENTS.c.job_id == job_id)).scalars()
            ids = list(ids)
            db.execute(sa.delete(EVENTS).where(EVENTS.c.job_id == job_id))
            db.execute(sa.delete(JOBS).where(JOBS.c.id == job_id))
        for event_id in ids:
            shutil.rmtree(self.footage_folder(event_id), ignore_errors=True)

    def jobs(self) -> list[StoredJob]:
        """The upload jobs kept, oldest first."""
        with self.engine.connect() as db:
            rows = db.execute(sa.select(JOBS).order_by(JOBS.c.created, JOBS.c.id)).all()
        return [StoredJob(**row._asdict()) for row in rows]

    # ------------------------------------------------------------------------ cameras
    def save_camera(self, camera: CameraConfig) -> None:
        """Keep a camera added or changed at runtime, so that a restart runs it again."""
        now = time.time()
        document = json.dumps(camera.model_dump(exclude={"name"}), sort_keys=True)
        with self.engine.begin() as db:
            found = db.execute(sa.select(CAMERAS.c.name).where(CAMERAS.c.name == camera.name))
            if found.first() is None:
                db.execute(
                    sa.insert(CAMERAS).values(
                        name=camera.name, config=document, added_at=now, updated_at=now
                    )
                )
            else:
                db.execute(
                    sa.update(CAMERAS)
                    .where(CAMERAS.c.name == camera.name)
                    .values(config=document, updated_at=now)
                )

    def forget_camera(self, name: str) -> None:
        """Forget a runtime camera (its events stay)."""
        with self.engine.begin() as db:
            db.execute(sa.delete(CAMERAS).where(CAMERAS.c.name == name))

    def cameras(self) -> list[CameraConfig]:
        """The cameras added or changed at runtime, in the order they were first added."""
        with self.engine.connect() as db:
            rows = db.execute(sa.select(CAMERAS).order_by(CAMERAS.c.added_at)).all()
        return [
            camera_from(row.name, json.loads(row.config), f"database camera {row.name}")
            for row in rows
        ]

    # ---------------------------------------------------------------------- retention
    def prune(
        self, *, days: float | None = None, max_bytes: int | None = None, now: float | None = None
    ) -> list[int]:
        """Delete the oldest ended events older than ``days``, then more of the oldest while
        the kept clips take more than ``max_bytes``; returns the ids deleted. Each row goes
        before its files (module doc). Uploads' events go with their job
        (:meth:`forget_job`), so they are neither deleted nor counted here."""
        now = time.time() if now is None else now
        deleted: list[int] = []
        query = (
            sa.select(EVENTS.c.id, EVENTS.c.started_at)
            .where(EVENTS.c.state == "ended", EVENTS.c.job_id.is_(None))
            .order_by(EVENTS.c.started_at, EVENTS.c.id)
        )
        with self.engine.connect() as db:
            ended = db.execute(query).all()
        sizes = {row.id: _folder_bytes(self.footage_folder(row.id)) for row in ended}
        with self.engine.connect() as db:  # an upload's clips go with its job, not here
            uploads = {
                str(i)
                for i in db.execute(
                    sa.select(EVENTS.c.id).where(EVENTS.c.job_id.is_not(None))
                ).scalars()
            }
        total = sum(_folder_bytes(p) for p in self._footage_folders() if p.name not in uploads)
        for row in ended:
            too_old = days is not None and row.started_at < now - days * 86400
            too_big = max_bytes is not None and total > max_bytes
            if not (too_old or too_big):
                break
            self._delete(row.id)
            deleted.append(row.id)
            total -= sizes[row.id]
        return deleted

    def _delete(self, event_id: int) -> None:
        with self.engine.begin() as db:
            db.execute(sa.delete(EVENTS).where(EVENTS.c.id == event_id))
        shutil.rmtree(self.footage_folder(event_id), ignore_errors=True)

    def _footage_folders(self) -> list[Path]:
        root = self.folder / EVENTS_FOLDER
        return [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []

    def _remove_orphan_clips(self) -> list[Path]:
        """Clip folders with no event row (a crash between a row's deletion and its files')."""
        with self.engine.connect() as db:
            ids = {str(i) for i in db.execute(sa.select(EVENTS.c.id)).scalars()}
        orphans = [p for p in self._footage_folders() if p.name not in ids]
        for path in orphans:
            shutil.rmtree(path, ignore_errors=True)
        return orphans

    def _end_interrupted(self) -> int:
        """Events left active by a vadx that stopped without ending them: ended now, with
        the reason."""
        with self.engine.begin() as db:
            return db.execute(
                sa.update(EVENTS)
                .where(EVENTS.c.state == "active")
                .values(state="ended", reason="vadx stopped while the event lasted")
            ).rowcount


def _event_values(event: Event) -> dict[str, str | int | float | None]:
    """An event's own columns: class, frames, times and scores."""
    return {
        "class_name": event.class_name,
        "start_frame": int(event.start_frame),
        "end_frame": int(event.end_frame),
        "start_time": float(event.start_time),
        "end_time": float(event.end_time),
        "peak_probability": float(event.peak_probability),
        "mean_probability": float(event.mean_probability),
        "out_of_domain": None if event.out_of_domain is None else float(event.out_of_domain),
    }


def _stored(row: sa.Row) -> StoredEvent:
    values = row._asdict()
    values["reviewed"] = bool(values["reviewed"])
    values["judged_normal"] = bool(values["judged_normal"])
    values["source"] = "camera" if values["job_id"] is None else "upload"
    return StoredEvent(**values)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _shown(url: str) -> str:
    """A URL without its password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(not a database URL)"
