"""Loopback servers for tests: ffmpeg (from imageio-ffmpeg) serving a file on tcp://, and an
HTTP server on a free port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import imageio_ffmpeg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serving(port: int) -> bool:
    """Whether a socket listens on ``port``, or has taken a client on it: ffmpeg's
    ``listen=1`` stops listening once it accepts, and a client that keeps retrying can connect
    between two looks (read from /proc, so nothing connects to it)."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    # 0A: LISTEN, 01: ESTABLISHED
    return any(int(row[1].split(":")[1], 16) == port and row[3] in ("0A", "01") for row in rows)


@contextlib.contextmanager
def http_server(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free loopback port in a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def tcp_server(path, port, realtime=False):
    """ffmpeg (from imageio-ffmpeg) serving a file once as MPEG-TS on tcp://127.0.0.1:port."""
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v",
        "error",
        *(["-re"] if realtime else []),
        "-i",
        str(path),
        "-c",
        "copy",
        "-f",
        "mpegts",
        f"tcp://127.0.0.1:{port}?listen=1",
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        # wait until it listens, without connecting (it serves one client)
        while time.monotonic() < deadline and process.poll() is None and not serving(port):
            time.sleep(0.05)
        yield process
    finally:
        process.kill()
        process.wait()
