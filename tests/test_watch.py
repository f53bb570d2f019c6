"""``vadx watch`` end to end: files, a tcp stream that dies and comes back, signals, outputs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import numpy as np
import pytest
import torch

from tests.conftest import half_outside_domain, run_cli
from tests.streams import free_port, http_server, tcp_server
from vadx.data.synth import render_long
from vadx.detect import DetectConfig, detect
from vadx.detect.domain import save_domain
from vadx.models import CRNN, CRNNConfig, load_model, save_model
from vadx.video import VideoReader, write_mp4, write_png
from vadx.watch import Watch, WatchConfig, watch

TINY = CRNNConfig(
    backbone_args={"width": 0.0625},
    num_frames=4,
    frame_size=(32, 32),
    rnn_hidden=16,
    head_hidden=(8,),
)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A 42-frame video at 10 fps, a tiny model with spread-out probabilities (saved), and
    thresholds midway between its scores so that the video has two events."""
    root = tmp_path_factory.mktemp("watch")
    video = render_long(1, [("normal", 12), ("fire", 20), ("normal", 10)], (48, 48))
    path = write_mp4(root / "long.mp4", video.frames, fps=10)
    torch.manual_seed(0)
    model = CRNN(TINY).eval()
    with torch.no_grad():
        model.head[-1].weight.mul_(300)
    save_model(model, root / "model")
    model = load_model(root / "model")
    base = DetectConfig(stride=2, step=1, min_frames=1)
    score = np.unique(detect(model, path, base).smoothed_score)
    config = replace(
        base,
        on=float(score[len(score) // 2 : len(score) // 2 + 2].mean()),
        off=float(score[len(score) // 3 : len(score) // 3 + 2].mean()),
    )
    events = detect(model, path, config).events
    assert len(events) >= 2
    return root, path, model, config, events


def records(out):
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def as_tuples(events, offset=0):
    return [
        (e.start_frame + offset, e.end_frame + offset, e.class_name, round(e.peak_probability, 5))
        for e in events
    ]


def ended(out):
    return [
        (r["start_frame"], r["end_frame"], r["class"], r["peak_probability"])
        for r in records(out)
        if r["state"] == "ended"
    ]


def test_a_file_gives_the_events_of_detect_and_explains_each_alert(assets, tmp_path):
    _, path, model, config, events = assets
    out = tmp_path / "w"
    alerts = []
    settings = WatchConfig(detect=config, sqlite=True, annotate=out / "annotated.mp4")
    summary = watch(model, str(path), out, settings, on_alert=lambda a, r: alerts.append(r))
    assert ended(out) == as_tuples(events)
    assert summary.ended == "source ended" and summary.metrics.live.frames_dropped == 0
    assert summary.metrics.live.frames_processed == 42 and len(summary.events) == len(events)
    log = records(out)
    for record in (r for r in log if r["state"] == "started"):
        number = record["id"]
        states = [r["state"] for r in log if r["id"] == number]
        assert sorted(states) == ["ended", "explained", "started"]
        explained = next(r for r in log if r["id"] == number and r["state"] == "explained")
        folder = out / explained["explanation"]
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["event"]["id"] == number and manifest["target_names"] == [record["class"]]
        first, last = record["window_frames"]
        assert manifest["clip_frames"] == list(range(first, last + 1))
        assert (folder / "strip.png").stat().st_size > 1000
        assert "trust" not in explained and "trust" not in manifest  # not asked for
    assert [r.state for r in alerts] == [r["state"] for r in log if r["state"] != "explained"]
    import sqlite3

    with sqlite3.connect(out / "events.sqlite") as db:
        rows = db.execute("SELECT id, state, start_frame, end_frame FROM events").fetchall()
    assert rows == [(r["id"], r["state"], r.get("start_frame"), r.get("end_frame")) for r in log]
    with VideoReader(out / "annotated.mp4") as annotated:
        assert annotated.info.num_frames == 42 and annotated.info.fps == pytest.approx(10)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames_processed"] == 42 and metrics["latency_ms"]["p50"] is not None


def test_a_tcp_stream_that_dies_and_comes_back_loses_and_repeats_no_event(assets, tmp_path):
    root, path, model, config, events = assets
    port = free_port()
    out = tmp_path / "w"
    settings = WatchConfig(
        detect=config, queue_size=256, max_retries=10, backoff=(0.05, 0.1), explain=False
    )
    run = Watch(model, f"tcp://127.0.0.1:{port}", out, settings)
    sessions: dict[int, list[np.ndarray]] = {0: [], 1: []}
    push = run.detector.push_many

    def recording(frames, infos):  # what the engine was given, per connection
        for frame, info in zip(frames, infos, strict=True):
            sessions[info.session].append(frame)
        return push(frames, infos)

    run.detector.push_many = recording
    result = {}
    thread = threading.Thread(target=lambda: result.update(summary=run.run()))
    with tcp_server(path, port, realtime=True) as first:
        thread.start()
        deadline = time.monotonic() + 30
        while run.metrics.processed < 25 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.kill()  # the camera dies mid-stream
        first.wait()
    with tcp_server(path, port):  # and comes back, serving the file from its start
        thread.join(60)
    assert not thread.is_alive()
    metrics = result["summary"].metrics
    assert metrics.live.frames_dropped == 0 and metrics.reconnections >= 1
    received = len(sessions[0])
    assert 25 <= received < 42 and len(sessions[1]) == 42
    with VideoReader(path) as video:
        frames = video.read_range().data
    np.testing.assert_array_equal(np.stack(sessions[1]), frames)
    # a stream cut mid-frame can end on a frame FFmpeg concealed (damaged, not flagged)
    np.testing.assert_array_equal(np.stack(sessions[0][:-1]), frames[: received - 1])
    prefix = root / f"prefix-{received}"
    for t, frame in enumerate(sessions[0]):
        write_png(prefix / f"{t:05d}.png", frame)
    before = detect(model, prefix, config).events
    assert ended(out) == as_tuples(before) + as_tuples(events, offset=received)
    log = records(out)
    ids = [r["id"] for r in log if r["state"] == "started"]
    assert ids == list(range(1, len(ids) + 1))
    assert sorted(ids) == sorted(r["id"] for r in log if r["state"] == "ended")
    last_before = [r for r in log if r["state"] == "ended" and r["session"] == 0]
    assert all(r["reason"] in ("score", "source reconnected") for r in last_before)
    assert result["summary"].ended.startswith("source failed")


def test_restarting_on_the_same_folder_appends_and_numbers_on(assets, tmp_path):
    _, path, model, config, events = assets
    settings = WatchConfig(detect=config, explain=False)
    watch(model, str(path), tmp_path, settings)
    watch(model, str(path), tmp_path, settings)
    log = records(tmp_path)
    assert ended(tmp_path) == as_tuples(events) * 2
    assert [r["id"] for r in log if r["state"] == "started"] == list(range(1, 2 * len(events) + 1))


class Receiver(BaseHTTPRequestHandler):
    """A webhook that fails its first two calls."""

    calls: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Receiver.calls.append(body)
        self.send_response(503 if len(Receiver.calls) <= 2 else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def quick_retries(monkeypatch):
    """Webhook retries 10 ms apart instead of 0.5 s, 1 s, …: what is counted and delivered
    does not depend on how long a retry waits."""
    from functools import partial

    import vadx.watch.runner
    from vadx.watch.sinks import Webhook

    monkeypatch.setattr(vadx.watch.runner, "Webhook", partial(Webhook, backoff=0.01))


def test_the_webhook_gets_every_record_despite_failures(assets, tmp_path, quick_retries):
    _, path, model, config, _ = assets
    Receiver.calls = []
    with http_server(Receiver) as base:
        summary = watch(
            model,
            str(path),
            tmp_path,
            WatchConfig(detect=config, explain=False, webhook=base + "hook"),
        )
    delivered = Receiver.calls[2:]  # the first one was refused twice, then accepted
    assert delivered == records(tmp_path)
    assert Receiver.calls[0] == Receiver.calls[1] == Receiver.calls[2]
    stats = summary.metrics.webhook
    assert stats.sent == len(delivered) and stats.retries == 2 and stats.failed == 0


def test_a_dead_webhook_is_counted_and_the_log_has_everything(assets, tmp_path, quick_retries):
    _, path, model, config, events = assets
    url = f"http://127.0.0.1:{free_port()}/nobody"
    settings = WatchConfig(detect=config, explain=False, webhook=url, webhook_retries=1)
    with pytest.warns(UserWarning, match="did not take a record after") as said:
        summary = watch(model, str(path), tmp_path, settings)
    assert len([w for w in said if "webhook" in str(w.message)]) == 1  # said once, then counted
    assert ended(tmp_path) == as_tuples(events)
    stats = summary.metrics.webhook
    assert stats.failed == stats.retries == len(records(tmp_path))
    assert "Connection refused" in stats.last_error


class Hanging(BaseHTTPRequestHandler):
    """A webhook that does not answer until the test lets it."""

    gate = threading.Event()

    def do_POST(self):
        Hanging.gate.wait(60)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_hanging_webhook_never_holds_up_detection(assets, tmp_path):
    _, path, model, config, events = assets
    Hanging.gate.clear()
    with http_server(Hanging) as base:
        run = Watch(
            model, str(path), tmp_path, WatchConfig(detect=config, explain=False, webhook=base)
        )
        thread = threading.Thread(target=run.run)
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while len(ended(tmp_path)) < len(events) and time.monotonic() < deadline:
                time.sleep(0.01)
            # every frame processed, every event logged, while the webhook still hangs
            assert run.metrics.processed == 42 and ended(tmp_path) == as_tuples(events)
            assert run.webhook.stats.sent == 0
        finally:
            Hanging.gate.set()
            thread.join(60)
    assert run.webhook.stats.sent == len(records(tmp_path))


def test_live_view_and_metrics_over_http(assets, tmp_path):
    _, path, model, config, _ = assets
    port = free_port()
    stop = threading.Event()
    result = {}
    settings = WatchConfig(detect=config, pace=True, explain=False, mjpeg=("127.0.0.1", port))
    thread = threading.Thread(
        target=lambda: result.update(summary=watch(model, str(path), tmp_path, settings, stop=stop))
    )
    thread.start()
    try:
        time.sleep(1.0)  # 10 fps: some frames are through
        base = f"http://127.0.0.1:{port}"
        metrics = json.loads(urllib.request.urlopen(f"{base}/metrics", timeout=5).read())
        assert metrics["frames_processed"] > 0 and metrics["capture_fps"] > 0
        jpeg = urllib.request.urlopen(f"{base}/frame.jpg", timeout=5).read()
        assert jpeg[:2] == b"\xff\xd8"
        with urllib.request.urlopen(f"{base}/stream.mjpg", timeout=5) as stream:
            assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            head = stream.read(200)
        assert head.startswith(b"--frame\r\nContent-Type: image/jpeg")
        assert b"<img" in urllib.request.urlopen(base, timeout=5).read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/nothing", timeout=5)
        assert missing.value.code == 404
    finally:
        stop.set()
        thread.join(30)
    summary = result["summary"]
    assert summary.ended == "stopped" and 0 < summary.metrics.live.frames_processed < 42


def test_sigterm_closes_the_open_event_and_flushes(assets, tmp_path):
    root, path, *_ = assets
    out = tmp_path / "w"
    command = [
        sys.executable,
        "-m",
        "vadx",
        "watch",
        str(root / "model"),
        str(path),
        "--out",
        str(out),
        "--pace",
        "--on",
        "0",
        "--off",
        "0",
        "--min-frames",
        "1",
        "--stride",
        "2",
        "--no-explain",
        "--metrics-every",
        "0.5",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        (out / "events.jsonl").exists() and (out / "events.jsonl").read_text()
    ):
        time.sleep(0.05)  # wait for the event (always on) to start
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()
    log = records(out)
    assert [r["state"] for r in log] == ["started", "ended"]
    assert log[1]["reason"] == "stopped" and log[1]["end_frame"] < 41
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ended"] == "stopped"
    assert "stopped after" in stdout.decode() and "ALERT" in stdout.decode()


def test_events_and_metrics_say_which_windows_are_outside_the_domain(assets, tmp_path):
    _, path, model, config, _ = assets
    with VideoReader(path) as video:
        frames = video.read_range().data
    checkpoint = save_model(model, tmp_path / "model")
    save_domain(checkpoint, half_outside_domain(model, frames))
    familiar = load_model(checkpoint)
    offline = detect(familiar, path, config)
    assert 0 < offline.domain["windows_outside"] < offline.domain["windows"]
    summary = watch(familiar, str(path), tmp_path / "w", WatchConfig(detect=config, explain=False))
    log = [r for r in records(tmp_path / "w") if r["state"] == "ended"]
    assert [r["out_of_domain"] for r in log] == pytest.approx(
        [round(e.out_of_domain, 4) for e in offline.events]
    )
    assert summary.metrics.live.domain.windows_outside == offline.domain["windows_outside"]
    assert summary.settings["domain"] == "flag"


def test_cli(assets, tmp_path, capsys):
    root, path, _, config, events = assets
    code, stdout, stderr = run_cli(
        [
            "watch",
            str(root / "model"),
            str(path),
            "--out",
            str(tmp_path),
            "--stride",
            "2",
            "--step",
            "1",
            "--min-frames",
            "1",
            "--on",
            str(config.on),
            "--off",
            str(config.off),
            "--no-explain",
        ],
        capsys,
    )
    assert code == 0, stderr
    assert ended(tmp_path) == as_tuples(events)
    assert f"42 frames, {len(events)} event(s), 0 dropped" in stdout
    busy = socket.socket()  # a port something else listens on
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    for argv, message in [
        ([str(tmp_path / "missing.mp4")], "video not found"),
        ([str(path), "--on", "0.2", "--off", "0.5"], "off ≤ on"),
        ([str(path), "--webhook", "ftp://x"], "http(s):// URL"),
        ([str(path), "--queue", "0"], "'--queue': must be an integer from 1 to 100,000"),
        ([str(path), "--methods", "nope"], "unknown method 'nope'"),
        ([str(path), "--domain", "suppress"], "needs domain statistics"),
        ([str(path), "--domain", "maybe"], "domain must be flag, suppress, off"),
        ([str(path), "--mjpeg", str(busy.getsockname()[1])], "choose another --mjpeg port"),
    ]:
        code, _, stderr = run_cli(
            ["watch", str(root / "model"), *argv, "--out", str(tmp_path / "bad")], capsys
        )
        assert code == 2 and message in stderr, stderr
    busy.close()


def test_a_live_source_that_outruns_detection_drops_its_oldest_frames(assets, tmp_path):
    root, _, model, config, _ = assets
    frames = render_long(1, [("normal", 12), ("fire", 20), ("normal", 10)], (48, 48)).frames
    fast = write_mp4(root / "fast.mp4", frames, fps=1000)  # 42 frames in 42 ms, like a burst
    settings = WatchConfig(detect=config, pace=True, queue_size=2, batch=1, explain=False)
    summary = watch(model, str(fast), tmp_path, settings)
    m = summary.metrics.live
    assert m.frames_dropped > 0 and m.frames_dropped + m.frames_processed == 42
    assert m.frames_captured == 42
    log = records(tmp_path)
    assert sorted(r["id"] for r in log if r["state"] == "started") == sorted(
        r["id"] for r in log if r["state"] == "ended"
    )


def test_with_trust_each_alert_explanation_gets_its_verdict(assets, tmp_path, capsys):
    """``vadx watch --trust``: each explained alert's manifest holds every map's and curve's
    verdict, and its ``explained`` record the worst of them (issue 27)."""
    from vadx.quality.trust import VERDICTS, worst_verdict

    root, path, _, config, events = assets
    out = tmp_path / "w"
    argv = ["watch", str(root / "model"), str(path), "--out", str(out), "--trust"]
    argv += ["--on", str(config.on), "--off", str(config.off), "--stride", str(config.stride)]
    argv += ["--step", str(config.step), "--min-frames", str(config.min_frames)]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    explained = [r for r in records(out) if r["state"] == "explained"]
    assert len(explained) == len(events)
    for record in explained:
        manifest = json.loads((out / record["explanation"] / "manifest.json").read_text())
        verdicts = [v["verdict"] for v in manifest["trust"].values()]
        assert set(manifest["trust"]) == {"layercam", "frame_shapley"}
        assert set(verdicts) <= set(VERDICTS) and record["trust"] == worst_verdict(verdicts)
