"""The console in ``vadx serve`` (issue 30): cameras managed through the API with their live
status, their events stored, reviewed and played back, live events as Server-Sent Events, and
every event on MQTT through Debian's mosquitto broker, which the test starts."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading

import pytest
from fastapi.testclient import TestClient

from tests.conftest import run_cli
from tests.streams import free_port
from tests.test_console import camera, wait_for
from tests.test_watch_engine import as_tuples, thresholds
from vadx.console.mqtt import MqttSettings
from vadx.console.service import Console
from vadx.detect import DetectConfig, detect
from vadx.quality.trust import VERDICTS, worst_verdict
from vadx.serve import Server, create_app
from vadx.video import VideoReader


@pytest.fixture(scope="module")
def settings(streets, stretched):
    street, model = streets, stretched
    return thresholds(model, street[0], DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)


def served(tmp_path, model, cameras, **options):
    """A server of ``model`` (as ``street``) with a console of ``cameras`` (events not
    explained unless ``explain=True``)."""
    server = Server({"street": model}, tmp_path / "data")
    server.console = Console(
        cameras,
        server.data / "console",
        load=lambda ref: server.models[ref],
        **{"explain": False, **options},
    )
    return server


def test_cameras_and_their_events_through_the_api(streets, stretched, settings, tmp_path):
    street, model = streets, stretched
    fire, fight = street
    door = camera("door", fire, settings).model_copy(update={"model": "street"})
    server = served(tmp_path, model, [door])
    client = TestClient(create_app(server))
    console = server.console.start()
    try:
        wait_for(lambda: console.hub.status()[0].state == "ended")
        (listed,) = client.get("/api/cameras").json()
        assert listed["name"] == "door" and listed["settings"]["model"] == "street"
        assert listed["status"]["state"] == "ended" and listed["status"]["frames"] == 42
        clip = {"pre_capture": 3.0, "post_capture": 3.0, "max_seconds": 20.0}  # the defaults
        assert listed["settings"]["footage"] == clip
        frame = client.get("/api/cameras/door/frame.jpg")  # the grid's picture: its last frame
        assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"
        assert (
            frame.headers["cache-control"] == "no-store" and frame.headers["x-vadx-frame"] == "live"
        )
        # its events: those of detect on the same frames, stored with their clips: 3 s
        # before and after each (the default), here the whole file of 42 frames
        wait_for(lambda: all(whole_file(e) for e in console.store.events()))
        events = client.get("/api/events", params={"camera": "door"}).json()
        expected = detect(model, fire, settings).events
        found = sorted(
            (console.store.event(e["id"]).start_frame, e["id"]) for e in events
        )  # oldest first
        assert len(events) == len(expected) and all(e["state"] == "ended" for e in events)
        stored = [console.store.event(i) for _, i in found]
        assert [(e.start_frame, e.end_frame, e.class_name) for e in stored] == [
            t[:3] for t in as_tuples(expected)
        ]
        first = events[-1]["id"]
        clip = client.get(f"/api/events/{first}/files/clip.mp4")
        assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
        (tmp_path / "clip.mp4").write_bytes(clip.content)
        with VideoReader(tmp_path / "clip.mp4") as video:  # the seconds around the event
            assert video.info.num_frames == 42
        assert (events[-1]["footage_start_time"], events[-1]["footage_end_time"]) == (0.0, 41 / 25)
        assert client.get(f"/api/events/{first}/files/thumb.png").content[:4] == b"\x89PNG"
        # review, and filters
        reviewed = client.post(f"/api/events/{first}/review", json={"reviewed": True}).json()
        assert reviewed["reviewed"] and reviewed["reviewed_at"]
        assert [e["id"] for e in client.get("/api/events?reviewed=true").json()] == [first]
        assert client.get("/api/events?camera=nobody").json() == []
        assert client.get("/api/events/999999").status_code == 404
        assert client.post(f"/api/events/{first}/review", json={"reviewed": 1}).status_code == 422
        # judged normal for its camera (vadx update-normal --console learns its clip)
        judged = {"reviewed": True, "judged_normal": True}
        assert client.post(f"/api/events/{first}/review", json=judged).json()["judged_normal"]
        assert [e["id"] for e in client.get("/api/events?judged_normal=true").json()] == [first]
        contradiction = {"reviewed": False, "judged_normal": True}
        refused = client.post(f"/api/events/{first}/review", json=contradiction)
        assert refused.status_code == 400 and "send reviewed true" in refused.text
        unmarked = client.post(f"/api/events/{first}/review", json={"reviewed": False}).json()
        assert (unmarked["reviewed"], unmarked["judged_normal"]) == (False, False)
        client.post(f"/api/events/{first}/review", json={"reviewed": True})
        # cameras at runtime: add (a served model), refuse, change, remove
        new = {"name": "bay", "source": str(fight), "model": "street", "pace": False}
        added = client.post("/api/cameras", json=new)
        assert added.status_code == 201 and added.json()["status"]["state"] in (
            "starting",
            "running",
            "ended",
        )
        assert client.post("/api/cameras", json=new).status_code == 409
        other = {**new, "name": "yard", "model": "/nowhere"}
        refused = client.post("/api/cameras", json=other)
        assert refused.status_code == 400 and "served model's name" in refused.json()["error"]
        bad = client.post("/api/cameras", json={**new, "name": "yard", "detect": {"on": 2}})
        assert bad.status_code == 400 and "detect: on must be" in bad.json()["error"]
        tight = {**new, "name": "yard", "footage": {"pre_capture": 30, "post_capture": 30}}
        bad = client.post("/api/cameras", json=tight)
        assert (
            bad.status_code == 400
            and "footage: pre_capture + post_capture (60 s) must be less" in (bad.json()["error"])
        )
        changed = client.put(
            "/api/cameras/bay",
            json={"source": str(fight), "model": "street", "enabled": False},
        )
        assert changed.status_code == 200, changed.json()
        assert changed.json()["status"]["state"] == "disabled"
        grey = client.get("/api/cameras/bay/frame.jpg")  # disabled: a placeholder, said so
        assert grey.status_code == 200 and grey.headers["x-vadx-frame"] == "none"
        assert client.delete("/api/cameras/bay").status_code == 204
        assert client.get("/api/cameras/bay").status_code == 404
        assert [c["name"] for c in client.get("/api/cameras").json()] == ["door"]
        assert "/api/cameras" in client.get("/openapi.json").json()["paths"]
    finally:
        console.close()
        server.jobs.close()


def whole_file(event) -> bool:
    """Whether the event's clip is the whole 42-frame street (its window came first)."""
    return (event.footage_start_frame, event.footage_end_frame) == (0, 41)


