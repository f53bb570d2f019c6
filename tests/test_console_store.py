"""The console's event store (issue 30): events and runtime cameras in SQLite (WAL) and in a
real PostgreSQL server the tests start, schema by Alembic migrations, review state, retention
by age and size with nothing left half-deleted, and events a stopped vadx left open."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.streams import free_port
from vadx.console.cameras import CameraConfig
from vadx.console.store import CLIP, EventStore, judged_normal_clips, sqlite_url, upgrade
from vadx.detect import Event
from vadx.errors import InputError
from vadx.watch.engine import Alert

#: the newest schema (the last migration)
HEAD = "0008"
POSTGRES_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


def alert(number, kind, start=10, end=20, at=1000.0, name="fire", reason=None) -> Alert:
    event = Event(start, end, start / 25, end / 25, name, 0.9, 0.7, 0.25 if kind else None)
    return Alert(number, kind, event, at, at + (end - start) / 25, 0, reason)


def fill(store: EventStore) -> None:
    """door: a fire (ended) and a fight (still on); bay: a fire, ended at 2000 s."""
    store.record("door", alert(1, "started", at=1000.0), "sha256:a")
    store.record("door", alert(1, "ended", end=40, at=1000.0, reason="score"), "sha256:a")
    store.record("door", alert(2, "started", 50, 60, at=1500.0, name="fight"), "sha256:a")
    store.record("bay", alert(1, "started", at=2000.0), "sha256:b")
    store.record("bay", alert(1, "ended", end=30, at=2000.0, reason="stream ended"), "sha256:b")


def check_events(store: EventStore) -> None:
    events = store.events()
    assert [(e.camera, e.class_name, e.state) for e in events] == [
        ("bay", "fire", "ended"),
        ("door", "fight", "active"),
        ("door", "fire", "ended"),
    ]  # newest first
    fire = events[2]
    assert (fire.start_frame, fire.end_frame, fire.reason, fire.model_id) == (
        10,
        40,
        "score",
        "sha256:a",
    )
    assert fire.started_at == 1000.0 and fire.ended_at == pytest.approx(1001.2)
    assert fire.out_of_domain == 0.25 and fire.reviewed is False
    assert [e.id for e in store.events(camera="door")] == [events[1].id, fire.id]
    assert [e.camera for e in store.events(class_name="fire")] == ["bay", "door"]
    assert [e.id for e in store.events(since=1500, until=2000)] == [events[1].id]
    assert [e.id for e in store.events(limit=1, before_id=events[0].id)] == [events[1].id]
    reviewed = store.review(fire.id)
    assert reviewed.reviewed and reviewed.reviewed_at is not None
    assert [e.id for e in store.events(reviewed=True)] == [fire.id]
    assert store.review(fire.id, False).reviewed_at is None
    # judged normal for its camera: reviewed too; unmarked reviewed: judged no more
    assert fire.judged_normal is False
    judged = store.review(fire.id, False, judged_normal=True)
    assert judged.reviewed and judged.reviewed_at is not None and judged.judged_normal
    assert [e.id for e in store.events(judged_normal=True)] == [fire.id]
    assert store.review(fire.id).judged_normal  # reviewed again: the judgement stays
    assert not store.review(fire.id, True, judged_normal=False).judged_normal
    store.review(fire.id, judged_normal=True)
    cleared = store.review(fire.id, False)
    assert not cleared.reviewed and not cleared.judged_normal
    assert store.events(judged_normal=True) == []
    with pytest.raises(InputError, match="no event 999"):
        store.review(999)


def test_events_are_stored_found_and_reviewed(tmp_path):
    store = EventStore(tmp_path)
    assert store.revision == HEAD and store.url.endswith("vadx.sqlite")
    fill(store)
    check_events(store)
    database = sqlite3.connect(tmp_path / "vadx.sqlite")
    assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert database.execute("SELECT version_num FROM alembic_version").fetchone() == (HEAD,)
    store.close()


def test_a_restart_ends_the_events_left_open_and_keeps_the_rest(tmp_path):
    store = EventStore(tmp_path)
    fill(store)
    store.close()
    again = EventStore(tmp_path)  # as after a crash: the fight never ended
    assert again.interrupted == 1 and again.revision == HEAD
    fight = again.events(class_name="fight")[0]
    assert fight.state == "ended" and fight.reason == "vadx stopped while the event lasted"
    assert len(again.events()) == 3


def test_retention_deletes_the_oldest_rows_before_their_files(tmp_path):
    store = EventStore(tmp_path)
    fill(store)
    ids = {e.camera + e.class_name: e.id for e in store.events()}
    for event_id, size in ((ids["doorfire"], 3000), (ids["bayfire"], 2000)):
        folder = store.footage_folder(event_id)
        folder.mkdir(parents=True)
        (folder / "clip.mp4").write_bytes(b"x" * size)
        store.set_footage(event_id, f"events/{event_id}")
    assert store.event(ids["doorfire"]).footage == f"events/{ids['doorfire']}"
    # nothing old enough, and within 6000 bytes: nothing goes
    assert store.prune(days=1, max_bytes=6000, now=2000 + 3600) == []
    # 5000 bytes over a cap of 2500: the oldest ended event goes, then the size holds
    assert store.prune(max_bytes=2500) == [ids["doorfire"]]
    assert not store.footage_folder(ids["doorfire"]).exists()
    # by age: older than a day at now; the active fight is never pruned
    assert store.prune(days=1, now=2000 + 86400 + 1) == [ids["bayfire"]]
    assert [e.class_name for e in store.events()] == ["fight"]
    # a crash between a row's deletion and its files': the files go when the store opens
    orphan = store.footage_folder(12345)
    orphan.mkdir(parents=True)
    store.close()
    assert EventStore(tmp_path).orphans == [orphan] and not orphan.exists()


def test_upload_jobs_keep_their_events_beside_the_cameras_and_out_of_retention(tmp_path):
    from vadx.console.store import StoredJob

    store = EventStore(tmp_path)
    fill(store)
    job = StoredJob("a1", "detect", "v1", "lobby.mp4", "m", "running", 0.5, None, 10.0, 11.0, None)
    assert store.save_job(job) == [] and store.jobs() == [job]
    done = StoredJob("a1", "detect", "v1", "lobby.mp4", "m", "done", 1.0, None, 10.0, 11.0, 12.0)
    found = [alert(1, "started", 5, 9).event, alert(2, "started", 30, 44, name="fight").event]
    events = store.save_job(done, found, model_id="sha256:m", reviews={1: 50.0})
    assert store.jobs() == [done]
    assert sorted((e.job_event, e.start_frame, e.class_name, e.reviewed) for e in events) == [
        (0, 5, "fire", False),
        (1, 30, "fight", True),
    ]
    upload = {e.job_event: e for e in events}
    assert (upload[1].camera, upload[1].source, upload[1].state, upload[1].reviewed_at) == (
        "lobby.mp4",
        "upload",
        "ended",
        50.0,
    )
    assert (upload[1].started_at, upload[1].model_id, upload[1].job_id) == (12.0, "sha256:m", "a1")
    # saved again (a review undone): the same rows, no copies
    again = store.save_job(done, found, model_id="sha256:m", reviews={})
    assert sorted(e.id for e in again) == sorted(e.id for e in events)
    assert not any(e.reviewed for e in again) and len(store.events()) == 5
    assert {e.source for e in store.events(source="camera")} == {"camera"}
    assert len(store.events(source="camera")) == 3 and len(store.events(source="upload")) == 2
    # retention leaves uploads to their jobs: neither deleted nor counted
    folder = store.footage_folder(upload[0].id)
    folder.mkdir(parents=True)
    (folder / "clip.mp4").write_bytes(b"x" * 9000)
    ended = [e.id for e in reversed(store.events(source="camera")) if e.state == "ended"]
    assert len(ended) == 2 and store.prune(days=0.001, max_bytes=100, now=10**6) == ended
    assert len(store.events(source="upload")) == 2 and folder.exists()
    store.forget_job("a1")
    assert store.events(source="upload") == [] and store.jobs() == [] and not folder.exists()


def test_runtime_cameras_survive_a_restart(tmp_path):
    store = EventStore(tmp_path)
    door = CameraConfig(name="door", source="rtsp://x/1", model="/m", detect={"on": 0.7})
    store.save_camera(door)
    store.save_camera(CameraConfig(name="bay", source="/v.mp4", model="/m", loop=True))
    store.save_camera(door.model_copy(update={"enabled": False}))  # changed in place
    store.close()
    again = EventStore(tmp_path)
    assert [(c.name, c.enabled) for c in again.cameras()] == [("door", False), ("bay", True)]
    assert again.cameras()[0].detection.on == 0.7
    again.forget_camera("door")
    assert [c.name for c in again.cameras()] == ["bay"]


def full_disk(cursor, statement, parameters, context) -> None:
    """A ``do_execute`` listener: every write fails as SQLite's writes fail on a full disk."""
    if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
        raise sqlite3.OperationalError("database or disk is full")


