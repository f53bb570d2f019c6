"""The server's edges (issue 29, items 9–14): what an outside attacker tried, each now a 4xx
with ``{"error": …}`` or a connection closed in time — bodies before the token, bodies without
limits, hosts and origins, lax types, a job queue without end, and the faults (a kill mid-upload,
a video deleted under its job, a cancel that answered 200 and yet the job finished)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import long_video, tiny_checkpoint
from tests.test_reliability import assert_one_error_line
from tests.test_serve_api import error, finished, upload
from vadx.errors import VadxError
from vadx.models import load_model
from vadx.serve import Server, create_app, job_store, serving
from vadx.serve.guard import Guard, Limits, allowed_hosts, host_name


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("guard")
    video, _ = long_video(root / "clip.mp4", 3, [("normal", 10), ("fight", 10)], (48, 64))
    return video, load_model(tiny_checkpoint(root / "model"))


def make(assets, data: Path, **options) -> tuple[TestClient, Server]:
    server = Server({"tiny": assets[1]}, data, **options)
    return TestClient(create_app(server)), server


@pytest.fixture
def served(assets, tmp_path):
    client, server = make(assets, tmp_path, max_upload_bytes=2_000_000)
    yield client, server
    server.jobs.close()


def detect_job(client, video_id: str):
    return client.post("/api/jobs", json={"kind": "detect", "video": video_id})


# ---------------------------------------------------------------------------- 9. 500s


def test_a_file_name_too_long_for_the_file_system_is_404(served, assets):
    client, _ = served
    job = finished(client, detect_job(client, upload(client, assets[0]).json()["id"]).json())
    response = client.get(f"/api/jobs/{job['id']}/files/{'a' * 300}.png")
    error(response, 404, "has no file")
    assert len(response.json()["error"]) <= 600  # the name is not echoed whole


def test_a_target_of_thousands_of_digits_is_refused_in_api_terms(served, assets):
    client, _ = served
    video = upload(client, assets[0]).json()["id"]
    response = client.post(
        "/api/jobs", json={"kind": "explain", "video": video, "target": "9" * 5000}
    )
    error(response, 422, "target: String should have at most 200 characters")
    response = client.post(
        "/api/jobs", json={"kind": "explain", "video": video, "target": "9" * 150}
    )
    error(response, 400, "target must be predicted, anomaly, one of the model's classes")


# ------------------------------------------------------------------- 10. bodies and limits


def test_the_token_is_checked_before_any_of_the_body_is_read():
    taken, answer = [], []

    async def receive():
        taken.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def app(scope, receive, send):
        raise AssertionError("the app ran without a token")

    async def send(message):
        answer.append(message)

    for path, content_type in (("/api/videos", b"multipart/form-data"), ("/api/jobs", b"")):
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "query_string": b"",
            "headers": [(b"content-length", b"150000000"), (b"content-type", content_type)],
        }
        asyncio.run(Guard(app, Limits(), token="s3cret", upload_bytes=10**9)(scope, receive, send))
        assert not taken and answer[-2]["status"] == 401
        assert (b"www-authenticate", b"Bearer") in answer[-2]["headers"]


def test_without_the_token_a_malformed_body_gets_401_not_422(assets, tmp_path):
    client, server = make(assets, tmp_path, token="s3cret")
    try:
        response = client.post(
            "/api/jobs", content=b"{not json", headers={"content-type": "application/json"}
        )
        error(response, 401, "API token")
        ok = client.get("/api/models", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert client.get("/api/models?token=s3cret").status_code == 200
        assert client.get("/api/health").status_code == 200  # needs no token
    finally:
        server.jobs.close()


def test_every_json_body_is_capped_and_nothing_unbounded_is_echoed(served, assets):
    client, _ = served
    video = upload(client, assets[0]).json()["id"]
    big = {"kind": "detect", "video": video, "model": "m" * 200_000}
    response = client.post("/api/jobs", json=big)
    error(response, 413, "the request body is larger than the limit of 65,536 bytes")
    assert len(response.text) < 200
    # streamed without a declared length: cut at the limit all the same
    chunks = iter([b'{"kind": "detect", "model": "', *[b"m" * 10_000] * 10, b'"}'])
    response = client.post(
        "/api/jobs", content=chunks, headers={"content-type": "application/json"}
    )
    error(response, 413, "larger than the limit")
    # under the cap, a long unknown model name is refused without being quoted whole
    response = client.post("/api/jobs", json={**big, "model": "m" * 199})
    error(response, 404, "no model")
    assert len(response.json()["error"]) <= 600


def test_a_json_body_must_be_utf8(served, assets):
    client, _ = served
    video = upload(client, assets[0]).json()["id"]
    text = f'{{"kind": "detect", "video": "{video}"}}'
    for encoded in (
        text.encode("utf-16"),
        text.encode("utf-16-le"),
        b"\xef\xbb\xbf" + text.encode(),
    ):
        response = client.post(
            "/api/jobs", content=encoded, headers={"content-type": "application/json"}
        )
        error(response, 400, "a JSON body must be UTF-8")
    response = client.post(
        "/api/jobs", content=text.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202


def test_a_full_queue_answers_429_with_retry_after(assets, tmp_path):
    client, server = make(assets, tmp_path, limits=Limits(queue=2))
    release = threading.Event()
    real = server.jobs.runners["detect"]

    def held(job, out, progress):
        release.wait(30)
        return real(job, out, progress)

    server.jobs.runners["detect"] = held
    try:
        video = upload(client, assets[0]).json()["id"]
        accepted = [detect_job(client, video) for _ in range(2)]
        assert [r.status_code for r in accepted] == [202, 202]
        response = detect_job(client, video)
        error(response, 429, "2 jobs are queued or running, the most this server takes")
        assert response.headers["retry-after"] == "10"
        release.set()
        for job in accepted:
            assert finished(client, job.json())["state"] == "done"
        assert detect_job(client, video).status_code == 202  # room again
    finally:
        release.set()
        server.jobs.close()


def test_headers_that_never_complete_and_bodies_that_stall_are_cut(assets, tmp_path):
    server = Server(
        {"tiny": assets[1]}, tmp_path, limits=Limits(header_seconds=0.5, body_seconds=0.5)
    )
    try:
        with serving(server) as url:
            port = int(url.rsplit(":", 1)[1].strip("/"))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
                slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends
                start = time.monotonic()
                assert slow.recv(1024) == b""  # closed by the server
                assert time.monotonic() - start < 5
            with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
                stalled.sendall(
                    b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"kind"'
                )
                answer = b""
                while chunk := stalled.recv(4096):  # the server closes after its answer
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 408") and b"the request body stalled" in answer
    finally:
        server.jobs.close()


# ---------------------------------------------------------------- 11. host and origin


def test_only_the_servers_own_host_names_are_answered(assets, tmp_path):
    assert allowed_hosts("127.0.0.1") == ("localhost", "127.0.0.1", "::1")
    assert allowed_hosts("0.0.0.0") == ()  # every interface: any name (with a token, warned)
    assert allowed_hosts("0.0.0.0", ("cams.example",))[-1] == "cams.example"
    assert [host_name(h) for h in ("[::1]:8000", "LocalHost:80", "::1", "a.b")] == [
        "::1",
        "localhost",
        "::1",
        "a.b",
    ]
    client, server = make(assets, tmp_path, limits=Limits(hosts=allowed_hosts("127.0.0.1")))
    try:
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
            error(client.get("/api/health", headers={"host": host}), 400, "answers to localhost")
        for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
            assert client.get("/api/health", headers={"host": host}).status_code == 200
        # no redirect is built from a foreign Host either: refused before routing
        error(client.get("/api/jobs/", headers={"host": "evil.example"}), 400, "answers to")
    finally:
        server.jobs.close()


def test_a_page_of_another_site_may_not_change_anything(served, assets):
    client, _ = served
    video = upload(client, assets[0]).json()["id"]
    job = {"kind": "detect", "video": video}
    for headers in (
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site", "origin": "http://testserver"},
    ):
        error(client.post("/api/jobs", json=job, headers=headers), 403, "another site")
        error(client.delete(f"/api/videos/{video}", headers=headers), 403, "another site")
    with open(assets[0], "rb") as fh:
        files = {"file": ("a.mp4", fh, "video/mp4")}
        error(
            client.post("/api/videos", files=files, headers={"origin": "http://evil.example"}),
            403,
            "another site",
        )
    # reading stays open (the page's own images and files), and the page itself may write
    assert client.get("/api/videos", headers={"sec-fetch-site": "cross-site"}).status_code == 200
    same = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
    assert client.post("/api/jobs", json=job, headers=same).status_code == 202


def test_every_answer_forbids_foreign_framing_and_content(served):
    client, _ = served
    for path in ("/", "/api/health", "/docs", "/api/jobs/0123456789abcdef"):
        headers = client.get(path).headers
        assert "frame-ancestors 'self'" in headers["content-security-policy"]
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "SAMEORIGIN"
        assert headers["x-content-type-options"] == "nosniff"


# -------------------------------------------------------------- 12, 13. token and types


def test_an_empty_token_is_refused_at_start(assets, tmp_path, capsys):
    from tests.conftest import run_cli

    for token in ("", "   "):
        with pytest.raises(VadxError, match="the token is empty"):
            Server({"tiny": assets[1]}, tmp_path, token=token)
    model = assets[1].checkpoint.path
    code, _, err = run_cli(
        ["serve", str(model), "--token", "", "--port", "0", "--data-dir", str(tmp_path / "d")],
        capsys,
    )
    assert_one_error_line(code, err, "the token is empty")


def test_request_fields_take_their_own_type_only(served, assets):
    client, _ = served
    job = finished(client, detect_job(client, upload(client, assets[0]).json()["id"]).json())
    url = f"/api/jobs/{job['id']}/events/0/review"
    for value in (0, 1, "yes", "true", None):
        error(
            client.put(url, json={"reviewed": value}),
            422,
            "reviewed: Input should be a valid boolean",
        )
    video = job["params"]["video"]
    for field, value in (("start", "3"), ("start", 1.5), ("detect", {"smooth": "5"})):
        body = {"kind": "explain", "video": video, field: value}
        assert client.post("/api/jobs", json=body).status_code == 422, (field, value)
    accepted = client.post(
        "/api/jobs", json={"kind": "detect", "video": video, "detect": {"on": 1}}
    )
    assert accepted.status_code == 202  # an integer is a number


# ---------------------------------------------------------------------------- 14. faults


def test_an_upload_a_killed_server_never_finished_is_removed_on_restart(assets, tmp_path):
    orphan = tmp_path / "videos" / "0123456789abcdef"
    orphan.mkdir(parents=True)
    (orphan / "upload.tmp").write_bytes(b"\0" * 8_000_000)
    client, server = make(assets, tmp_path)
    try:
        assert server.videos.removed_partial == ["0123456789abcdef"] and not orphan.exists()
        assert client.get("/api/videos").json() == []
        kept = upload(client, assets[0]).json()["id"]
    finally:
        server.jobs.close()
    _, again = make(assets, tmp_path)  # a finished upload is never taken for a partial one
    again.jobs.close()
    assert again.videos.removed_partial == [] and kept in again.videos


def test_a_video_deleted_while_its_job_runs_fails_the_job_in_api_terms(served, assets, monkeypatch):
    import vadx.serve.runners

    client, _ = served
    started, release = threading.Event(), threading.Event()
    real = vadx.serve.runners.detect

    def slow_detect(*args, **kwargs):
        started.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(vadx.serve.runners, "detect", slow_detect)
    video = upload(client, assets[0]).json()["id"]
    job = detect_job(client, video).json()
    assert started.wait(30)
    assert client.delete(f"/api/videos/{video}").status_code == 204
    release.set()
    job = finished(client, job)
    assert job["state"] == "failed"
    assert job["error"] == f"video {video} was deleted while the job ran"


def test_an_upload_past_the_limit_is_413_naming_it_even_without_a_length(assets, tmp_path):
    client, server = make(assets, tmp_path, max_upload_bytes=100_000)
    try:
        boundary = b"vadxboundary"
        head = (
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
            b'filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
        )
        body = iter([head, *[b"\0" * 50_000] * 10, b"\r\n--" + boundary + b"--\r\n"])
        response = client.post(
            "/api/videos",
            content=body,
            headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"},
        )
        error(response, 413, "the upload is larger than the limit of 0.1 MB")
    finally:
        server.jobs.close()


def test_a_job_is_shown_finished_only_once_its_job_json_is_final(served, assets, monkeypatch):
    """The end of a job is written before the API shows it (a client who sees it finished
    lists a final folder; before, it could find job.json half-written beside the job)."""
    client, server = served
    writing, proceed = threading.Event(), threading.Event()
    real_write = job_store.write_json

    def slow_final_write(path, document, *args, **kwargs):
        if document.get("state") in job_store.FINISHED:
            writing.set()
            proceed.wait(30)
        return real_write(path, document, *args, **kwargs)

    monkeypatch.setattr(job_store, "write_json", slow_final_write)
    video = upload(client, assets[0]).json()["id"]
    job = detect_job(client, video).json()
    assert writing.wait(60)
    assert client.get(f"/api/jobs/{job['id']}").json()["state"] == "running"
    proceed.set()
    job = finished(client, job)
    assert job["state"] == "done"
    saved = json.loads((server.jobs.folder(job["id"]) / "job.json").read_text())
    assert saved["state"] == "done" and saved["files"] == job["files"]


def test_a_cancel_that_answered_200_always_ends_the_job_cancelled(served, assets):
    client, server = served
    release = threading.Event()
    real = server.jobs.runners["detect"]

    def no_more_progress(job, out, progress):  # a job that reuses a detection reports none
        release.wait(30)
        return real(job, out, lambda *args: None)

    server.jobs.runners["detect"] = no_more_progress
    video = upload(client, assets[0]).json()["id"]
    job = detect_job(client, video).json()
    deadline = time.monotonic() + 30
    while server.jobs.jobs[job["id"]].state != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    release.set()
    job = finished(client, job)
    assert job["state"] == "cancelled" and job["files"] == []
    assert sorted(p.name for p in server.jobs.folder(job["id"]).iterdir()) == ["job.json"]
    error(client.post(f"/api/jobs/{job['id']}/cancel"), 409, "has already finished (cancelled)")
    server.jobs.runners["detect"] = real
    done = finished(client, detect_job(client, video).json())
    error(client.post(f"/api/jobs/{done['id']}/cancel"), 409, "too late" if False else "finished")


def test_an_explain_window_shorter_than_the_models_clip_is_refused_at_submission(served, assets):
    client, _ = served
    video = upload(client, assets[0]).json()["id"]
    request = {"kind": "explain", "video": video, "start": 0, "end": 2}  # the tiny model: 4 frames
    error(
        client.post("/api/jobs", json=request),
        400,
        "frames 0–2 are 3, fewer than the model's clip of 4 frames",
    )
    ok = client.post(
        "/api/jobs", json={**request, "end": 3, "methods": ["gradcam"], "temporal": []}
    )
    assert finished(client, ok.json())["state"] == "done"
