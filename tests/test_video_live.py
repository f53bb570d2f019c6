from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from tests.streams import free_port, http_server, tcp_server
from tests.videos import frame_numbers, make_video, numbered_frames
from vadx.video.live import LiveSource, SourceError, is_live


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("live") / "clip.mp4", numbered_frames(20), fps=10)


def test_reads_a_tcp_stream_on_loopback(clip):
    port = free_port()
    with tcp_server(clip, port):
        source = LiveSource(f"tcp://127.0.0.1:{port}", max_retries=0, sleep=lambda s: None)
        frames = []
        with pytest.raises(SourceError, match="failed 1 times in a row"):
            for frame in source.frames():  # the server sends the file once, then closes
                frames.append(frame)
    assert frame_numbers(np.stack([f.data for f in frames])) == list(range(20))
    assert [f.number for f in frames] == list(range(20))
    assert all(f.session == 0 for f in frames)
    np.testing.assert_allclose([f.time for f in frames], np.arange(20) / 10, atol=1e-6)


def test_reconnects_with_back_off_after_the_stream_drops(clip):
    port = free_port()
    source = LiveSource(f"tcp://127.0.0.1:{port}", max_retries=20, backoff=(0.05, 0.2))
    frames = []
    with tcp_server(clip, port) as first:
        iterator = source.frames()
        while len(frames) < 20:
            frames.append(next(iterator))
        first.wait(10)
    with tcp_server(clip, port):  # the camera comes back
        while len(frames) < 40:
            frames.append(next(iterator))
    source.close()
    assert frame_numbers(np.stack([f.data for f in frames])) == list(range(20)) * 2
    assert frames[-1].session >= 1 and source.stats.connections >= 2
    assert source.stats.frames == 40


def test_back_off_doubles_up_to_the_cap_then_gives_up():
    delays = []
    source = LiveSource(
        f"tcp://127.0.0.1:{free_port()}",
        open_timeout=1,
        max_retries=4,
        backoff=(0.5, 2.0),
        sleep=delays.append,
    )
    with (
        pytest.warns(
            UserWarning, match=r"retrying in 0.5 s, then less and less often \(at most"
        ) as said,
        pytest.raises(SourceError, match="failed 5 times in a row; last error: cannot open"),
    ):
        list(source.frames())
    assert delays == [0.5, 1.0, 2.0, 2.0]
    assert len(said) == 1 and "every 2 s), 4 times" in str(said[0].message)  # once an outage


def test_a_stalled_server_times_out_instead_of_hanging():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    port = server.getsockname()[1]
    start = time.monotonic()
    source = LiveSource(f"tcp://127.0.0.1:{port}", open_timeout=1, read_timeout=1, max_retries=0)
    with pytest.raises(SourceError, match=f"127.0.0.1:{port}"):
        list(source.frames())
    assert time.monotonic() - start < 15
    server.close()


def test_files_are_read_once_without_reconnecting(clip):
    source = LiveSource(str(clip))
    frames = list(source.frames())
    assert len(frames) == 20 and source.stats.connections == 1


def test_missing_file_and_missing_camera(tmp_path):
    with pytest.raises(SourceError, match="video not found"):
        LiveSource(str(tmp_path / "none.mp4"))
    delays = []
    camera = LiveSource(63, max_retries=1, sleep=delays.append)
    with pytest.raises(SourceError, match="cannot open camera 63"):
        list(camera.frames())
    assert delays == [0.5]


def test_close_from_another_thread_stops_the_stream(clip):
    port = free_port()
    with tcp_server(clip, port, realtime=True):
        source = LiveSource(f"tcp://127.0.0.1:{port}", max_retries=0)
        seen = []
        for frame in source.frames():
            seen.append(frame)
            if len(seen) == 3:
                threading.Thread(target=source.close).start()
                time.sleep(0.3)
    assert 3 <= len(seen) < 20


def test_is_live():
    assert is_live(0) and is_live("2") and is_live("rtsp://cam/1") and is_live("tcp://h:1")
    assert not is_live("clip.mp4") and not is_live("/data/x.avi")


def test_reads_an_http_stream(clip):
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    with http_server(handler) as base:
        source = LiveSource(base + clip.name, max_retries=0)
        frames = []
        with pytest.raises(SourceError, match="ended"):  # a live source should not end
            frames.extend(source.frames())
    assert frame_numbers(np.stack([f.data for f in frames])) == list(range(20))


def test_closing_a_source_that_waits_to_reconnect_stops_it_at_once():
    """A camera that is down waits up to 30 s between attempts; closing it (the console
    removing it, the server stopping) must not wait that out."""
    source = LiveSource(f"tcp://127.0.0.1:{free_port()}", max_retries=None, backoff=(30, 30))
    reader = threading.Thread(target=lambda: list(source.frames()), daemon=True)
    with pytest.warns(UserWarning, match="retrying in 30 s"):
        reader.start()
        while not source.stats.delays:  # it failed once and now waits 30 s
            reader.join(0.01)
    source.close()
    reader.join(10)
    assert not reader.is_alive() and source.stats.failures == 1