@contextlib.contextmanager
def disk_full(engine: sa.Engine):
    """Every write to ``engine``'s database fails (:func:`full_disk`) in the block."""
    sa.event.listen(engine, "do_execute", full_disk)
    try:
        yield
    finally:
        sa.event.remove(engine, "do_execute", full_disk)


def test_a_write_that_failed_changes_nothing_and_can_be_tried_again(tmp_path):
    store = EventStore(tmp_path)
    first = store.record("door", alert(1, "started"), "sha256:a")
    for attempt in (alert(1, "ended", end=30, reason="score"), alert(2, "started", 40, 50)):
        with disk_full(store.engine), pytest.raises(sa.exc.OperationalError, match="disk is full"):
            store.record("door", attempt, "sha256:a")
    # tried again: the event that lasted ends (its own row), the new one starts
    ended = store.record("door", alert(1, "ended", end=30, reason="score"), "sha256:a")
    started = store.record("door", alert(2, "started", 40, 50), "sha256:a")
    assert (ended.id, ended.state, ended.end_frame) == (first.id, "ended", 30)
    assert [(e.id, e.state) for e in store.events()] == [
        (started.id, "active"),
        (first.id, "ended"),
    ]


def test_a_database_that_cannot_be_written_at_start_is_one_clear_error(tmp_path):
    store = EventStore(tmp_path)
    store.record("door", alert(1, "started"), "sha256:a")  # left open: ended at the next start
    store.close()
    original = sa.create_engine

    def create_engine(*args, **kwargs):
        engine = original(*args, **kwargs)
        sa.event.listen(engine, "do_execute", full_disk)
        return engine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sa, "create_engine", create_engine)
        with pytest.raises(InputError, match=r"cannot open the database .*disk is full"):
            EventStore(tmp_path)
    assert EventStore(tmp_path).interrupted == 1  # room again: it opens, and ends the event