def test_live_events_arrive_as_server_sent_events(streets, stretched, settings, tmp_path):
    street, model = streets, stretched
    fire, _ = street
    looped = camera("door", fire, settings, loop=True).model_copy(update={"model": "street"})
    server = served(tmp_path, model, [looped])
    client = TestClient(create_app(server))
    seen: list[str] = []
    with client.stream("GET", "/api/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        server.console.start()
        try:
            kinds = set()
            for line in stream.iter_lines():
                seen.append(line)
                if line.startswith("event: "):
                    kinds.add(line.removeprefix("event: "))
                if {"new", "update", "end", "status"} <= kinds and not line:
                    break  # the last kind's message has ended
        finally:
            server.console.close()
    data = [json.loads(x.removeprefix("data: ")) for x in seen if x.startswith("data: ")]
    new = next(d for d in data if d["type"] == "new")
    assert new["event"]["camera"] == "door" and new["event"]["state"] == "active"
    update = next(d for d in data if d["type"] == "update")
    assert update["event"]["id"] == new["event"]["id"] and update["event"]["footage"]
    status = next(d for d in data if d["type"] == "status")
    assert status["cameras"][0]["name"] == "door"
    server.jobs.close()


@pytest.fixture
def broker(tmp_path):
    """Debian's mosquitto on a free loopback port, for one test."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    process = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _reachable(port), 20)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _reachable(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_every_event_goes_out_on_mqtt(streets, stretched, settings, tmp_path, broker):
    street, model = streets, stretched
    import paho.mqtt.client as mqtt

    fire, _ = street
    received: list[tuple[str, bytes, bool]] = []
    subscribed = threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-listener")
    listener.on_connect = lambda c, *_: c.subscribe("vadx/#", qos=1)
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.on_message = lambda c, u, m: received.append((m.topic, m.payload, m.retain))
    listener.connect("127.0.0.1", broker)
    listener.loop_start()
    try:
        assert subscribed.wait(20)
        door = camera("door", fire, settings).model_copy(update={"model": "street"})
        server = served(tmp_path, model, [door], mqtt=MqttSettings.parse(f"127.0.0.1:{broker}"))
        console = server.console.start()
        wait_for(lambda: console.hub.status()[0].state == "ended")
        wait_for(lambda: all(whole_file(e) for e in console.store.events()))
        expected = detect(model, fire, settings).events
        wait_for(lambda: sum(t == "vadx/events" for t, _, _ in received) >= 4 * len(expected))
        console.close()
        wait_for(lambda: ("vadx/available", b"offline") in [(t, p) for t, p, _ in received])
    finally:
        listener.loop_stop()
        listener.disconnect()
        server.jobs.close()
    topics = [t for t, _, _ in received]
    announced = [(t, p) for t, p, _ in received].index(("vadx/available", b"online"))
    assert announced < topics.index("vadx/events")  # online before the first event
    messages = [json.loads(p) for t, p, _ in received if t == "vadx/events"]
    by_kind = {k: [m for m in messages if m["type"] == k] for k in ("new", "update", "end")}
    assert [len(by_kind[k]) for k in by_kind] == [len(expected), 2 * len(expected), len(expected)]
    ended = sorted(by_kind["end"], key=lambda m: m["after"]["start_frame"])
    for message in ended:  # before: the event as it was while it lasted
        assert message["before"]["state"] == "active" and message["after"]["state"] == "ended"
        assert message["after"]["camera"] == "door"
    # the clip kept (written beside detection, in its thread): first the window, then the
    # seconds around the event in its place
    windows = [m for m in by_kind["update"] if m["before"]["footage"] is None]
    assert len(windows) == len(expected) and all(m["after"]["footage"] for m in windows)
    span = model.config.num_frames - 1
    assert all(
        m["after"]["footage_end_frame"] - m["after"]["footage_start_frame"] == span for m in windows
    )
    clips = [m["after"] for m in by_kind["update"] if m["before"]["footage"] is not None]
    assert [(m["footage_start_frame"], m["footage_end_frame"]) for m in clips] == [(0, 41)] * len(
        clips
    )
    assert [(m["after"]["start_frame"], m["after"]["end_frame"]) for m in ended] == [
        (e.start_frame, e.end_frame) for e in expected
    ]
    anomaly = [p for t, p, _ in received if t == "vadx/door/anomaly"]
    assert anomaly[: 2 * len(expected)] == [b"ON", b"OFF"] * len(expected)
    status = [json.loads(p) for t, p, _ in received if t == "vadx/door/status"]
    assert status and status[-1]["name"] == "door"


def test_the_console_flags_need_cameras_and_a_good_file(tmp_path, capsys):
    from tests.conftest import tiny_checkpoint

    checkpoint = tiny_checkpoint(tmp_path / "m")
    code, _, err = run_cli(["serve", str(checkpoint), "--mqtt", "localhost"], capsys)
    assert code == 2 and "need --cameras" in err
    (tmp_path / "cameras.yaml").write_text("cameras: {door: {source: x}}\n")
    argv = ["serve", str(checkpoint), "--cameras", str(tmp_path / "cameras.yaml")]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1
    assert "cameras.door.model: missing" in err


def test_the_docs_python_example_runs(streets, tmp_path, monkeypatch):
    import re
    from pathlib import Path

    from tests.conftest import tiny_checkpoint

    tiny_checkpoint(tmp_path / "models" / "street")
    (tmp_path / "cameras.yaml").write_text(
        f"cameras:\n  door:\n    source: {streets[0]}\n    model: models/street\n"
    )
    monkeypatch.chdir(tmp_path)
    page = (Path(__file__).parents[1] / "docs" / "console.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", page, re.S)
    namespace: dict = {}
    exec(compile(block, "docs/console.md", "exec"), namespace)
    assert namespace["message"].kind in ("status", "new")  # whichever comes first
    assert (tmp_path / "vadx-data" / "console" / "vadx.sqlite").is_file()


def test_each_event_is_explained_as_it_starts(streets, stretched, settings, tmp_path):
    street, model = streets, stretched
    door = camera("door", street[0], settings).model_copy(update={"model": "street"})
    server = served(tmp_path, model, [door], explain=True, trust=True)
    client = TestClient(create_app(server))
    console = server.console.start()
    try:
        wait_for(lambda: console.hub.status()[0].state == "ended")

        def explained() -> bool:  # stored (the writer runs after the hub), then explained
            events = console.store.events()
            return bool(events) and all(e.explanation for e in events)

        wait_for(explained, 120)
        event = console.store.events()[-1]
        assert event.explanation == f"events/{event.id}/explanation"
        folder = console.store.folder / event.explanation
        manifest = json.loads((folder / "manifest.json").read_text())
        assert event.trust in VERDICTS  # its explanation's worst verdict (docs/trust.md)
        assert set(manifest["trust"]) == {"layercam", "frame_shapley"}
        assert event.trust == worst_verdict(v["verdict"] for v in manifest["trust"].values())
        # the event as it started: its class so far is the one explained
        assert (manifest["event"]["id"], manifest["event"]["state"]) == (event.id, "started")
        video = client.get(f"/api/events/{event.id}/files/explanation.mp4")
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        (tmp_path / "explained.mp4").write_bytes(video.content)
        with VideoReader(tmp_path / "explained.mp4") as reader:  # the window, the map over it
            assert reader.info.num_frames == model.config.num_frames
        strip = client.get(f"/api/events/{event.id}/files/explanation.png")
        assert strip.status_code == 200 and strip.content[:4] == b"\x89PNG"
    finally:
        console.close()
        server.jobs.close()


def test_an_unreachable_broker_is_said_once_and_holds_up_nothing():
    from tests.streams import free_port
    from vadx.console.mqtt import MqttPublisher

    with pytest.warns(UserWarning, match=r"the MQTT broker 127\.0\.0\.1:\d+ cannot be reached"):
        publisher = MqttPublisher(MqttSettings.parse(f"127.0.0.1:{free_port()}"))
        publisher.event("new", {"id": 1})  # queued, not blocking
        wait_for(lambda: publisher._said_down, 20)
    assert not publisher.connected.is_set()
    publisher.close(timeout=1)


def test_upload_jobs_and_their_events_share_the_console_database(streets, stretched, tmp_path):
    """Uploads and live events in one store and one review workflow: a detection job's events
    join the cameras' in /api/events (source ``upload``) with a clip cut from the upload, a
    review on either page is one review, a deleted job takes its events with it, and a
    restart catches up with jobs that changed while no console ran."""
    from vadx.video import read_video, write_mp4

    fire, _ = streets
    video = write_mp4(tmp_path / "fire.mp4", read_video(fire).data, fps=25)
    config = thresholds(stretched, video, DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)
    detect_settings = {"stride": 2, "step": 1, "on": config.on, "off": config.off, "domain": "off"}
    expected = detect(stretched, video, config).events
    assert expected  # the thresholds make events happen

    server = served(tmp_path, stretched, [])
    client = TestClient(create_app(server))
    console = server.console.start()
    try:
        with open(video, "rb") as fh:
            uploaded = client.post("/api/videos", files={"file": ("door-fire.mp4", fh)}).json()
        job = client.post(
            "/api/jobs", json={"kind": "detect", "video": uploaded["id"], "detect": detect_settings}
        ).json()
        wait_for(lambda: client.get(f"/api/jobs/{job['id']}").json()["state"] == "done", 120)
        # the job says done before its record reaches the database (the mirror follows it)
        wait_for(lambda: [j.state for j in console.store.jobs()] == ["done"], 10)
        (kept,) = console.store.jobs()
        assert (kept.id, kept.kind, kept.video_name, kept.state) == (
            job["id"],
            "detect",
            "door-fire.mp4",
            "done",
        )
        # its events, in the console's list, as the job found them
        wait_for(lambda: all(e.footage for e in console.store.events(source="upload")), 60)
        listed = client.get("/api/events", params={"source": "upload"}).json()
        assert client.get("/api/events", params={"source": "camera"}).json() == []
        assert sorted((e["job_event"], e["start_frame"], e["end_frame"]) for e in listed) == [
            (i, e.start_frame, e.end_frame) for i, e in enumerate(expected)
        ]
        assert {(e["source"], e["camera"], e["job_id"], e["state"]) for e in listed} == {
            ("upload", "door-fire.mp4", job["id"], "ended")
        }
        # each with a clip cut from the upload: the event and 2 s around it (25 fps)
        first = next(e for e in listed if e["job_event"] == 0)
        clip = client.get(f"/api/events/{first['id']}/files/clip.mp4")
        assert clip.status_code == 200
        (tmp_path / "cut.mp4").write_bytes(clip.content)
        with VideoReader(tmp_path / "cut.mp4") as cut, VideoReader(video) as whole:
            start = max(expected[0].start_frame - 50, 0)
            stop = min(expected[0].end_frame + 51, whole.info.num_frames)
            assert cut.info.num_frames == stop - start
        # one review: in the console, it is the job's; on the uploads' page, the console's
        reviewed = client.post(f"/api/events/{first['id']}/review", json={"reviewed": True})
        assert reviewed.json()["reviewed"] is True
        assert list(client.get(f"/api/jobs/{job['id']}").json()["reviews"]) == ["0"]
        judged = {"reviewed": True, "judged_normal": True}  # no camera's normal to learn it
        refused = client.post(f"/api/events/{first['id']}/review", json=judged)
        assert refused.status_code == 400 and "vadx update-normal" in refused.text
        client.put(f"/api/jobs/{job['id']}/events/0/review", json={"reviewed": False})
        assert client.get(f"/api/events/{first['id']}").json()["reviewed"] is False
        client.put(f"/api/jobs/{job['id']}/events/0/review", json={"reviewed": True})
        assert client.get(f"/api/events/{first['id']}").json()["reviewed"] is True
    finally:
        console.close()
        server.jobs.close()
    # a restart: the job's review undone and a second job run while no console watched
    again = Server({"street": stretched}, tmp_path / "data")
    client = TestClient(create_app(again))
    client.put(f"/api/jobs/{job['id']}/events/0/review", json={"reviewed": False})
    other = client.post("/api/jobs", json={"kind": "detect", "video": uploaded["id"]}).json()
    wait_for(lambda: client.get(f"/api/jobs/{other['id']}").json()["state"] == "done", 120)
    again.console = Console([], again.data / "console", load=lambda ref: again.models[ref])
    try:
        store = again.console.store
        assert [j.id for j in store.jobs()] == sorted(
            [job["id"], other["id"]], key=lambda i: again.jobs.jobs[i].created
        )
        assert store.event(first["id"]).reviewed is False
        # deleting a job deletes its events and their clips
        assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
        assert store.events(job_id=job["id"]) == []
        assert {e.job_id for e in store.events(source="upload")} <= {other["id"]}
        assert not store.footage_folder(first["id"]).exists()
        assert job["id"] not in {j.id for j in store.jobs()}
    finally:
        again.console.close()
        again.jobs.close()


def test_a_second_outage_of_the_broker_is_said_again():
    import warnings

    from tests.streams import free_port
    from vadx.console.mqtt import MqttPublisher

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("default")  # as the command line shows warnings
        publisher = MqttPublisher(MqttSettings.parse(f"127.0.0.1:{free_port()}"))
        try:
            for _ in range(2):  # an outage, the broker back (on_connect), another outage
                publisher._said_down = False
                publisher._on_connect_fail(publisher.client, None, "refused")
        finally:
            publisher.close(timeout=1)
    lines = [str(w.message) for w in said if "cannot be reached (refused)" in str(w.message)]
    assert len(lines) == 2


def test_an_event_whose_explanation_failed_says_why(streets, stretched, settings, tmp_path):
    """An explanation the worker fails on (here: a layer the model does not have) is kept
    with its event (``explanation_error``, in the API and the page's caption), not only in
    the log."""
    from dataclasses import replace

    street, model = streets, stretched
    door = camera("door", street[0], settings).model_copy(update={"model": "street"})
    server = served(tmp_path, model, [door], explain=True)
    console = server.console
    console.explain_settings = replace(console.explain_settings, layer="no-such-layer")
    client = TestClient(create_app(server))
    with pytest.warns(UserWarning, match="explaining alert .* failed"):
        console.start()
        try:
            wait_for(lambda: console.hub.status()[0].state == "ended")
            wait_for(lambda: all(e.explanation_error for e in console.store.events()), 120)
        finally:
            console.close()
            server.jobs.close()
    events = client.get("/api/events").json()
    assert events and all(e["explanation"] is None for e in events)
    assert all("no-such-layer" in e["explanation_error"] for e in events), events


def test_an_event_the_busy_explainer_skips_says_so(
    streets, stretched, settings, tmp_path, monkeypatch
):
    from vadx.console.service import EXPLAIN_QUEUE
    from vadx.watch.alerts import AlertExplainer

    monkeypatch.setattr(AlertExplainer, "submit", lambda *_: False)  # its queue full
    door = camera("door", streets[0], settings).model_copy(update={"model": "street"})
    server = served(tmp_path, stretched, [door], explain=True)
    console = server.console.start()
    try:
        wait_for(lambda: console.hub.status()[0].state == "ended")
        wait_for(lambda: all(e.explanation_error for e in console.store.events()), 60)
    finally:
        console.close()
        server.jobs.close()
    reasons = {e.explanation_error for e in console.store.events()}
    assert reasons == {f"not explained: the explainer was busy with {EXPLAIN_QUEUE} others"}
