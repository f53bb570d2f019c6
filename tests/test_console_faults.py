"""The console's faults (issue 30, item 6): a full disk stops the recording with a clear status
while the cameras go on, the events wait in memory and are stored when writing works again;
and a server killed (SIGKILL) during an event ends it as interrupted at its next start, with
every event recorded before still there."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.test_console import camera, wait_for
from tests.test_console_serve import served
from tests.test_console_store import disk_full
from tests.test_watch_engine import thresholds
from vadx.console import recording
from vadx.console.recording import Recording, RecordingStatus
from vadx.detect import DetectConfig
from vadx.serve import create_app
from vadx.video import encode

NO_SPACE = os.strerror(errno.ENOSPC)


@contextlib.contextmanager
def no_space_for_files(target):
    """``atomic_path`` on a full disk: creating the file fails."""
    raise OSError(errno.ENOSPC, NO_SPACE, str(target))
    yield  # pragma: no cover


@pytest.fixture
def quick_retries(monkeypatch):
    """Failed writes tried again every 0.1–0.2 s, statuses every 0.2 s (not 1–30 s, 5 s)."""
    monkeypatch.setattr(recording, "RETRY_FIRST", 0.1)
    monkeypatch.setattr(recording, "RETRY_MOST", 0.2)
    monkeypatch.setattr("vadx.console.service.STATUS_EVERY", 0.2)


def said(caught, text: str) -> list[str]:
    return [str(w.message) for w in caught if text in str(w.message)]


def test_a_full_disk_stops_the_recording_and_the_cameras_go_on(
    streets, stretched, tmp_path, monkeypatch, quick_retries
):
    fire, fight = streets
    settings = thresholds(stretched, fire, DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)
    looped = {"loop": True, "pace": True}
    cameras = [
        camera(name, street, settings, **looped).model_copy(update={"model": "street"})
        for name, street in (("door", fire), ("bay", fight))
    ]
    server = served(tmp_path, stretched, cameras)
    console, client = server.console, TestClient(create_app(server))
    store, hub = console.store, console.hub

    def stored(camera: str | None = None) -> list:
        return store.events(camera=camera, limit=1000)

    def detected() -> int:  # events the cameras started, stored or not
        return sum(s.events for s in hub.status())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as the command line shows warnings
        console.start()
        try:
            wait_for(lambda: any(e.footage for e in stored()), 30)
            assert (
                console.recording.status.state == "recording" and not console.recording.status.lost
            )
            assert client.get("/api/health").json()["recording"] == "recording"

            # 1. no room for files: the clips wait, the events' rows do not
            atomic_path = encode.atomic_path
            monkeypatch.setattr(encode, "atomic_path", no_space_for_files)
            wait_for(lambda: console.recording.status.state == "stopped", 30)
            status = client.get("/api/recording").json()
            assert status["reason"].startswith(f"disk full — {store.folder / 'events'}")
            assert status["reason"].endswith(f": {NO_SPACE}") and status["since"] > 0
            before = {name: len(stored(name)) for name in ("door", "bay")}
            wait_for(lambda: all(len(stored(n)) > before[n] + 1 for n in before), 30)
            assert all(s.state == "running" for s in hub.status())  # both cameras go on
            assert console.recording.status.waiting >= 2  # their clips, in memory
            assert client.get("/api/health").json()["recording"] == "stopped"
            with client.stream("GET", "/api/live") as live:  # the page is told
                data = next(x for x in live.iter_lines() if '"type": "status"' in x)
            assert '"state": "stopped"' in data and "disk full" in data
            monkeypatch.setattr(encode, "atomic_path", atomic_path)  # room again
            wait_for(lambda: console.recording.status.state == "recording", 30)
            wait_for(lambda: all(e.footage for e in stored()), 30)  # the clips that waited
            assert all((store.folder / e.footage / "clip.mp4").is_file() for e in stored())

            # 2. the database full: the rows wait in memory, detection goes on
            with disk_full(store.engine):
                wait_for(lambda: console.recording.status.state == "stopped", 30)
                reason = console.recording.status.reason
                assert reason == f"disk full — {store.database}: database or disk is full"
                rows, started = len(stored()), detected()
                wait_for(lambda: detected() >= started + 2, 30)  # both cameras still analysed
                assert len(stored()) == rows and console.recording.status.waiting >= 2
                review = client.post(f"/api/events/{rows}/review", json={"reviewed": True})
                assert review.status_code == 503 and "disk full" in review.json()["error"]
                new = {"name": "yard", "source": str(fire), "model": "street"}
                assert client.post("/api/cameras", json=new).status_code == 503
                assert hub.names == ["door", "bay"]  # not kept, so not run either
            wait_for(lambda: console.recording.status.state == "recording", 30)
            wait_for(lambda: len(stored()) == detected(), 30)  # every event that waited
        finally:
            console.close()
            server.jobs.close()
    assert len(said(caught, "recording stopped: disk full")) == 2  # once per outage
    assert len(said(caught, "recording resumed after")) == 2
    assert console.recording.status.lost == 0
    ids = [e.id for e in stored()]
    assert len(ids) == len(set(ids)) == detected()
    assert all(e.state == "ended" and e.footage for e in stored())


def test_writes_wait_within_bounds_and_what_cannot_be_stored_is_said(monkeypatch, quick_retries):
    monkeypatch.setattr(recording, "MOST_WAITING", 3)
    state = Recording("vadx.sqlite")
    writer = state.writer("clips")
    full, done = [True], []

    def write(number: int) -> None:
        if full[0]:
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), f"/data/{number}.mp4")
        done.append(number)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        assert [writer.submit(lambda n=n: write(n)) for n in range(4)] == [True] * 3 + [False]
        wait_for(lambda: state.status.state == "stopped")
        assert state.status.reason == "disk full — /data/0.mp4: " + os.strerror(errno.EDQUOT)
        assert (state.status.waiting, state.status.lost) == (3, 1)
        full[0] = False
        wait_for(lambda: state.status == RecordingStatus(lost=1))
        assert done == [0, 1, 2]  # in order, once writing works again
        full[0] = True
        writer.submit(lambda: write(9))
        state.close(timeout=0.3)  # still failing: lost, and said
    assert done == [0, 1, 2] and state.status.lost == 2
    assert said(caught, "recording stopped: disk full") and said(caught, "recording resumed")
    (lost,) = said(caught, "were not stored before vadx stopped")
    assert lost.startswith("1 write(s)") and "(disk full — /data/9.mp4: Disk quota" in lost


def test_retention_the_database_refuses_is_tried_again_and_the_statuses_go_on(
    tmp_path, quick_retries
):
    from tests.test_console_store import alert
    from vadx.console.service import Console, Retention

    console = Console([], tmp_path, retention=Retention(days=1), explain=False)
    old = console.store.record("door", alert(1, "started", at=1000.0), "sha256:a")
    console.store.record("door", alert(1, "ended", at=1000.0), "sha256:a")  # from 1970: pruned
    with warnings.catch_warnings(record=True), console.listen() as inbox:
        with disk_full(console.store.engine):
            console.start()
            wait_for(lambda: console.recording.status.state == "stopped")
            reason = console.recording.status.reason
            assert reason == f"disk full — {console.store.database}: database or disk is full"
            states = [inbox.get(timeout=5).recording.state for _ in range(4)]
            assert states[1:] == ["stopped"] * 3  # the housekeeping thread lives on
        wait_for(lambda: console.recording.status.state == "recording")
        assert console.store.events() == [] and old.id  # the old event pruned after all
        console.close()


def test_what_fails_after_an_event_is_stored_does_not_store_it_again(
    streets, stretched, tmp_path, monkeypatch, quick_retries
):
    from vadx.console import service

    def no_more_processes(*args, **kwargs):
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))  # fork: resource unavailable

    monkeypatch.setattr(service, "AlertExplainer", no_more_processes)
    fire, _ = streets
    settings = thresholds(stretched, fire, DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)
    door = camera("door", fire, settings).model_copy(update={"model": "street"})
    server = served(tmp_path, stretched, [door], explain=True)
    console = server.console.start()
    try:
        wait_for(lambda: console.hub.status()[0].state == "ended")
        wait_for(
            lambda: all(e.footage for e in console.store.events()) and not len(console._events)
        )
        events = console.store.events()
        assert len(events) == console.hub.status()[0].events >= 1  # each stored once
        assert all(e.state == "ended" for e in events)
        assert console.recording.status.state == "recording"  # not the disk: no outage
    finally:
        console.close()
        server.jobs.close()


# ------------------------------------------------------------------------ kill -9 mid-event
def _children(pid: int) -> set[int]:
    """The processes ``pid`` started (its explainer worker, multiprocessing's tracker)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found.update(int(p) for p in task.read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited


def _rows_at_the_kill(data: Path, copy: Path) -> dict[int, dict]:
    """The events the killed server's database holds, read from a copy of its files (the
    database, its WAL and shared memory) so that the next start finds them untouched."""
    import sqlite3

    copy.mkdir()
    for path in (data / "console").glob("vadx.sqlite*"):
        shutil.copy(path, copy / path.name)
    with contextlib.closing(sqlite3.connect(copy / "vadx.sqlite")) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM events")]
    return {r["id"]: {**r, "reviewed": bool(r["reviewed"])} for r in rows}


def test_a_server_killed_during_an_event_ends_it_as_interrupted_at_its_next_start(
    streets, stretched, tmp_path
):
    import httpx

    from tests.streams import free_port
    from vadx.models import save_model

    fire, _ = streets
    save_model(stretched, tmp_path / "street")
    always = DetectConfig(stride=2, step=1, on=0.0, off=0.0, domain="off")  # an event per pass
    door = camera("door", fire, always, loop=True, pace=True)  # a camera: 1.7 s a pass
    document = {"door": {**door.model_dump(exclude={"name"}), "model": "street"}}
    (tmp_path / "cameras.yaml").write_text(json.dumps({"cameras": document}))  # YAML 1.2
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/"
    command = [sys.executable, "-m", "vadx", "serve", str(tmp_path / "street"), "--port", str(port)]
    command += ["--cameras", str(tmp_path / "cameras.yaml"), "--data-dir", str(tmp_path / "data")]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
    }
    logs: list = []

    def serve(number: int) -> subprocess.Popen:
        logs.append(open(tmp_path / f"serve-{number}.log", "w"))  # noqa: SIM115 (closed below)
        return subprocess.Popen(command, stdout=logs[-1], stderr=subprocess.STDOUT, env=env)

    def answer(path: str):
        try:
            return httpx.get(url + path, timeout=5).json()
        except httpx.TransportError:
            return None

    def events() -> list[dict]:
        return answer("events?limit=1000") or []

    def fresh_event() -> bool:  # one started less than 0.6 s ago: it lasts a second more
        newest = events()[:1]
        return (
            bool(newest)
            and newest[0]["state"] == "active"
            and (time.time() - newest[0]["started_at"] < 0.6)
        )

    def stored(event: dict) -> dict:  # as the row holds it (``source`` is worked out)
        return {k: v for k, v in event.items() if k != "source"}

    first, second = serve(1), None
    try:
        # events ended with their clips, then one going on: kill the server in its middle
        wait_for(lambda: any(e["footage"] and e["state"] == "ended" for e in events()), 60)
        wait_for(fresh_event, 30)
        workers = _children(first.pid)  # its explainer process, multiprocessing's tracker
        first.kill()  # SIGKILL: no exit handler runs
        first.wait(10)
        at_kill = _rows_at_the_kill(tmp_path / "data", tmp_path / "at-kill")
        lasting = [e for e in at_kill.values() if e["state"] == "active"]
        kept = [e for e in at_kill.values() if e["state"] == "ended"]
        assert workers and len(lasting) == 1 and any(e["footage"] for e in kept)

        second = serve(2)  # on the same data folder
        wait_for(lambda: answer("health") is not None, 60)
        after = {e["id"]: e for e in events()}
        assert sorted(after) == sorted(at_kill)  # every event is still there
        for event in lasting:  # ended as interrupted, as it was otherwise
            interrupted = after[event["id"]]
            assert interrupted["state"] == "ended"
            assert interrupted["reason"] == "vadx stopped while the event lasted"
            unchanged = {
                k: v for k, v in stored(interrupted).items() if k not in ("state", "reason")
            }
            assert unchanged.items() <= event.items()
        for event in kept:  # as they were, with their clips
            assert stored(after[event["id"]]).items() <= event.items()
            if event["footage"]:
                clip = httpx.get(f"{url}events/{event['id']}/files/clip.mp4", timeout=5)
                assert clip.status_code == 200 and len(clip.content) > 1000
        # and it serves again: the camera runs, its new events are stored
        wait_for(lambda: max(e["id"] for e in events()) > max(after), 30)
        assert answer("cameras")[0]["status"]["state"] == "running"
        workers |= _children(second.pid)
        second.kill()  # (quicker than a stop, which finishes the explanations queued)
        second.wait(10)
        # a killed server's explainer ends with its job in hand: no orphan is left behind
        wait_for(lambda: not any(_alive(p) for p in workers), 20)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        for log in logs:
            log.close()
