from __future__ import annotations

import subprocess
from fractions import Fraction

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.videos import (
    bikes_mp4,
    ffmpeg_decode,
    ffmpeg_exe,
    frame_numbers,
    make_video,
    numbered_frames,
)
from vadx.video import VideoError, VideoReader, probe, read_video
from vadx.video.decode import TruncatedVideoWarning, apply_rotation

FRAMES = numbered_frames(12)
RGBA = np.concatenate([FRAMES, np.full((*FRAMES.shape[:3], 1), 255, np.uint8)], -1)
VFR_PTS = [0, 40, 80, 200, 240, 280, 400, 440, 480, 500, 520, 540]

FORMATS = {
    "h264.mp4": {},
    "mpeg4.avi": {"codec": "mpeg4"},
    "ffv1.mkv": {"codec": "ffv1", "pix_fmt": "yuv444p"},
    "vp9.webm": {"codec": "libvpx-vp9"},
    "gray.mkv": {"codec": "ffv1", "pix_fmt": "gray"},
    "raw.h264": {},
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_container_decodes_every_frame_in_order(tmp_path, name):
    path = make_video(tmp_path / name, FRAMES, **FORMATS[name])
    with VideoReader(path) as video:
        assert video.info.num_frames == 12 and (video.info.width, video.info.height) == (64, 48)
        frames = video.read_range()
    assert frames.data.dtype == np.uint8 and frames.data.shape == (12, 48, 64, 3)
    assert frame_numbers(frames.data) == list(range(12))
    assert frames.indices.tolist() == list(range(12))


def test_grayscale_becomes_rgb(tmp_path):
    path = make_video(tmp_path / "gray.mkv", FRAMES, codec="ffv1", pix_fmt="gray")
    data = read_video(path).data
    assert np.array_equal(data[..., 0], data[..., 1]) and np.array_equal(data[..., 1], data[..., 2])


def test_alpha_is_dropped(tmp_path):
    path = make_video(
        tmp_path / "alpha.mov", RGBA, codec="qtrle", pix_fmt="argb", input_format="rgba"
    )
    data = read_video(path).data
    assert data.shape[-1] == 3 and np.array_equal(data, FRAMES)  # qtrle is lossless


def test_odd_sizes(tmp_path):
    odd = numbered_frames(5, height=33, width=47)
    path = make_video(tmp_path / "odd.mkv", odd, codec="ffv1", pix_fmt="bgr0")
    info = probe(path)
    assert (info.width, info.height) == (47, 33)
    assert np.array_equal(read_video(path).data, odd)


@pytest.mark.parametrize("name", ["vfr.mkv", "vfr.mp4"])
def test_variable_frame_rate_timestamps(tmp_path, name):
    path = make_video(tmp_path / name, FRAMES, pts=VFR_PTS, time_base=Fraction(1, 1000))
    with VideoReader(path) as video:
        np.testing.assert_allclose(video.timestamps, np.array(VFR_PTS) / 1000)
        assert video.info.variable_frame_rate
        assert video.info.fps == pytest.approx(11 / 0.54)
        frames = video.read([9, 3])
    assert frame_numbers(frames.data) == [9, 3]
    np.testing.assert_allclose(frames.timestamps, [0.5, 0.2])


@pytest.mark.parametrize(("rotation", "turns"), [(90, 1), (-90, -1), (180, 2)])
def test_rotation_metadata_is_applied_like_ffmpeg(tmp_path, rotation, turns):
    path = make_video(tmp_path / "phone.mp4", FRAMES, rotation=rotation)
    info = probe(path)
    assert info.rotation % 360 == rotation % 360
    data = read_video(path).data
    # the red corner (top-left in the stored picture) moves as a player would show it
    expected = np.rot90(FRAMES, turns, axes=(1, 2))
    assert data.shape == expected.shape
    red = (data[..., 0] > 150) & (data[..., 1] < 90)
    assert np.mean(red == (expected[..., 0] == 230)) > 0.97
    assert (info.width, info.height) == (expected.shape[2], expected.shape[1])


def test_apply_rotation_counter_clockwise():
    frame = np.arange(6).reshape(2, 3)
    assert apply_rotation(frame, 90).tolist() == [[2, 5], [1, 4], [0, 3]]
    assert apply_rotation(frame, 0) is frame


@pytest.fixture(scope="module")
def long_gop(tmp_path_factory):
    """60 frames, a key frame every 8, B-frames: seeking has to be exact."""
    path = tmp_path_factory.mktemp("gop") / "gop.mp4"
    options = {"g": "8", "keyint_min": "8", "bf": "2", "crf": "10"}
    return make_video(path, numbered_frames(30).repeat(2, axis=0), options=options)


@settings(max_examples=25, deadline=None)
@given(indices=st.lists(st.integers(0, 59), min_size=1, max_size=12))
def test_random_access_equals_sequential_decoding(long_gop, indices):
    with VideoReader(long_gop) as video:
        everything = video.read_range().data
        frames = video.read(indices)
    assert frames.indices.tolist() == indices
    assert np.array_equal(frames.data, everything[indices])


def test_iteration_yields_index_time_frame(long_gop):
    with VideoReader(long_gop) as video:
        items = list(video)
    assert [i for i, _, _ in items] == list(range(60))
    assert items[10][1] == pytest.approx(1.0)


def test_real_footage_matches_opencv_decoding():
    path = bikes_mp4()
    with VideoReader(path) as video:
        assert (video.info.num_frames, video.info.fps) == (250, 25.0)
        assert (video.info.width, video.info.height, video.info.codec) == (640, 272, "h264")
        frames = video.read_range()
        some = video.read([200, 3, 117])
    capture = cv2.VideoCapture(str(path))
    reference = []
    while (grabbed := capture.read())[0]:
        reference.append(cv2.cvtColor(grabbed[1], cv2.COLOR_BGR2RGB))
    capture.release()
    # int16 holds every difference of two uint8 values: int64 would be 1 GB per array here
    difference = np.abs(frames.data.astype(np.int16) - np.stack(reference))
    assert difference.mean() < 1.5 and difference.max() <= 3  # chroma upsampling differs
    assert np.array_equal(some.data, frames.data[[200, 3, 117]])
    np.testing.assert_allclose(frames.timestamps, np.arange(250) / 25)


def test_image_folder_is_a_video(tmp_path):
    folder = tmp_path / "Test001"
    folder.mkdir()
    for t, frame in enumerate(FRAMES[:5]):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        cv2.imwrite(str(folder / f"{t:03d}.tif"), gray)
    with VideoReader(folder, fps=10) as video:
        assert video.info.num_frames == 5 and video.info.codec == "images"
        frames = video.read([4, 0])
    assert frames.data.shape == (2, 48, 64, 3)
    assert frame_numbers(frames.data) == [4, 0]
    np.testing.assert_allclose(frames.timestamps, [0.4, 0.0])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "video not found"),
        (lambda p: (p.write_bytes(b""), p)[1], "is empty"),
        (lambda p: (p.write_text("hello, not a video " * 50), p)[1], "not a video FFmpeg can read"),
    ],
)
def test_unreadable_files(tmp_path, make, message):
    path = make(tmp_path / "clip.mp4")
    with pytest.raises(VideoError, match=message) as caught:
        probe(path)
    assert str(path) in str(caught.value)


