"""The HTTP API of ``vadx serve`` (httpx through FastAPI's TestClient): every route, every bad
request, jobs that survive a restart, cancellation."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tests.conftest import TINY, half_outside_domain, long_video, tiny_checkpoint
from tests.videos import ffmpeg_decode, ffmpeg_transcode, zero_packets
from vadx.detect import DetectConfig, detect
from vadx.detect.domain import verdict_line
from vadx.errors import InputError
from vadx.explain import DEFAULT_METHODS, DEFAULT_TEMPORAL, METHODS, TEMPORAL
from vadx.explanations.video import ExplainSettings, explain_video
from vadx.models import load_model, save_model
from vadx.serve import Server, create_app
from vadx.serve.job_store import JobStore
from vadx.serve.storage import label
from vadx.video import VideoReader
from vadx.video.decode import TruncatedVideoWarning


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    segments = [("normal", 10), ("fight", 20), ("normal", 10)]
    video, _ = long_video(root / "clip.mp4", 3, segments, (48, 64))
    return root, video, load_model(tiny_checkpoint(root / "model"))


def make_client(assets, data, **options):
    _, _, model = assets
    server = Server({"tiny": model}, data, **options)
    return TestClient(create_app(server)), server


@pytest.fixture
def client(assets, tmp_path):
    client, server = make_client(assets, tmp_path, max_upload_bytes=2_000_000)
    yield client
    server.jobs.close()


def upload(client, path, name="clip.mp4", **kwargs):
    with open(path, "rb") as fh:
        return client.post("/api/videos", files={"file": (name, fh, "video/mp4")}, **kwargs)


def finished(client, job, timeout=120, **kwargs):
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(f"/api/jobs/{job['id']}", **kwargs).json()
    return job


def test_health_models_and_the_page(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["models"] == ["tiny"]
    assert health["token_required"] is False
    (model,) = client.get("/api/models").json()
    assert model["classes"] == list(TINY.class_names) and model["frames"] == 4
    page = client.get("/")
    assert page.status_code == 200 and 'id="timeline"' in page.text
    assert "http" not in page.text.split("<body>")[1]  # no CDN: works offline
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/openapi.json").json()["info"]["title"] == "vadx"
    methods = client.get("/api/methods").json()  # the page's method list, from the registries
    assert sorted(m["name"] for m in methods) == sorted([*METHODS, *TEMPORAL])
    spatial = [m["name"] for m in methods if m["kind"] == "spatial"]
    assert spatial[: len(DEFAULT_METHODS)] == list(DEFAULT_METHODS)  # the defaults first
    assert [m["name"] for m in methods if m["default"]] == [*DEFAULT_METHODS, *DEFAULT_TEMPORAL]
    assert all(m["description"] and m["display_name"] for m in methods)


def test_upload_detect_explain_end_to_end(client, assets):
    _, video, model = assets
    record = upload(client, video, name="../../etc/clip 1.mp4").json()
    assert record["name"] == "clip 1.mp4" and record["num_frames"] == 40
    assert record["file"] == "video.mp4" and len(record["sha256"]) == 64
    assert client.get("/api/videos").json() == [record]
    assert client.get(f"/api/videos/{record['id']}/file").content == video.read_bytes()

    job = client.post(
        "/api/jobs",
        json={"kind": "detect", "video": record["id"], "detect": {"on": 0.2, "off": 0.1}},
    ).json()
    assert job["state"] in ("queued", "running", "done")
    job = finished(client, job)
    assert job["state"] == "done", job["error"]
    offline = detect(model, video, DetectConfig(on=0.2, off=0.1))
    assert [e["start_frame"] for e in job["result"]["events"]] == [
        e.start_frame for e in offline.events
    ]
    scores = client.get(f"/api/jobs/{job['id']}/scores").json()
    np.testing.assert_allclose(scores["anomaly"], offline.smoothed_score, atol=1e-4)
    assert len(scores["probabilities"]) == 40 and scores["on"] == 0.2
    events = client.get(f"/api/jobs/{job['id']}/files/events.json").json()
    assert len(events["events"]) == len(offline.events)

    explained = finished(
        client,
        client.post(
            "/api/jobs",
            json={
                "kind": "explain",
                "video": record["id"],
                "start": 5,
                "end": 20,
                "methods": ["gradcam", "saliency"],
                "temporal": ["frame_occlusion"],
                "exports": ["frames"],
            },
        ).json(),
    )
    assert explained["state"] == "done", explained["error"]
    assert explained["result"]["frames"] == [5, 10, 15, 20]
    report = client.get(f"/api/jobs/{explained['id']}/files/report.html")
    assert report.status_code == 200 and "<html" in report.text
    assert 'filename="report.html"' in report.headers["content-disposition"]
    frame = client.get(f"/api/jobs/{explained['id']}/files/frames/gradcam/000010.png")
    assert frame.content[:8] == b"\x89PNG\r\n\x1a\n"
    listed = client.get(f"/api/jobs?video={record['id']}").json()
    assert [j["id"] for j in listed] == [explained["id"], job["id"]]


def test_detection_says_when_footage_is_outside_the_models_domain(assets, tmp_path):
    root, video, model = assets
    calibrated = load_model(save_model(model, tmp_path / "calibrated"))
    with VideoReader(video) as reader:
        calibrated.domain = half_outside_domain(model, reader.read_range().data)
    server = Server({"tiny": model, "calibrated": calibrated}, tmp_path / "data")
    client = TestClient(create_app(server))
    try:
        record = upload(client, video).json()
        plain = finished(
            client, client.post("/api/jobs", json={"kind": "detect", "video": record["id"]}).json()
        )
        domain = plain["result"]["domain"]
        assert domain["checked"] is False and "vadx calibrate MODEL DATA" in domain["message"]
        assert str(root) not in domain["message"]
        assert client.get(f"/api/jobs/{plain['id']}/scores").json()["domain"] is None
        refused = client.post(
            "/api/jobs",
            json={"kind": "detect", "video": record["id"], "detect": {"domain": "suppress"}},
        )
        error(refused, 400, "needs domain statistics")
        assert str(root) not in refused.text and str(tmp_path) not in refused.text
        settings = {"on": 0.2, "off": 0.1, "min_frames": 1}
        job = finished(
            client,
            client.post(
                "/api/jobs",
                json={
                    "kind": "detect",
                    "video": record["id"],
                    "model": "calibrated",
                    "detect": settings,
                },
            ).json(),
        )
        offline = detect(calibrated, video, DetectConfig(**settings))
        domain = job["result"]["domain"]
        assert domain["windows_outside"] == offline.domain["windows_outside"] > 0
        assert domain["message"] == verdict_line(offline.domain)
        scores = client.get(f"/api/jobs/{job['id']}/scores").json()
        np.testing.assert_allclose(scores["domain"], offline.frame_domain, atol=1e-3)
        assert [e["out_of_domain"] for e in job["result"]["events"]] == pytest.approx(
            [e.out_of_domain for e in offline.events]
        )
    finally:
        server.jobs.close()


def error(response, status, fragment):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and fragment in body["error"], body


def test_every_bad_request_gets_a_json_error(client, assets, tmp_path):
    _, video, _ = assets
    record = upload(client, video).json()
    vid = record["id"]
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all " * 50)
    error(upload(client, text), 415, "not a video")
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000)  # an MP4 header, no video
    error(upload(client, fake), 415, "cannot be decoded")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    error(upload(client, empty), 400, "empty")
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\x00" * 2_100_000)
    error(upload(client, big), 413, "larger than the limit of 2 MB")
    error(client.post("/api/videos", data={"x": "1"}), 422, "file")

    def chunked():  # no Content-Length: the limit holds while the body streams
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.mp4"\r\n\r\n'
        for _ in range(40):
            yield b"\x00" * 100_000
        yield b"\r\n--b--\r\n"

    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    error(client.post("/api/videos", content=chunked(), headers=multipart), 413, "limit")
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == [vid]  # nothing left over

    jobs = "/api/jobs"
    error(client.post(jobs, json={"kind": "detect", "video": "0123456789abcdef"}), 404, "no video")
    error(client.post(jobs, json={"kind": "detect", "video": "../../etc"}), 422, "video")
    error(client.post(jobs, json={"kind": "dance", "video": vid}), 422, "kind")
    error(client.post(jobs, json={"kind": "detect", "video": vid, "extra": 1}), 422, "extra")
    error(
        client.post(jobs, json={"kind": "detect", "video": vid, "model": "big"}),
        404,
        "no model 'big'",
    )
    error(
        client.post(jobs, json={"kind": "detect", "video": vid, "detect": {"on": 0.2, "off": 0.5}}),
        400,
        "off ≤ on",
    )
    error(
        client.post(jobs, json={"kind": "detect", "video": vid, "detect": {"stride": 0}}),
        422,
        "stride",
    )
    error(
        client.post(jobs, json={"kind": "explain", "video": vid, "methods": ["magic"]}),
        400,
        "unknown method 'magic'",
    )
    error(
        client.post(jobs, json={"kind": "explain", "video": vid, "start": 30, "end": 99}),
        400,
        "not inside the video's 40 frames",
    )
    error(client.post(jobs, json={"kind": "explain", "video": vid, "methods": []}), 422, "methods")
    # a job that cannot succeed is refused at submission, in API terms (was: accepted, failed)
    response = client.post(jobs, json={"kind": "detect", "video": vid, "detect": {"step": 20}})
    error(
        response,
        400,
        "the video has 40 frames, fewer than one window of the model "
        "(4 frames 20 apart = 61); choose a smaller detect.step",
    )
    error(client.put(jobs), 405, "PUT is not allowed here; use GET, POST")
    assert client.put(jobs).headers["allow"] == "GET, POST"  # every method of the path
    assert client.options(f"/api/jobs/{'0' * 16}").headers["allow"] == "DELETE, GET"
    error(
        client.post(jobs, content=b"{not json", headers={"Content-Type": "application/json"}),
        422,
        "JSON",
    )
    error(client.get("/api/jobs/0123456789abcdef"), 404, "no job")
    error(client.get("/api/jobs/..%2F..%2Fetc"), 404, "")
    error(client.get("/api/videos/0123456789abcdef"), 404, "no video")
    error(client.delete("/api/videos/nope"), 404, "no video")
    error(client.get("/static/../app.py"), 404, "")
    error(client.get("/static/app.py"), 404, "no static file")

    job = finished(client, client.post(jobs, json={"kind": "detect", "video": vid}).json())
    for name in ("../job.json", "job.json", "%2e%2e/%2e%2e/videos", "nothing.png", "/etc/passwd"):
        error(client.get(f"/api/jobs/{job['id']}/files/{name}"), 404, "")
    error(client.post(f"/api/jobs/{job['id']}/cancel"), 409, "already finished")
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204  # a finished job: deleted
    error(client.get(f"/api/jobs/{job['id']}"), 404, "no job")
    assert not (tmp_path / "jobs" / job["id"]).exists()
    assert client.delete(f"/api/videos/{vid}").status_code == 204
    error(client.get(f"/api/videos/{vid}"), 404, "no video")


def test_uploads_are_checked_by_decoding_every_frame_as_detection_will(client, assets, tmp_path):
    _, video, _ = assets
    # an Xvid AVI with B-frames (its timestamps are decoding times): accepted, and detected
    xvid = ffmpeg_transcode(
        video, tmp_path / "xvid.avi", ["-c:v", "mpeg4", "-vtag", "xvid", "-bf", "2"]
    )
    record = upload(client, xvid, name="camera 2.avi").json()
    assert record["num_frames"] == 40 and record["file"] == "video.avi"
    request = {"kind": "detect", "video": record["id"]}
    job = finished(client, client.post("/api/jobs", json=request).json())
    assert job["state"] == "done", job["error"]
    # browsers do not play Xvid: the page's player gets an H.264 copy of every frame
    played = client.get(f"/api/videos/{record['id']}/play")
    assert played.status_code == 200 and played.headers["content-type"] == "video/mp4"
    (tmp_path / "played.mp4").write_bytes(played.content)
    with VideoReader(tmp_path / "played.mp4") as copy, VideoReader(xvid) as original:
        assert copy.info.codec == "h264" and copy.info.num_frames == 40
        difference = np.abs(copy.read([5, 30]).data.astype(int) - original.read([5, 30]).data)
        assert difference.mean() < 4  # the same frames, re-encoded
    mp4 = upload(client, video).json()
    same = client.get(f"/api/videos/{mp4['id']}/play")
    assert same.content == video.read_bytes()  # an H.264 MP4 is played as it was uploaded
    assert client.delete(f"/api/videos/{mp4['id']}").status_code == 204
    thumb = client.get(f"/api/videos/{record['id']}/frames/39")
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
    error(client.get(f"/api/videos/{record['id']}/frames/40"), 404, "no frame 40 (0–39)")
    # frames 20… damaged: the frames FFmpeg decodes, not the 40 the container lists
    damaged = zero_packets(video, tmp_path / "damaged.mp4", start=20)
    decodable = len(ffmpeg_decode(damaged, 64, 48))
    record = upload(client, damaged, name="camera 3.mp4").json()
    assert 8 <= record["num_frames"] == decodable < 40
    request = {"kind": "detect", "video": record["id"]}
    with pytest.warns(TruncatedVideoWarning, match="decoding stopped at frame"):
        job = finished(client, client.post("/api/jobs", json=request).json())
    assert job["state"] == "done", job["error"]
    assert job["result"]["frames"] == decodable
    # a valid AVI whose frames are all damaged: refused, named as the client named it
    blank = zero_packets(xvid, tmp_path / "blank.avi")
    response = upload(client, blank, name="camera 4.avi")
    error(response, 415, "cannot be decoded")
    message = response.json()["error"]
    assert "camera 4.avi has no frame FFmpeg can decode" in message
    assert str(tmp_path) not in message and "video.avi" not in message and "/" not in message
    assert len(client.get("/api/videos").json()) == 2  # nothing kept of the refused one


def test_an_api_token_guards_everything_but_health(assets, tmp_path):
    client, server = make_client(assets, tmp_path, token="s3cret")
    try:
        assert client.get("/api/health").json()["token_required"] is True
        error(client.get("/api/models"), 401, "API token")
        error(client.get("/api/models", headers={"Authorization": "Bearer wrong"}), 401, "token")
        assert client.get("/api/models", headers={"Authorization": "Bearer s3cret"}).is_success
        assert client.get("/api/videos?token=s3cret").json() == []
        error(client.get("/api/videos?token=s3cre"), 401, "token")
        # the document offers two ways (bearer or query); either one right is enough
        right_header = {"Authorization": "Bearer s3cret"}
        assert client.get("/api/videos?token=wrong", headers=right_header).json() == []
        bad_header = {"Authorization": "Basic czNjcmV0"}
        assert client.get("/api/videos?token=s3cret", headers=bad_header).json() == []
        error(client.get("/api/videos?token=", headers={"Authorization": "Bearer "}), 401, "token")
        error(upload(client, assets[1]), 401, "token")
    finally:
        server.jobs.close()


def test_results_survive_a_restart_and_unfinished_jobs_run_again(assets, tmp_path):
    client, server = make_client(assets, tmp_path)
    record = upload(client, assets[1]).json()
    submitted = client.post("/api/jobs", json={"kind": "detect", "video": record["id"]})
    done = finished(client, submitted.json())
    server.jobs.close()
    interrupted = tmp_path / "jobs" / "00000000000000aa" / "job.json"
    interrupted.parent.mkdir(parents=True)
    stopped = {
        "id": "00000000000000aa",
        "kind": "detect",
        "state": "running",
        "params": done["params"],
        "progress": 0.5,
    }
    interrupted.write_text(json.dumps(stopped))
    again, server = make_client(assets, tmp_path)  # the server restarts on the same folder
    try:
        assert again.get(f"/api/jobs/{done['id']}").json()["result"] == done["result"]
        assert again.get("/api/videos").json() == [record]
        rerun = finished(again, again.get("/api/jobs/00000000000000aa").json())
        assert rerun["state"] == "done" and rerun["result"]["events"] == done["result"]["events"]
    finally:
        server.jobs.close()


def test_cancelling_queued_and_running_jobs(tmp_path):
    started, release = threading.Event(), threading.Event()

    def slow(job, folder, progress):
        started.set()
        for step in range(1000):
            progress("working", step, 1000)
            release.wait(0.01)
        return {"finished": True}

    store = JobStore(tmp_path, {"slow": slow}, workers=1)
    running = store.submit("slow", {"video": "v"})
    waiting = store.submit("slow", {"video": "v"})
    assert started.wait(10)
    with pytest.raises(ValueError, match="is running"):
        store.delete(running.id)  # a running job is cancelled, not deleted
    assert store.cancel(waiting.id).state == "cancelled"
    store.cancel(running.id)
    saved_file = tmp_path / "jobs" / running.id / "job.json"
    deadline = time.monotonic() + 10
    while running.state == "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running.state == "cancelled" and running.progress < 1 and running.result is None
    saved = json.loads(saved_file.read_text())  # final once shown (JobStore._end)
    assert saved["state"] == "cancelled" and saved["finished"] is not None
    store.delete(running.id)
    assert running.id not in store.jobs and not saved_file.parent.exists()
    store.close()


def test_a_failing_job_reports_why(tmp_path):
    def broken(job, folder, progress):
        raise RuntimeError("the disk is on fire")

    store = JobStore(tmp_path, {"broken": broken})
    job = store.submit("broken", {})
    deadline = time.monotonic() + 10
    while job.state != "failed" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job.error == "RuntimeError: the disk is on fire"
    store.close()


def test_a_job_keeps_its_typed_result_through_job_json():
    from vadx.serve.job_store import Job
    from vadx.serve.schema import ExplainResult, JobParams

    params = JobParams.of({"kind": "explain", "video": "0123456789abcdef", "model": "tiny"})
    result = ExplainResult(
        frames=[0, 2], predicted="fight", probability=0.5, target="fight", report="report.html"
    )
    job = Job("fedcba9876543210", "explain", params.model_dump(), state="done", result=result)
    document = json.loads(json.dumps(job.to_json()))
    assert document["result"] == {
        "frames": [0, 2],
        "predicted": "fight",
        "probability": 0.5,
        "target": "fight",
        "report": "report.html",
        "trust": None,
    }
    assert Job.from_json(document) == job
    assert job.public().result == result and job.public().params == params


def test_signatures():
    from vadx.serve.storage import container_of

    assert container_of(b"\x00\x00\x00\x20ftypisom") == "mp4"
    assert container_of(b"\x1a\x45\xdf\xa3rest") == "mkv"
    assert container_of(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    assert container_of(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert container_of(bytes(io.BytesIO(b"G" + b"\x00" * 187).getvalue()) * 3) == "ts"
    assert container_of(b"<html>") is None


def test_the_command_serves_until_stopped(assets, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from tests.streams import free_port

    root, _, _ = assets
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "vadx",
        "serve",
        str(root / "model"),
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline, health = time.monotonic() + 60, None
        while health is None and time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health").json()
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None and health["models"] == ["model"]
    finally:
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)
    assert f"on http://127.0.0.1:{port}/" in stdout.decode()


def test_the_command_refuses_what_cannot_work(tmp_path, capsys):
    from tests.conftest import run_cli

    code, _, stderr = run_cli(["serve", str(tmp_path / "missing")], capsys)
    assert code == 2 and "missing" in stderr


def test_the_socket_is_bound_before_anything_loads():
    from vadx.cli import option_name
    from vadx.errors import VadxError
    from vadx.serve import listening_socket

    with listening_socket("127.0.0.1", 0) as first:
        port = first.getsockname()[1]
        first.listen()
        with pytest.raises(VadxError, match=f"^port {port} on 127.0.0.1 is in use: stop") as err:
            listening_socket("127.0.0.1", port)
        assert err.value.worded(option_name).startswith(f"--port {port} on 127.0.0.1 is in use")
    with pytest.raises(VadxError, match="port must be between 0 and 65535, got 70000"):
        listening_socket("127.0.0.1", 70000)
    with pytest.raises(VadxError, match="cannot listen on host 192.0.2.1 port 0: ") as err:
        listening_socket("192.0.2.1", 0)  # an address of no interface here (TEST-NET-1)
    assert "cannot listen on --host 192.0.2.1 --port 0: " in err.value.worded(option_name)


def test_the_upload_limit_stops_reading_the_body():
    import asyncio

    from vadx.serve.guard import Guard, Limits

    taken, seen, answer = [], [], []

    async def receive():
        taken.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def app(scope, receive, send):  # reads until the body ends or the client is gone
        while (message := await receive())["type"] == "http.request":
            seen.append(len(message["body"]))
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"parse error"})

    async def send(message):
        answer.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/videos", "headers": []}
    guard = Guard(app, Limits(), token=None, upload_bytes=10_000)  # + 65,536 of multipart framing
    asyncio.run(guard(scope, receive, send))
    assert len(taken) == 76 and sum(seen) == 75_000  # one chunk past the limit, no more
    assert answer[0]["status"] == 413 and b"larger than the limit" in answer[1]["body"]


def test_inputs_that_crashed_a_request_are_clear_4xx_errors(client, assets):
    _, video, _ = assets
    record = upload(client, video).json()
    request = {"kind": "detect", "video": record["id"]}
    job = finished(client, client.post("/api/jobs", json=request).json())
    # a NUL byte in a file name raised "embedded null byte" from resolve(): a 500 in plain text
    error(client.get(f"/api/jobs/{job['id']}/files/a%00b"), 404, "has no file")
    error(client.get(f"/api/jobs/{job['id']}/files/a%07b.png"), 404, "has no file")
    # "²".isdigit() is true and int("²") raised; unknown targets failed only inside the job
    for target in ("²", "7", "burglary", "١"):
        response = client.post(
            "/api/jobs", json={"kind": "explain", "video": record["id"], "target": target}
        )
        error(response, 400, "target must be predicted, anomaly, one of the model's classes")
    accepted = client.post(
        "/api/jobs",
        json={
            "kind": "explain",
            "video": record["id"],
            "target": "2",
            "methods": ["gradcam"],
            "temporal": [],
        },
    )
    assert accepted.status_code == 202
    assert finished(client, accepted.json())["state"] == "done"


def test_failed_jobs_speak_in_api_terms_without_server_paths(client, assets, tmp_path, monkeypatch):
    _, video, _ = assets
    record = upload(client, video, name="gate 3.mp4").json()

    def failing(model, path, *args, **kwargs):  # as the library words a failure: its names
        raise InputError(
            f"{path} has 40 frames, fewer than one window; use a smaller {{step}}", "step"
        )

    monkeypatch.setattr("vadx.serve.runners.detect", failing)
    request = {"kind": "detect", "video": record["id"]}
    job = finished(client, client.post("/api/jobs", json=request).json())
    assert job["state"] == "failed"
    expected = "gate 3.mp4 has 40 frames, fewer than one window; use a smaller detect.step"
    assert job["error"] == expected


def test_smoothing_wider_than_the_video_is_a_detection_like_any_other(client, assets):
    _, video, _ = assets
    record = upload(client, video).json()
    request = {"kind": "detect", "video": record["id"], "detect": {"smooth": 10_000}}
    job = finished(client, client.post("/api/jobs", json=request).json())  # was: internal error
    assert job["state"] == "done", job["error"]
    scores = client.get(f"/api/jobs/{job['id']}/scores").json()["anomaly"]
    assert len(scores) == 40 and max(scores) - min(scores) < 1e-3  # every frame: the mean


def test_an_unexpected_failure_is_a_json_500_and_a_logged_traceback(assets, tmp_path, caplog):
    _, video, model = assets
    server = Server({"tiny": model}, tmp_path)
    client = TestClient(create_app(server), raise_server_exceptions=False)
    try:
        record = upload(client, video).json()

        def broken(*args, **kwargs):
            raise RuntimeError("/secret/server/path exploded")

        server.videos.all = broken
        response = client.get("/api/videos")
        assert response.status_code == 500
        assert response.json() == {"error": "internal error; the server's log has the details"}
        server.models["tiny"].frame_features = broken
        request = {"kind": "detect", "video": record["id"]}
        job = finished(client, client.post("/api/jobs", json=request).json())
        assert job["state"] == "failed" and "/secret" not in job["error"]
        assert "internal error" in job["error"]
        assert "exploded" in caplog.text  # the traceback is in the server's log
    finally:
        del server.models["tiny"].frame_features
        server.jobs.close()


def test_what_a_job_wrote_names_no_server_path(client, assets, tmp_path):
    _, video, _ = assets
    record = upload(client, video, name='gate "3" <east>.mp4').json()
    explain = {"kind": "explain", "start": 4, "end": 20, "methods": ["gradcam"], "temporal": []}
    for request in ({"kind": "detect"}, explain):
        job = finished(
            client, client.post("/api/jobs", json={**request, "video": record["id"]}).json()
        )
        assert job["state"] == "done", job["error"]
        texts = [name for name in job["files"] if name.endswith((".json", ".html", ".csv"))]
        assert "events.json" in texts or "report.html" in texts
        for name in texts:
            response = client.get(f"/api/jobs/{job['id']}/files/{name}")
            assert response.status_code == 200
            assert str(tmp_path) not in response.text and "/videos/" not in response.text, name
            if name.endswith(".json"):
                response.json()  # still valid JSON after the paths were replaced
        if request["kind"] == "explain":
            summary = client.get(f"/api/jobs/{job['id']}/files/summary.json").json()
            assert summary["source"] == label(record["name"])  # the uploaded name, made safe
            assert summary["source"].startswith("gate _") and summary["source"].endswith("_.mp4")
            scores = client.get(f"/api/jobs/{job['id']}/scores").json()  # its timeline's
            assert len(scores["anomaly"]) == 40


def test_an_event_is_explained_by_the_window_vadx_flags_and_detection_runs_once(
    client, assets, tmp_path, monkeypatch
):
    _, video, model = assets
    calls = []
    real = detect
    counted = lambda *a, **k: calls.append(1) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr("vadx.serve.runners.detect", counted)
    record = upload(client, video).json()
    settings = {"on": 0.0, "off": 0.0, "min_frames": 1}  # one event over the whole video
    request = {"kind": "detect", "video": record["id"], "detect": settings}
    job = finished(client, client.post("/api/jobs", json=request).json())
    (event,) = job["result"]["events"]
    review = f"/api/jobs/{job['id']}/events/0/review"
    assert client.put(review, json={"reviewed": True}).json()["reviews"].keys() == {"0"}
    assert client.get(f"/api/jobs/{job['id']}").json()["reviews"].keys() == {"0"}  # kept
    assert client.put(review, json={"reviewed": False}).json()["reviews"] == {}
    error(
        client.put(f"/api/jobs/{job['id']}/events/1/review", json={"reviewed": True}),
        404,
        "has no event 1 (1 event(s))",
    )
    first, last = event["window"]  # what the page's Explain asks for
    request = {
        "kind": "explain",
        "video": record["id"],
        "start": first,
        "end": last,
        "target": event["class_name"],
        "methods": ["gradcam"],
        "temporal": [],
        "detect": settings,
    }
    explained = finished(client, client.post("/api/jobs", json=request).json())
    assert explained["state"] == "done", explained["error"]
    assert calls == [1]  # the explanation took the video's detection, not a second pass
    flagged = explain_video(
        model,
        video,
        tmp_path / "flagged",
        ExplainSettings(methods=("gradcam",), temporal=()),
        windows="flagged",
        detect_config=DetectConfig(**settings),
    )
    assert explained["result"]["frames"] == flagged.clips[0].frames
    assert explained["result"]["target"] == flagged.clips[0].target == event["class_name"]


def test_an_explanation_asked_with_trust_says_each_maps_verdict(client, assets):
    _, video, _ = assets
    record = upload(client, video).json()
    request = {"kind": "explain", "video": record["id"], "methods": ["gradcam"]}
    request |= {"temporal": ["gradient_norm"], "trust": True}
    job = finished(client, client.post("/api/jobs", json=request).json())
    assert job["state"] == "done", job["error"]
    trust = job["result"]["trust"]
    assert set(trust) == {"gradcam", "gradient_norm"}
    assert set(trust.values()) <= {"trustworthy", "weak", "contradictory"}
    manifest = client.get(f"/api/jobs/{job['id']}/files/manifest.json").json()
    assert trust == {m: r["verdict"] for m, r in manifest["trust"].items()}
    plain = finished(client, client.post("/api/jobs", json={**request, "trust": False}).json())
    assert plain["result"]["trust"] is None
