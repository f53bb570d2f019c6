"""What a watch shows: annotated frames to an MP4 file and/or an MJPEG stream for a browser.

Each processed frame gets the latest window's "Class: NN%" label, red with a red border while
an event is on. The HTTP server (``--mjpeg PORT``) serves ``/`` (a page with the live view and
metrics), ``/stream.mjpg`` (multipart JPEG), ``/frame.jpg`` (the latest frame) and
``/metrics`` (JSON); its threads encode JPEGs themselves, so a slow browser never slows
detection.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vadx.errors import VadxError
from vadx.render.overlay import label_frame
from vadx.video.encode import Mp4Writer

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>vadx watch</title>
<style>body{font:14px sans-serif;margin:1em;background:#111;color:#eee}
img{max-width:100%;border:1px solid #444}pre{background:#222;padding:.5em}</style></head>
<body><h1>vadx watch</h1><img src="stream.mjpg" alt="live view"><pre id="m"></pre>
<script>async function t(){try{const r=await fetch('metrics');
document.getElementById('m').textContent=JSON.stringify(await r.json(),null,1)}catch(e){}}
setInterval(t,1000);t()</script></body></html>"""


class LiveView:
    """The latest annotated frame, and the annotated MP4 when ``path`` is given (its frame
    rate from the first two frames' timestamps)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = path
        self._writer: Mp4Writer | None = None
        self._first: tuple[np.ndarray, float] | None = None
        self._latest: np.ndarray | None = None
        self.sequence = 0
        self._changed = threading.Condition()

    def show(self, frame: np.ndarray, seconds: float, text: str, alert: bool) -> None:
        """Annotate ``frame`` (at ``seconds`` in its stream) with ``text``, red on ``alert``."""
        annotated = label_frame(frame, text, alert)
        if self.path is not None:
            self._record(annotated, seconds)
        with self._changed:
            self._latest = annotated
            self.sequence += 1
            self._changed.notify_all()

    def _record(self, frame: np.ndarray, seconds: float) -> None:
        if self._writer is None:
            if self._first is None:
                self._first = (frame, seconds)
                return
            elapsed = seconds - self._first[1]
            fps = 1.0 / elapsed if elapsed > 0 else 25.0
            self._writer = Mp4Writer(
                self.path, fps, self._first[0].shape[:2], reproducible=False
            ).__enter__()
            self._writer.write(self._first[0])
        if frame.shape[:2] != self._writer.size:  # the camera came back resized
            height, width = self._writer.size
            frame = cv2.resize(frame, (width, height))
        self._writer.write(frame)

    def latest_jpeg(self, after: int = -1, timeout: float = 5.0) -> tuple[int, bytes | None]:
        """The newest frame after sequence number ``after`` as JPEG (waits up to ``timeout``)."""
        with self._changed:
            if self.sequence <= after:
                self._changed.wait(timeout)
            frame, sequence = self._latest, self.sequence
        if frame is None:
            return sequence, None
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80]
        )
        return sequence, data.tobytes() if ok else None

    def close(self) -> None:
        """Finish the MP4 (it appears under its name only now)."""
        with self._changed:
            self._changed.notify_all()
        if self._writer is None and self._first is not None:  # a single frame
            self._writer = Mp4Writer(
                self.path, 25.0, self._first[0].shape[:2], reproducible=False
            ).__enter__()
            self._writer.write(self._first[0])
        if self._writer is not None:
            self._writer.__exit__(None, None, None)
            self._writer = None


class MjpegServer:
    """The live view and metrics over HTTP on ``host:port`` (port 0: a free one)."""

    def __init__(
        self, view: LiveView, metrics: Callable[[], dict[str, Any]], host: str, port: int
    ) -> None:
        self.view, self.metrics = view, metrics
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep the console for metrics
                pass

            def do_GET(self) -> None:
                route = self.path.split("?")[0]
                if route == "/":
                    self._send(200, "text/html; charset=utf-8", PAGE.encode())
                elif route == "/metrics":
                    self._send(200, "application/json", json.dumps(server.metrics()).encode())
                elif route == "/frame.jpg":
                    _, data = server.view.latest_jpeg(timeout=0)
                    if data is None:
                        self._send(503, "application/json", b'{"error": "no frame yet"}')
                    else:
                        self._send(200, "image/jpeg", data)
                elif route == "/stream.mjpg":
                    self._stream()
                else:
                    self._send(
                        404,
                        "application/json",
                        json.dumps({"error": f"no such page: {route}"}).encode(),
                    )

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                sequence = -1
                try:
                    while not server.stopping.is_set():
                        sequence, data = server.view.latest_jpeg(sequence, timeout=1.0)
                        if data is None:
                            continue
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(data)}\r\n\r\n".encode()
                            + data
                            + b"\r\n"
                        )
                except (BrokenPipeError, ConnectionResetError):
                    return  # the browser went away

        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as err:
            raise VadxError(
                f"cannot serve the live view on {host}:{port}: {err.strerror or err}; "
                "choose another {mjpeg} port",
                "mjpeg",
            ) from err
        self.httpd.daemon_threads = True
        self.address = self.httpd.server_address
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="vadx-mjpeg", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}/"

    def start(self) -> MjpegServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