def test_audio_only_file(tmp_path):
    import av

    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoError, match="sound.wav has no video stream"):
        probe(path)


def test_truncated_file(tmp_path, long_gop):
    data = long_gop.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov at the end: the index is gone
    with pytest.raises(VideoError, match="cut.mp4"):
        read_video(cut)


def test_truncated_stream_without_index(tmp_path):
    full = make_video(tmp_path / "full.mkv", numbered_frames(30), codec="ffv1")
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    warned = pytest.warns(TruncatedVideoWarning, match=r"cut.mkv is truncated .* stopped at frame")
    with warned, VideoReader(cut) as video:  # what is there is readable, and says how much
        assert 5 < video.info.num_frames < 30
        assert (video.info.announced_frames, video.info.truncated) == (30, True)
        assert frame_numbers(video.read_range().data) == list(range(video.info.num_frames))


def test_a_truncation_is_told_once_per_file(tmp_path):
    import warnings

    full = make_video(tmp_path / "full.mkv", numbered_frames(30), codec="ffv1")
    cut = tmp_path / "once.mkv"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        probe(cut)  # as detect does: once to describe, once to read
        with VideoReader(cut) as video:
            assert video.info.truncated
    assert len([w for w in said if w.category is TruncatedVideoWarning]) == 1


def null_frame_avi(path, changed: int = 5, every: int = 15, seconds: int = 4):
    """An AVI at 15 fps whose camera sent only the first ``changed`` frames of every
    ``every``: the others are null frames (the AVI muxer's empty chunks); it ends with the
    last frame sent (frame 49 of 60)."""
    source = f"testsrc=size=64x48:rate=15:duration={seconds}"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", source, "-vf",
         f"select='lt(mod(n\\,{every})\\,{changed})'", "-fps_mode", "passthrough",
         "-c:v", "mpeg4", "-q:v", "2", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path


def test_null_frames_are_repeats_not_damage(tmp_path):
    import warnings

    path = null_frame_avi(tmp_path / "camera.avi")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no truncation warning
        with VideoReader(path) as video:
            info = video.info
            frames = video.read_range().data
            sequential = np.stack([frame for _, _, frame in video])
    assert (info.num_frames, info.fps, info.truncated, info.null_frames) == (50, 15.0, False, 30)
    assert not info.variable_frame_rate and info.duration == pytest.approx(50 / 15)
    assert np.allclose(video.timestamps, np.arange(50) / 15)  # a window covers its seconds
    assert np.array_equal(frames, sequential)
    # the frames FFmpeg decodes (no null frame among them) at their slots, each null frame
    # the frame before it
    sent = ffmpeg_decode(path, 64, 48)
    slots = [i for i in range(50) if i % 15 < 5]
    assert len(sent) == len(slots) == 20
    shown = np.searchsorted(slots, np.arange(50), side="right") - 1
    # (OpenCV's chroma upsampling and swscale's differ at the test pattern's sharp edges)
    assert np.abs(frames.astype(int) - sent[shown]).mean(axis=(1, 2, 3)).max() < 1
    changed = [bool(np.any(frames[i] != frames[i - 1])) for i in range(1, 50)]
    assert changed == [(i % 15) < 5 for i in range(1, 50)]


def test_out_of_range_and_empty_requests(long_gop):
    with VideoReader(long_gop) as video:
        with pytest.raises(VideoError, match="frame index 60 is out of range .*60 frames"):
            video.read([0, 60])
        with pytest.raises(VideoError, match="no frame indices"):
            video.read([])
        with pytest.raises(VideoError, match=r"frame range \[50, 70\)"):
            video.read_range(50, 70)


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(VideoError, match="folder without frame images"):
        probe(tmp_path)
