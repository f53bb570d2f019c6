"""The footage around each event (issue 30, "a short clip around each event is kept for
playback"): a camera's bounded ring buffer, the seconds before and after an event at the
analysed rate, the cap on a clip's length, the clip handed over when the stream stops; in the
console, the window written first and replaced by the whole clip, and what the clip covers in
the database."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from tests.test_console import camera, wait_for
from tests.test_watch_engine import thresholds
from vadx.console.cameras import FootageSettings, camera_from
from vadx.console.engine import CameraHub
from vadx.console.footage import MOST_FPS, FootageRecorder, KeptFrame
from vadx.console.service import Console
from vadx.console.store import EventStore
from vadx.detect import DetectConfig, Event
from vadx.errors import ConfigError
from vadx.video import VideoReader
from vadx.watch.engine import Alert, FrameInfo

FPS = 25


# ------------------------------------------------------------------------------ settings
def test_footage_defaults_to_three_seconds_each_side_within_a_minute():
    door = camera_from("door", {"source": "a.mp4", "model": "m"})
    assert door.footage == FootageSettings(pre_capture=3.0, post_capture=3.0, max_seconds=20.0)
    bay = camera_from("bay", {"source": "a.mp4", "model": "m", "footage": {"pre_capture": 5}})
    kept = bay.footage
    assert (kept.pre_capture, kept.post_capture, kept.max_seconds) == (5, 3, 20)


@pytest.mark.parametrize(
    ("footage", "message"),
    [
        ({"pre_capture": 61}, "x.footage.pre_capture: Input should be less than or equal to 60"),
        (
            {"post_capture": -1},
            "x.footage.post_capture: Input should be greater than or equal to 0",
        ),
        ({"max_seconds": 601}, "x.footage.max_seconds: Input should be less than or equal to 600"),
        (
            {"max_seconds": float("nan")},
            "x.footage.max_seconds: Input should be less than or equal",
        ),
        ({"max_seconds": True}, "x.footage.max_seconds: Input should be a valid number"),
        (
            {"pre_capture": 10, "post_capture": 10},
            "x.footage: pre_capture + post_capture (20 s) must be less than max_seconds (20 s)",
        ),
        ({"pre": 1}, "x.footage.pre: footage takes pre_capture, post_capture, max_seconds"),
        (5, "x.footage: footage takes pre_capture, post_capture, max_seconds (seconds)"),
    ],
)
def test_each_fault_in_a_footage_setting_is_one_line_naming_its_place(footage, message):
    with pytest.raises(ConfigError) as caught:
        camera_from("x", {"source": "a", "model": "m", "footage": footage}, "f: cameras.x")
    assert message in str(caught.value) and "\n" not in str(caught.value)


# ---------------------------------------------------------------------- the recorder alone
def frames(first: int, stop: int, size: int = 2, clock=lambda n: n / FPS) -> list[KeptFrame]:
    """Frames ``first`` … ``stop - 1`` at 25 fps (each its own array)."""
    return [
        KeptFrame(np.zeros((size, size, 3), np.uint8), FrameInfo(n, clock(n), 0.0, 0.0))
        for n in range(first, stop)
    ]


def alert(number: int, kind: str, start: int, end: int) -> Alert:
    event = Event(start, end, start / FPS, end / FPS, "fire", 0.9, 0.8)
    return Alert(number, kind, event, 0.0, 0.0, 0)


def numbers(clip) -> list[int]:
    return [f.info.number for f in clip.frames]


def test_the_ring_buffer_holds_the_lag_and_the_pre_roll_and_no_more():
    recorder = FootageRecorder(FootageSettings(pre_capture=2, post_capture=1), lag=30)
    assert recorder.add(frames(0, 1000)) == []
    # the newest frame, the 30 before it, and 2 s (50 frames) before those
    assert [f.info.number for f in recorder.ring] == list(range(1000 - 81, 1000))
    assert recorder.frames_held == 81
    # a clock that stalls (every frame at 0 s): the ring stops at 60 frames a second of pre-roll
    stalled = FootageRecorder(FootageSettings(pre_capture=2, post_capture=1), lag=30)
    stalled.add(frames(0, 1000, clock=lambda n: 0.0))
    assert len(stalled.ring) == 30 + 1 + 2 * MOST_FPS


def test_a_clip_runs_from_pre_capture_before_the_event_to_post_capture_after_it():
    recorder = FootageRecorder(FootageSettings(pre_capture=1, post_capture=0.4), lag=40)
    recorder.add(frames(0, 130))
    assert recorder.started(alert(1, "started", 100, 103)) == []  # announced at frame 129
    recorder.add(frames(130, 160))
    assert recorder.ended(alert(1, "ended", 100, 150)) == []  # 151…159 so far; 10 frames wanted
    (clip,) = recorder.add(frames(160, 170))  # complete with frame 160: 0.4 s after 150
    assert numbers(clip) == list(range(75, 161))  # 25 + 51 + 10 frames
    assert (clip.alert_id, clip.cut, clip.numbers) == (1, "post_capture", (75, 160))
    assert clip.times == (3.0, 6.4) and clip.fps == pytest.approx(25)
    assert recorder.add(frames(170, 171)) == []  # handed over once


def test_an_event_announced_after_its_post_roll_is_there_is_handed_over_at_once():
    recorder = FootageRecorder(FootageSettings(pre_capture=0.2, post_capture=0.2), lag=40)
    recorder.add(frames(0, 40))
    recorder.started(alert(1, "started", 10, 12))
    (clip,) = recorder.ended(alert(1, "ended", 10, 20))  # frames to 39 analysed already
    assert numbers(clip) == list(range(5, 26))
    # post_capture 0: the clip ends with the event
    recorder = FootageRecorder(FootageSettings(pre_capture=0, post_capture=0), lag=40)
    recorder.add(frames(0, 40))
    recorder.started(alert(2, "started", 10, 12))
    (clip,) = recorder.ended(alert(2, "ended", 10, 20))
    assert numbers(clip) == list(range(10, 21))


def test_a_long_event_is_cut_at_max_seconds_and_handed_over_while_it_lasts():
    recorder = FootageRecorder(
        FootageSettings(pre_capture=1, post_capture=1, max_seconds=4), lag=40
    )
    recorder.add(frames(0, 130))
    recorder.started(alert(1, "started", 100, 103))
    (clip,) = recorder.add(frames(130, 300))  # the event goes on
    assert numbers(clip) == list(range(75, 175)) and clip.cut == "max_seconds"  # 4 s
    assert recorder.ended(alert(1, "ended", 100, 290)) == []  # nothing more to hand over


def test_what_is_collecting_is_handed_over_when_the_stream_stops():
    recorder = FootageRecorder(FootageSettings(pre_capture=1, post_capture=5), lag=40)
    recorder.add(frames(0, 130))
    recorder.started(alert(1, "started", 100, 103))
    recorder.add(frames(130, 160))
    recorder.ended(alert(1, "ended", 100, 150))
    recorder.started(alert(2, "started", 155, 158))  # a second event, still open
    first, second = recorder.flush("camera removed")
    assert (numbers(first), first.cut) == (list(range(75, 160)), "camera removed")
    assert (numbers(second), second.cut) == (list(range(130, 160)), "camera removed")
    assert len(recorder.ring) == 0 and recorder.flush("stopped") == []


def test_overlapping_clips_share_frames_and_memory_stays_bounded():
    settings = FootageSettings(pre_capture=1, post_capture=1, max_seconds=4)
    recorder = FootageRecorder(settings, lag=40)
    bound = recorder.lag + 1 + settings.max_seconds * FPS
    most, most_clips = 0, 0
    for k in range(0, 2000, 20):  # an event every 20 frames, each 60 frames long
        recorder.add(frames(k, k + 20))
        recorder.started(alert(k, "started", k, k + 2))
        if k >= 60:
            recorder.ended(alert(k - 60, "ended", k - 60, k - 1))
        most, most_clips = max(most, recorder.frames_held), max(most_clips, len(recorder._pending))
    # four clips at once hold every frame of the last 4 s once: the bound, whatever the events
    assert most_clips == 4 and most == 4 * FPS <= bound


# ----------------------------------------------------------------------------- the engine
@pytest.fixture(scope="module")
def settings(streets, stretched):
    return thresholds(stretched, streets[0], DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)


def expected_numbers(event, clip: FootageSettings, total: int) -> list[int]:
    """The frames a clip should hold: those ``pre_capture`` before the event to
    ``post_capture`` after it at 25 fps, clipped by the file (``total`` frames) and cut at
    ``max_seconds``."""
    first = max(0, event.start_frame - round(clip.pre_capture * FPS))
    last = min(total - 1, event.end_frame + round(clip.post_capture * FPS))
    return list(range(first, min(last + 1, first + round(clip.max_seconds * FPS))))


@pytest.mark.parametrize("pace", [False, True])
def test_each_camera_hands_over_its_events_clips_at_the_analysed_rate(
    streets, stretched, settings, pace
):
    fire, _ = streets
    clips = {
        "short": FootageSettings(pre_capture=0.2, post_capture=0.2),  # 5 frames each side
        "long": FootageSettings(pre_capture=1, post_capture=1),  # past the file's ends
    }
    cameras = [camera(n, fire, settings, pace=pace, footage=c) for n, c in clips.items()]
    alerts, kept = [], []
    hub = CameraHub(
        cameras,
        load=lambda path: stretched,
        on_alert=lambda name, a: alerts.append((name, a)),
        on_footage=lambda name, clip: kept.append((name, clip)),
    )
    hub.run_to_end(timeout=120)
    hub.close()
    assert {s.dropped for s in hub.status()} == {0} and hub.status()[0].frames == 42
    for name, clip in clips.items():
        ended = [a.event for n, a in alerts if n == name and a.kind == "ended"]
        found = {c.alert_id: c for n, c in kept if n == name}
        assert len(ended) == len(found) == 2  # each event's clip, once
        for alert_id, event in enumerate(ended, 1):
            expected = expected_numbers(event, clip, 42)
            assert numbers(found[alert_id]) == expected, (name, event)
            assert found[alert_id].fps == pytest.approx(FPS)
    short = [c for n, c in kept if n == "short"]
    assert [c.cut for c in short] == ["post_capture", "stream ended"]  # the file ended first


def test_a_long_event_is_cut_at_max_seconds(streets, stretched, settings):
    fire, _ = streets
    capped = FootageSettings(pre_capture=0.2, post_capture=0.2, max_seconds=1)
    always = replace(settings, on=0.0, off=0.0)  # every window passes: one event, all along
    held = camera("door", fire, always, pace=False, footage=capped)
    kept = []
    hub = CameraHub([held], load=lambda p: stretched, on_footage=lambda n, c: kept.append(c))
    hub.run_to_end(timeout=120)
    hub.close()
    (clip,) = kept  # one event over the whole file
    assert (numbers(clip), clip.cut) == (list(range(25)), "max_seconds")


# ---------------------------------------------------------------------------- the console
def decoded(path) -> int:
    """Frames in a video file, counted by decoding them."""
    with VideoReader(path) as video:
        return sum(1 for _ in video)


def test_the_window_is_written_first_then_replaced_by_the_whole_clip(
    streets, stretched, settings, tmp_path
):
    fire, _ = streets
    clip = FootageSettings(pre_capture=0.2, post_capture=0.2)
    door = camera("door", fire, settings, footage=clip)
    console = Console([door], tmp_path / "console", load=lambda p: stretched, explain=False)
    windows = tmp_path / "windows"
    windows.mkdir()
    replace_footage = console._replace_footage

    def keep_after_a_look(event_id, kept):  # the file as it was before the clip replaced it
        shutil.copy(
            console.store.footage_folder(event_id) / "clip.mp4", windows / f"{event_id}.mp4"
        )
        replace_footage(event_id, kept)

    console._replace_footage = keep_after_a_look
    with console.listen() as inbox:
        console.start()
        wait_for(lambda: console.hub.status()[0].state == "ended")
        wait_for(lambda: len(list(windows.iterdir())) == 2)
        console.close()
        messages = []
        while not inbox.empty():
            messages.append(inbox.get())
    store = EventStore(tmp_path / "console")
    events = sorted(store.events(), key=lambda e: e.id)
    assert len(events) == 2
    window = stretched.config.num_frames
    for event in events:
        updates = [m.event for m in messages if m.kind == "update" and m.event.id == event.id]
        first, final = updates  # the window, then the whole clip
        assert first.footage_end_frame - first.footage_start_frame + 1 == window
        assert first.footage == f"events/{event.id}"
        assert decoded(windows / f"{event.id}.mp4") == window
        expected = expected_numbers(event, clip, 42)
        assert (final.footage_start_frame, final.footage_end_frame) == (expected[0], expected[-1])
        assert (final.footage_start_time, final.footage_end_time) == pytest.approx(
            (expected[0] / FPS, expected[-1] / FPS)
        )
        assert (event.footage_start_frame, event.footage_end_frame) == (expected[0], expected[-1])
        assert decoded(tmp_path / "console" / event.footage / "clip.mp4") == len(expected)
        assert (tmp_path / "console" / event.footage / "thumb.png").is_file()
    store.close()


def test_removing_a_camera_or_closing_the_console_keeps_the_clip_it_was_collecting(
    streets, stretched, settings, tmp_path
):
    fire, _ = streets
    clip = FootageSettings(pre_capture=0.2, post_capture=5)  # past the file's end
    cameras = [camera(name, fire, settings, footage=clip) for name in ("door", "bay")]
    console = Console(
        cameras, tmp_path / "console", load=lambda p: stretched, explain=False, batch_size=4
    )
    hub = console.hub
    for name in ("door", "bay"):
        hub._cameras[name].capture.start()

    def first_event_ended() -> bool:  # on both cameras, while their files still have frames
        hub.step()
        return {e.camera for e in console.store.events() if e.state == "ended"} == {"door", "bay"}

    wait_for(first_event_ended)
    analysed = {s.name: s.frames for s in hub.status()}
    assert max(analysed.values()) < 42  # the post-roll was still collecting
    console.remove_camera("bay")
    console.close()
    store = EventStore(tmp_path / "console")
    for event in store.events():
        assert event.footage_end_frame == analysed[event.camera] - 1  # every frame it had
        assert event.footage_start_frame == max(0, event.start_frame - 5)
        frames_kept = event.footage_end_frame - event.footage_start_frame + 1
        assert decoded(tmp_path / "console" / event.footage / "clip.mp4") == frames_kept
    store.close()
