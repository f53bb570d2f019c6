"""The watch's parts: the capture queue, the event log, the alert explainer, metrics."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from vadx.detect import Event
from vadx.video.live import LiveFrame
from vadx.watch.alerts import AlertExplainer
from vadx.watch.capture import FrameQueue
from vadx.watch.engine import Alert
from vadx.watch.metrics import DomainMetrics, LiveMetrics, MetricsSnapshot
from vadx.watch.runner import WatchMetrics
from vadx.watch.sinks import EventLog, ExplainedRecord, WebhookStats, event_record


def frame(number: int, session: int = 0) -> LiveFrame:
    return LiveFrame(number, time.monotonic(), np.zeros((4, 4, 3), np.uint8), session)


def test_a_live_queue_drops_its_oldest_frames_and_counts_them():
    queue = FrameQueue(3, drop_oldest=True)
    for number in range(5):
        queue.put(frame(number))
    assert queue.stats.dropped == 2 and queue.stats.put == 5 and queue.stats.deepest == 3
    assert [f.number for f in queue.get_many(10, timeout=0)] == [2, 3, 4]
    assert queue.get_many(10, timeout=0) == []  # empty, not ended
    queue.end()
    assert queue.get_many(10, timeout=0) is None


def test_a_file_queue_waits_for_room_and_loses_nothing():
    queue = FrameQueue(2, drop_oldest=False)
    got = []

    def consume():
        while (batch := queue.get_many(1, timeout=1.0)) is not None:
            got.extend(f.number for f in batch)
            time.sleep(0.005)

    reader = threading.Thread(target=consume)
    reader.start()
    for number in range(20):
        queue.put(frame(number))
    queue.end()
    reader.join(10)
    assert got == list(range(20)) and queue.stats.dropped == 0 and queue.stats.deepest <= 2
    with pytest.raises(ValueError, match="at least 1"):
        FrameQueue(0, drop_oldest=True)


def alert(kind: str = "started", window=None) -> Alert:
    event = Event(10, 12, 1.0, 1.2, "fire", 0.9, 0.8)
    return Alert(1, kind, event, 1_700_000_000.0, 1_700_000_000.2, 0, None, window, (10, 11), 10.0)


def test_the_log_continues_numbering_after_a_torn_line(tmp_path):
    log = EventLog(tmp_path)
    assert log.first_id == 1
    log.write(event_record(alert(), 1))
    log.write(event_record(alert("ended"), 1))
    log.close()
    with open(tmp_path / "events.jsonl", "a") as fh:
        fh.write('{"id": 2, "state": "sta')  # a crash in the middle of a write
    again = EventLog(tmp_path)
    assert again.first_id == 2
    again.close()
    record = json.loads((tmp_path / "events.jsonl").read_text().splitlines()[0])
    assert record["started_at"] == "2023-11-14T22:13:20.000+00:00"
    assert (
        record["class"] == "fire" and record["start_frame"] == 10 and record["state"] == "started"
    )


def test_a_failing_explanation_is_counted_and_said_not_raised(tiny_model, tmp_path):
    explainer = AlertExplainer(tiny_model, tmp_path)
    broken = alert(window=np.zeros((2, 8, 8), np.uint8))  # not RGB frames
    with pytest.warns(UserWarning, match="explaining alert 1 failed: .*frames"):
        assert explainer.submit(1, broken, event_record(broken, 1))
        assert not explainer.submit(2, alert(window=None), event_record(alert(), 2))  # none kept
        explainer.close()
    assert explainer.stats.failed == 1 and explainer.stats.skipped == 1
    assert explainer.stats.explained == 0 and "frames" in explainer.stats.last_error


def test_an_explanation_the_disk_refuses_goes_to_the_caller_not_a_warning(
    tiny_model, tmp_path, recwarn
):
    import errno

    (tmp_path / "a-file").write_text("")  # where explanations go is no folder: ENOTDIR
    refused: list = []
    explainer = AlertExplainer(
        tiny_model, tmp_path / "a-file", unwritten=lambda *given: refused.append(given)
    )
    window = np.zeros((2, 32, 32, 3), np.uint8)
    assert explainer.submit(1, alert(window=window), event_record(alert(), 1))
    explainer.close()
    ((number, error),) = refused  # the caller says it (the console: its recording status)
    assert number == 1 and isinstance(error, OSError) and error.errno == errno.ENOTDIR
    assert str(tmp_path / "a-file") in error.filename
    assert explainer.stats.failed == 1 and "Not a directory" in explainer.stats.last_error
    assert not [w for w in recwarn if "explaining alert" in str(w.message)]


def test_metrics_rates_and_latency_percentiles():
    metrics = LiveMetrics()
    assert metrics.snapshot(0, 0, 0).latency_ms == {"p50": None, "p95": None, "max": None}
    for latency in (0.01, 0.02, 0.03, 0.04, 0.05):
        metrics.decision(latency)
    metrics.frames_done(10)
    snap = metrics.snapshot(12, 2, 1)
    assert snap.latency_ms == {"p50": 30.0, "p95": 48.0, "max": 50.0}
    assert snap.frames_processed == 10 and snap.frames_dropped == 2
    assert snap.capture_fps > 0 and snap.windows == 5 and snap.queue_depth == 1


def test_records_are_written_as_the_log_has_always_held_them(tmp_path):
    log = EventLog(tmp_path, sqlite=True)
    log.write(event_record(alert(), 1, (10, 11)))
    log.write(ExplainedRecord(1, "fire", "alerts/event-000001"))
    log.close()
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert lines == [
        '{"id": 1, "state": "started", "class": "fire", "start_frame": 10, "end_frame": 12, '
        '"start_time": 1.0, "end_time": 1.2, "started_at": "2023-11-14T22:13:20.000+00:00", '
        '"ended_at": "2023-11-14T22:13:20.200+00:00", "peak_probability": 0.9, '
        '"mean_probability": 0.8, "session": 0, "reason": null, "out_of_domain": null, '
        '"window_frames": [10, 11], "signal": "classifier"}',
        '{"id": 1, "state": "explained", "class": "fire", "explanation": "alerts/event-000001"}',
    ]
    import sqlite3

    with sqlite3.connect(tmp_path / "events.sqlite") as db:
        rows = db.execute("SELECT id, state, class, start_frame, record FROM events").fetchall()
    assert rows == [(1, "started", "fire", 10, lines[0]), (1, "explained", "fire", None, lines[1])]


def test_metrics_are_written_with_the_keys_that_apply():
    live = MetricsSnapshot(1.5, 10.0, 9.5, 20, 19, 1, 2, 4, DomainMetrics(1, 0.8), {"p50": 1.0})
    plain = WatchMetrics(live, 19, [3], 0, None).to_json()
    assert list(plain) == [
        "uptime_s",
        "capture_fps",
        "processed_fps",
        "frames_captured",
        "frames_processed",
        "frames_dropped",
        "queue_depth",
        "windows",
        "domain",
        "latency_ms",
        "cnn_frames",
        "open_events",
        "reconnections",
        "source_error",
    ]
    assert plain["domain"] == {"windows_outside": 1, "latest_score": 0.8}
    full = WatchMetrics(
        live, 19, [], 1, "gone", (2, 1, 0), WebhookStats(sent=3), {"p50": 2.0}
    ).to_json()
    assert list(full)[-3:] == ["explanations", "webhook", "capture_late_ms"]
    assert full["explanations"] == {"done": 2, "skipped": 1, "failed": 0}
    assert full["webhook"] == {
        "sent": 3,
        "failed": 0,
        "retries": 0,
        "dropped": 0,
        "last_error": None,
    }
