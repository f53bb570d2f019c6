from __future__ import annotations

import os
import stat

import av
import numpy as np
import pytest
from PIL import Image

from tests.videos import frame_numbers, numbered_frames
from vadx.errors import InputError
from vadx.video import VideoReader, read_image, write_gif, write_mp4, write_png
from vadx.video import encode as encode_module


def test_mp4_is_browser_playable_h264(tmp_path):
    frames = numbered_frames(20)
    path = write_mp4(tmp_path / "out.mp4", frames, fps=12.5)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 12.5
    raw = path.read_bytes()
    assert raw.index(b"moov") < raw.index(b"mdat")  # +faststart: playable while downloading
    with VideoReader(path) as video:
        assert frame_numbers(video.read_range().data) == list(range(20))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_odd_frames_are_padded_to_even(tmp_path):
    frames = numbered_frames(3, height=33, width=47)
    with VideoReader(write_mp4(tmp_path / "odd.mp4", frames, fps=5)) as video:
        assert (video.info.height, video.info.width) == (34, 48)
        data = video.read_range().data
    assert np.abs(data[:, :33, :47].astype(int) - frames).mean() < 3


def test_gif_loops_at_the_frame_rate(tmp_path):
    frames = numbered_frames(6)
    path = write_gif(tmp_path / "out.gif", frames, fps=10)
    with Image.open(path) as image:
        assert image.n_frames == 6 and image.info["loop"] == 0 and image.info["duration"] == 100
    with VideoReader(path) as video:
        assert frame_numbers(video.read_range().data) == list(range(6))


def test_png_round_trip(tmp_path):
    frame = numbered_frames(1)[0]
    path = write_png(tmp_path / "frame.png", frame)
    assert np.array_equal(read_image(path), frame)


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous")

    def broken(*args, **kwargs):
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(encode_module.av.VideoFrame, "from_ndarray", broken)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_mp4(target, numbered_frames(3), fps=5)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.mark.parametrize(
    ("frames", "fps", "message"),
    [
        (np.zeros((2, 8, 8, 3), np.float32), 5, "expected uint8 RGB frames"),
        (np.zeros((2, 8, 8), np.uint8), 5, "expected uint8 RGB frames"),
        (np.zeros((0, 8, 8, 3), np.uint8), 5, "expected uint8 RGB frames"),
        (np.zeros((2, 8, 8, 3), np.uint8), 0, "fps must be positive"),
    ],
)
def test_bad_frames_are_refused(tmp_path, frames, fps, message):
    with pytest.raises(InputError, match=message):
        write_mp4(tmp_path / "x.mp4", frames, fps=fps)
    assert not (tmp_path / "x.mp4").exists()


def test_same_frames_same_bytes(tmp_path):
    # libx264's mb-tree read memory whose contents depend on earlier allocations: scramble it
    frames = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    digests, junk = set(), []
    for i in range(8):
        junk.append(os.urandom(1000 * (i + 1) ** 3))
        digests.add(write_mp4(tmp_path / f"{i}.mp4", frames, fps=10).read_bytes())
    assert len(digests) == 1