def test_a_bad_database_url_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="cannot use the database"):
        EventStore(tmp_path, "nosuchdb://x")
    with pytest.raises(
        InputError, match=r"cannot open the database postgresql\+psycopg://u:\*\*\*"
    ):
        EventStore(tmp_path, "postgresql+psycopg://u:secret@127.0.0.1:1/none")


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of Debian's package, on a Unix socket in a temporary folder (of
    its own under /tmp: as root, the server runs as the ``postgres`` user, who cannot enter
    pytest's private folders)."""
    if POSTGRES_BIN is None:
        pytest.fail("PostgreSQL is not installed: make services installs it")
    root = Path(tempfile.mkdtemp(prefix="vadx-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    run = lambda *argv: subprocess.run(  # noqa: E731
        [*as_postgres, *argv], check=True, capture_output=True, timeout=120
    )
    run(str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", "vadx", "--auth=trust")
    options = f"-k {sockets} -p {port} -c listen_addresses='' -c fsync=off"
    log = str(root / "server.log")  # the server's output: not our pipes, which it would hold
    run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
    try:
        run(
            str(POSTGRES_BIN / "createdb"),
            "-h",
            str(sockets),
            "-p",
            str(port),
            "-U",
            "vadx",
            "vadx",
        )
        yield f"postgresql+psycopg://vadx@/vadx?host={sockets}&port={port}"
    finally:
        run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")


def test_the_same_store_on_a_real_postgresql_server(postgres, tmp_path):
    store = EventStore(tmp_path, postgres)
    assert store.revision == HEAD and not (tmp_path / "vadx.sqlite").exists()
    fill(store)
    check_events(store)
    assert upgrade(store.engine) == HEAD  # again: nothing to do
    store.close()
    again = EventStore(tmp_path, postgres)
    assert again.interrupted == 1 and len(again.events()) == 3
    again.close()


def test_an_older_database_is_brought_up_to_date_with_its_events(tmp_path):
    import sqlalchemy as sa

    from vadx.console.store import sqlite_url

    engine = sa.create_engine(sqlite_url(tmp_path))
    assert upgrade(engine, "0001") == "0001"  # as the first console release left it
    with engine.begin() as db:
        db.execute(
            sa.text(
                "INSERT INTO events (camera, class_name, state, start_frame, end_frame, "
                "start_time, end_time, started_at, ended_at, peak_probability, "
                "mean_probability, session, model_id, reviewed) VALUES ('door', 'fire', "
                "'ended', 1, 9, 0.04, 0.36, 100.0, 100.3, 0.9, 0.7, 0, 'sha256:a', 1)"
            )
        )
    engine.dispose()
    store = EventStore(tmp_path)
    assert store.revision == HEAD  # through every later migration
    (event,) = store.events()
    assert (event.camera, event.reviewed, event.explanation) == ("door", True, None)
    store.set_explanation(event.id, f"events/{event.id}/explanation", "weak")
    kept = store.event(event.id)
    assert (kept.explanation, kept.trust) == (f"events/{event.id}/explanation", "weak")
    assert (kept.source, kept.job_id, kept.job_event, store.jobs()) == ("camera", None, None, [])
    assert (kept.footage_start_frame, kept.footage_end_time) == (None, None)


def test_a_database_of_the_last_release_learns_what_each_clip_covers(tmp_path):
    import sqlalchemy as sa

    from vadx.console.store import sqlite_url

    engine = sa.create_engine(sqlite_url(tmp_path))
    assert upgrade(engine, "0003") == "0003"  # clips were the window, their span not recorded
    with engine.begin() as db:
        db.execute(
            sa.text(
                "INSERT INTO events (camera, class_name, state, start_frame, end_frame, "
                "start_time, end_time, started_at, ended_at, peak_probability, "
                "mean_probability, session, model_id, reviewed, footage) VALUES ('door', "
                "'fire', 'ended', 10, 40, 0.4, 1.6, 100.0, 101.2, 0.9, 0.7, 0, 'sha256:a', 0, "
                "'events/1')"
            )
        )
    engine.dispose()
    store = EventStore(tmp_path)
    assert store.revision == HEAD
    (event,) = store.events()
    assert event.footage == "events/1" and event.to_json()["footage_start_frame"] is None
    assert (event.footage_end_frame, event.footage_start_time, event.footage_end_time) == (
        None,
    ) * 3
    # 3 s before to 3 s after, at 25 fps
    store.set_footage(event.id, "events/1", frames=(0, 115), times=(0.0, 4.6))
    kept = store.event(event.id)
    assert (kept.footage_start_frame, kept.footage_end_frame) == (0, 115)
    assert (kept.footage_start_time, kept.footage_end_time) == (0.0, 4.6)
    store.close()


def test_the_clips_judged_normal_are_read_without_changing_the_database(tmp_path):
    store = EventStore(tmp_path)
    fill(store)
    bay, fight, fire = store.events()
    for event in (bay, fight, fire):
        folder = store.footage_folder(event.id)
        folder.mkdir(parents=True)
        (folder / CLIP).write_bytes(b"clip %d" % event.id)
        store.set_footage(event.id, folder.relative_to(tmp_path).as_posix())
    store.review(fire.id, judged_normal=True)
    store.review(fight.id, judged_normal=True)  # still on: its clip is the window so far
    store.review(bay.id, judged_normal=True)
    store.review(bay.id)  # reviewed again, still judged
    clips = judged_normal_clips(tmp_path, "door")
    assert clips == [
        (fire.id, store.footage_folder(fire.id) / CLIP),
        (fight.id, store.footage_folder(fight.id) / CLIP),
    ]
    assert judged_normal_clips(tmp_path, "bay") == [(bay.id, store.footage_folder(bay.id) / CLIP)]
    assert judged_normal_clips(tmp_path, "yard") == []
    (store.footage_folder(fight.id) / CLIP).unlink()  # its clip gone (retention): not offered
    assert [e for e, _ in judged_normal_clips(tmp_path, "door")] == [fire.id]
    # the console's open event is left open (opening an EventStore would have ended it)
    assert store.event(fight.id).state == "active"
    store.close()
    with pytest.raises(InputError, match="no console database in"):
        judged_normal_clips(tmp_path / "elsewhere", "door")
    old = tmp_path / "old"
    engine = sa.create_engine(sqlite_url(old.mkdir() or old))
    upgrade(engine, "0007")  # before judgements
    engine.dispose()
    assert judged_normal_clips(old, "door") == []


def test_a_review_is_told_and_not_undone_by_a_message_read_before_it(tmp_path):
    from vadx.console.service import Console

    console = Console([], tmp_path, explain=False)
    try:
        stored = console.store.record("door", alert(1, "started"), "sha256:a")
        with console.listen() as inbox:
            read_before = console.store.event(stored.id)  # a writer read the row, then…
            reviewed = console.review(stored.id, judged_normal=True)  # …the operator judged
            console._tell("update", read_before, None)  # …and the writer's message goes out
            messages = [inbox.get_nowait() for _ in range(inbox.qsize())]
        assert reviewed.reviewed and reviewed.judged_normal
        assert [m.kind for m in messages] == ["update", "update"]  # the review is told too
        assert all(m.event.reviewed and m.event.judged_normal for m in messages)
        assert messages[-1].event.reviewed_at == reviewed.reviewed_at
    finally:
        console.close()
