"""A stretch of a network stream kept as a file: :func:`record_stream`.

The stream's packets are copied as they come (no decoding, no re-encoding: a camera's own
H.264 or H.265, its own timestamps) into a Matroska file, which vadx reads like any video.
What ``vadx learn-normal`` learns a camera's normal from when it is given the camera itself.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import av

from vadx.files import atomic_path
from vadx.progress import ProgressFn
from vadx.video.live import SourceError, is_live


def record_stream(
    source: str,
    target: str | os.PathLike[str],
    seconds: float,
    *,
    open_timeout: float = 10.0,
    read_timeout: float = 5.0,
    progress: ProgressFn | None = None,
) -> Path:
    """Copy ``seconds`` of the network stream ``source`` (``rtsp://``, ``http(s)://``,
    ``tcp://``…) into ``target`` (Matroska), which appears whole once the stretch is
    recorded; returns its path. The cut falls on a packet, so a frame or two at the end may
    not decode (those that needed a later one). A stream that cannot be opened, has no video,
    or stops before ``seconds`` is a :class:`~vadx.video.live.SourceError`."""
    if not is_live(source) or str(source).isdigit():
        raise SourceError(
            f"{source}: recording takes a network stream (rtsp://, http(s)://, tcp://…); "
            "record a webcam to a file first (e.g. with ffmpeg)"
        )
    if not seconds > 0:
        raise SourceError(f"the recording's length must be positive, got {seconds} s")
    options = {"rtsp_transport": "tcp"} if source.lower().startswith("rtsp") else {}
    try:
        stream_in = av.open(source, options=options, timeout=(open_timeout, read_timeout))
    except av.error.FFmpegError as err:
        raise SourceError(f"cannot open {source}: {err}") from err
    target = Path(target)
    with stream_in, atomic_path(target) as tmp:
        if not stream_in.streams.video:
            raise SourceError(f"{source} has no video stream")
        video = stream_in.streams.video[0]
        with av.open(str(tmp), "w", format="matroska") as out:
            copy = out.add_stream_from_template(video)
            first, kept, began = None, 0.0, time.monotonic()
            try:
                for packet in stream_in.demux(video):
                    if packet.dts is None or packet.pts is None:
                        continue  # the demuxer's flush packet, or one without a time
                    first = packet.dts if first is None else first  # decoding order: rising
                    kept = float((packet.dts - first) * video.time_base)
                    if kept >= seconds:
                        break
                    packet.stream = copy
                    out.mux(packet)
                    if progress is not None:
                        progress("recording", min(int(kept), int(seconds)), int(seconds))
            except av.error.FFmpegError as err:
                raise SourceError(f"{source} broke after {kept:.1f} s: {err}") from err
        if kept < seconds:
            waited = time.monotonic() - began
            raise SourceError(
                f"{source} ended after {kept:.1f} s of the {seconds:g} s asked "
                f"({waited:.0f} s waited); record a shorter stretch or check the stream"
            )
    return target
