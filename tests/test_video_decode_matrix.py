"""Every file FFmpeg decodes, vadx decodes the same: the same frames, in the same order, at the
same indices whether read in sequence or at random.

Each case is a tiny clip (64×48, 32 numbered frames with a moving block) made by the ffmpeg
binary of imageio-ffmpeg with one codec, container and timestamp layout, then decoded by
FFmpeg itself (rawvideo RGB through a pipe, every frame as decoded) and by vadx. A case whose
codec the local PyAV cannot decode is skipped and says why.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from tests.videos import (
    bikes_mp4,
    ffmpeg_decode,
    ffmpeg_encode,
    ffmpeg_exe,
    ffmpeg_transcode,
    frame_numbers,
    numbered_frames,
    zero_packets,
)
from vadx.video import VideoError, VideoReader, probe
from vadx.video.decode import TruncatedVideoWarning

COUNT = 32
LONG_GOP = ["-g", "8", "-bf", "2"]
YUV420 = ["-pix_fmt", "yuv420p"]  # (a later -pix_fmt overrides it)
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "12", *LONG_GOP, *YUV420]


@dataclass(frozen=True)
class Case:
    file: str
    args: list[str]
    decoder: str  # the PyAV decoder it needs
    copy: list[str] | None = None  # then remux the result with these options (stream copy)
    size: tuple[int, int] = (64, 48)
    tolerance: float = 3.0  # mean absolute difference from FFmpeg's decode, per frame
    numbered: bool = True  # frames keep their number (not when a cut changes the first)
    fps: int = 10


CASES = {
    # H.264: B-frames, open GOPs, timestamps that do not start at 0, edit lists, no timestamps
    "h264-bframes-mp4": Case("a.mp4", X264, "h264"),
    "h264-open-gop-mkv": Case("a.mkv", [*X264, "-bf", "3", "-x264-params", "open-gop=1"], "h264"),
    "h264-offset-10s-mp4": Case("a.mp4", [*X264, "-output_ts_offset", "10"], "h264"),
    "h264-offset-10s-mkv": Case("a.mkv", [*X264, "-output_ts_offset", "10"], "h264"),
    "h264-edit-list-cut-mp4": Case("a.mp4", X264, "h264", copy=["-ss", "1.25"], numbered=False),
    "h264-edit-list-negative-pts-mp4": Case(
        "a.mp4",
        X264,
        "h264",
        numbered=False,
        copy=["-output_ts_offset", "-0.5", "-avoid_negative_ts", "disabled"],
    ),
    "h264-cut-no-edit-list-mp4": Case(
        "a.mp4",
        X264,
        "h264",
        numbered=False,
        copy=["-ss", "1.25", "-avoid_negative_ts", "disabled", "-use_editlist", "0"],
    ),
    "h264-cut-missing-pts-mkv": Case(
        "a.mkv",
        X264,
        "h264",
        numbered=False,
        copy=["-ss", "1.25", "-avoid_negative_ts", "disabled"],
    ),
    "h264-raw-stream": Case("a.h264", [*X264, "-f", "h264"], "h264"),
    "h264-ts": Case("a.ts", X264, "h264"),
    "h264-vfr-mkv": Case(
        "a.mkv",
        [*X264, "-vf", "setpts=(N+3*floor(N/5))/(10*TB)", "-fps_mode", "passthrough"],
        "h264",
    ),
    "h264-vfr-mp4": Case(
        "a.mp4",
        [*X264, "-vf", "setpts=(N+3*floor(N/5))/(10*TB)", "-fps_mode", "passthrough"],
        "h264",
    ),
    "h264-interlaced-mp4": Case(
        "a.mp4",
        [*X264, "-flags", "+ildct+ilme", "-x264-params", "interlaced=1:tff=1"],
        "h264",
        size=(64, 64),
    ),
    "h264-10bit-mkv": Case("a.mkv", [*X264, "-pix_fmt", "yuv420p10le"], "h264"),
    "h264-gray-mp4": Case("a.mp4", [*X264, "-pix_fmt", "gray"], "h264"),
    "h264-odd-size-444-mkv": Case("a.mkv", [*X264, "-pix_fmt", "yuv444p"], "h264", size=(47, 33)),
    "h264-mov": Case("a.mov", X264, "h264"),
    # HEVC, VP8/VP9 (hidden alt-ref frames), AV1
    "hevc-bframes-mp4": Case(
        "a.mp4",
        ["-c:v", "libx265", *YUV420, "-x265-params", "log-level=error:keyint=8:bframes=2:crf=12"],
        "hevc",
    ),
    "hevc-raw-stream": Case(
        "a.hevc",
        [
            "-c:v",
            "libx265",
            *YUV420,
            "-x265-params",
            "log-level=error:keyint=8:bframes=2",
            "-f",
            "hevc",
        ],
        "hevc",
    ),
    "vp9-altref-webm": Case(
        "a.webm",
        [
            "-c:v",
            "libvpx-vp9",
            *YUV420,
            "-g",
            "8",
            "-auto-alt-ref",
            "1",
            "-lag-in-frames",
            "8",
            "-crf",
            "20",
            "-b:v",
            "0",
        ],
        "vp9",
    ),
    "vp8-webm": Case(
        "a.webm",
        ["-c:v", "libvpx", "-g", "8", "-auto-alt-ref", "1", "-crf", "10", "-b:v", "1M"],
        "vp8",
    ),
    "av1-mkv": Case(
        "a.mkv",
        ["-c:v", "libaom-av1", *YUV420, "-cpu-used", "8", "-g", "8", "-crf", "20"],
        "libdav1d",
    ),
    # MPEG-4 part 2: Xvid/DivX in AVI (B-frames, packed B-frames), elementary streams
    "mpeg4-xvid-bframes-avi": Case("a.avi", ["-c:v", "mpeg4", "-vtag", "xvid", *LONG_GOP], "mpeg4"),
    "mpeg4-xvid-qscale-avi": Case(
        "a.avi", ["-c:v", "mpeg4", "-vtag", "xvid", "-qscale:v", "3", *LONG_GOP], "mpeg4"
    ),
    "mpeg4-divx-open-gop-avi": Case(
        "a.avi",
        ["-c:v", "mpeg4", "-vtag", "DIVX", "-g", "8", "-bf", "3", "-qscale:v", "2"],
        "mpeg4",
    ),
    "xvid-packed-bframes-avi": Case(
        "a.avi", ["-c:v", "libxvid", "-g", "8", "-bf", "2", "-qscale:v", "3"], "mpeg4"
    ),
    "divx3-avi": Case("a.avi", ["-c:v", "msmpeg4", "-qscale:v", "3"], "msmpeg4"),
    "mpeg4-raw-stream": Case(
        "a.m4v", ["-c:v", "mpeg4", "-qscale:v", "3", *LONG_GOP, "-f", "m4v"], "mpeg4"
    ),
    "mpeg4-mp4": Case("a.mp4", ["-c:v", "mpeg4", "-qscale:v", "3", *LONG_GOP], "mpeg4"),
    # MJPEG, MPEG-1/2, and the rest FFmpeg reads
    "mjpeg-avi": Case("a.avi", ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "2"], "mjpeg"),
    "mjpeg-raw-stream": Case(
        "a.mjpeg", ["-c:v", "mjpeg", "-pix_fmt", "yuvj422p", "-q:v", "2", "-f", "mjpeg"], "mjpeg"
    ),
    "mjpeg-odd-size-mov": Case("a.mov", ["-c:v", "mjpeg", "-q:v", "2"], "mjpeg", size=(47, 33)),
    "mpeg2-ps-mpg": Case(
        "a.mpg", ["-c:v", "mpeg2video", "-q:v", "2", *LONG_GOP], "mpeg2video", fps=25
    ),
    "mpeg2-interlaced-ts": Case(
        "a.ts",
        [
            "-c:v",
            "mpeg2video",
            "-q:v",
            "2",
            *LONG_GOP,
            "-flags",
            "+ildct+ilme",
            "-vf",
            "setfield=tff",
        ],
        "mpeg2video",
        size=(64, 64),
        fps=25,
    ),
    "mpeg1-mpg": Case(
        "a.mpg", ["-c:v", "mpeg1video", "-q:v", "2", *LONG_GOP], "mpeg1video", fps=25
    ),
    "wmv2-asf": Case("a.wmv", ["-c:v", "wmv2", "-q:v", "2"], "wmv2"),
    "flv1-flv": Case("a.flv", ["-c:v", "flv", "-q:v", "2"], "flv"),
    "theora-ogv": Case("a.ogv", ["-c:v", "libtheora", *YUV420, "-q:v", "9", "-g", "8"], "theora"),
    "prores-mov": Case("a.mov", ["-c:v", "prores_ks"], "prores"),
    "ffv1-gray-mkv": Case("a.mkv", ["-c:v", "ffv1", "-pix_fmt", "gray"], "ffv1"),
    "gif": Case("a.gif", [], "gif", tolerance=6.0),
}


def _decoder_missing(name: str) -> str | None:
    try:
        av.codec.Codec(name, "r")
    except Exception:
        version = ".".join(map(str, av.library_versions["libavcodec"]))
        return f"the installed PyAV (libavcodec {version}) has no {name} decoder"
    return None


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Each case's file, made once: ``made(case_id)`` → path (or a skip with the reason)."""
    root = tmp_path_factory.mktemp("matrix")
    cache: dict[str, Path] = {}

    def make(case_id: str) -> Path:
        case = CASES[case_id]
        if reason := _decoder_missing(case.decoder):
            pytest.skip(reason)
        if case_id not in cache:
            folder = root / case_id
            folder.mkdir()
            width, height = case.size
            frames = numbered_frames(COUNT, height, width, moving=True)
            path = folder / case.file
            source = path if case.copy is None else folder / f"source{path.suffix}"
            try:
                ffmpeg_encode(source, frames, case.args, fps=case.fps)
            except RuntimeError as err:
                if "Unknown encoder" in str(err) or "not found" in str(err):
                    pytest.skip(f"the bundled ffmpeg cannot make this file: {err}")
                raise
            if case.copy is not None:
                _remux(source, path, case.copy)
            cache[case_id] = path
        return cache[case_id]

    return make


def _remux(source: Path, target: Path, options: list[str]) -> None:
    seek = options[:2] if options[:1] == ["-ss"] else []
    rest = options[len(seek) :]
    command = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        *seek,
        "-i",
        str(source),
        "-c",
        "copy",
        *rest,
        str(target),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("case_id", list(CASES))
def test_vadx_decodes_what_ffmpeg_decodes(made, case_id):
    case = CASES[case_id]
    path = made(case_id)
    width, height = case.size
    reference = ffmpeg_decode(path, width, height)
    assert len(reference) > 8, f"FFmpeg decoded only {len(reference)} frames of {path.name}"
    info = probe(path)
    assert (info.width, info.height) == (width, height)
    assert info.num_frames == len(reference)
    with VideoReader(path) as video:
        frames = video.read_range()
        assert len(video.timestamps) == info.num_frames
        order = list(range(info.num_frames))
        random.Random(case_id).shuffle(order)
        shuffled = [video.read(order[i : i + 5]) for i in range(0, len(order), 5)]
        backwards = [video.read([i]) for i in reversed(range(info.num_frames))]  # seek each time
    assert frames.data.shape == reference.shape
    difference = np.abs(frames.data.astype(np.int16) - reference).mean(axis=(1, 2, 3))
    assert difference.max() <= case.tolerance, (
        f"frames {np.flatnonzero(difference > case.tolerance).tolist()} differ from FFmpeg's "
        f"by up to {difference.max():.1f}"
    )
    numbers = frame_numbers(frames.data)  # consecutive; from 0 unless the file is a cut
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert numbers[0] == 0 or not case.numbered
    # random access, in any order, gives the frames of a sequential decode
    for part in shuffled + backwards:
        assert np.array_equal(part.data, frames.data[part.indices]), part.indices
    # timestamps: from 0, increasing
    assert frames.timestamps[0] == 0 and np.all(np.diff(frames.timestamps) > 0)


def test_timestamps_keep_the_gaps_of_a_variable_frame_rate(made):
    path = made("h264-vfr-mkv")
    expected = np.array([n + 3 * (n // 5) for n in range(COUNT)]) / 10
    with VideoReader(path) as video:
        np.testing.assert_allclose(video.timestamps, expected, atol=2e-3)
        assert video.info.variable_frame_rate


@pytest.mark.parametrize("case_id", ["h264-offset-10s-mp4", "mpeg4-xvid-bframes-avi"])
def test_timestamps_start_at_0_and_follow_the_frame_rate(made, case_id):
    with VideoReader(made(case_id)) as video:
        np.testing.assert_allclose(video.timestamps, np.arange(COUNT) / 10, atol=2e-3)
        assert video.info.fps == pytest.approx(10)


def test_a_file_ffmpeg_cannot_decode_fails_clearly(made, tmp_path, capsys):
    """An AVI with a valid header whose frames are zeros: FFmpeg decodes no picture of it."""
    from tests.conftest import run_cli

    bad = zero_packets(made("mpeg4-xvid-bframes-avi"), tmp_path / "blank.avi")
    assert len(ffmpeg_decode(bad, 64, 48)) == 0
    with pytest.raises(VideoError, match="blank.avi has no frame FFmpeg can decode"):
        probe(bad)
    code, _, err = run_cli(["probe", str(bad)], capsys)
    assert code == 2 and err.startswith("error: ") and "blank.avi" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("case_id", ["h264-bframes-mp4", "mpeg4-xvid-bframes-avi"])
def test_a_damaged_file_has_the_frames_ffmpeg_decodes(made, tmp_path, case_id):
    """Packets 20… zeroed. AVI is listed by decoding; MP4 lists its 32 packets, and a check of
    every frame (what the server does on upload) lists them anew as FFmpeg counts them."""
    path = made(case_id)
    damaged = zero_packets(path, tmp_path / f"damaged{path.suffix}", start=20)
    reference = ffmpeg_decode(damaged, 64, 48)
    assert 12 <= len(reference) < COUNT
    warned = pytest.warns(
        TruncatedVideoWarning,
        match=f"stopped at frame {len(reference)}, the container announces {COUNT} frames",
    )
    with warned:  # AVI: on opening (listed by decoding); MP4: once verify() has listed it anew
        with VideoReader(damaged) as video:
            video.verify()
            assert video.info.num_frames == len(reference)
            frames = video.read_range()
            picked = video.read([len(reference) - 1, 0, 9])
        info = probe(damaged)  # (remembered in this process)
    difference = np.abs(frames.data.astype(np.int16) - reference).mean(axis=(1, 2, 3))
    assert difference.max() <= 3
    assert np.array_equal(picked.data, frames.data[[len(reference) - 1, 0, 9]])
    assert (info.num_frames, info.announced_frames, info.truncated) == (len(reference), COUNT, True)


def test_real_xvid_avi_reads_every_frame_at_random(tmp_path):
    """The bug report: real footage as Xvid AVI with B-frames, which FFmpeg and ``probe`` read
    fully, failed in detection with 'frame … could not be decoded': AVI packets carry decoding
    times, and seeking to a key frame's presentation time landed on the next key frame."""
    xvid = ["-c:v", "mpeg4", "-vtag", "xvid", "-bf", "2"]
    path = ffmpeg_transcode(bikes_mp4(), tmp_path / "bikes.avi", xvid)
    reference = ffmpeg_decode(path, 640, 272)
    wanted = [186, 0, 187, 188, 117, 5, 249]  # 186…188 follow a 3-frame GOP
    with VideoReader(path) as video:
        assert video.info.num_frames == len(reference) == 250
        frames = video.read_range()
        picked = video.read(wanted)
    assert np.abs(frames.data.astype(np.int16) - reference).mean() < 1.5
    assert np.array_equal(picked.data, frames.data[wanted])


def test_frames_without_labels_are_counted_from_the_beginning(made, monkeypatch):
    """A decoder that does not pass packets' labels on to frames: exact, by counting."""
    import vadx.video.decode as decode

    path = made("mpeg4-xvid-bframes-avi")
    with VideoReader(path) as video:
        everything = video.read_range().data
    monkeypatch.setattr(decode, "_label", lambda frame: -1)
    monkeypatch.setattr(decode, "_DECODED_INDEXES", type(decode._DECODED_INDEXES)())
    with VideoReader(path) as video:
        assert video.info.num_frames == COUNT and not video._backend.index.restarts
        frames = video.read([30, 2, 17, 2])
    assert np.array_equal(frames.data, everything[[30, 2, 17, 2]])


def test_a_file_listed_by_decoding_is_decoded_once(made, monkeypatch):
    import vadx.video.decode as decode

    path = made("h264-ts")
    monkeypatch.setattr(decode, "_DECODED_INDEXES", type(decode._DECODED_INDEXES)())
    calls = []
    listing = decode._AVFile._index_by_decoding
    monkeypatch.setattr(
        decode._AVFile, "_index_by_decoding", lambda self: calls.append(1) or listing(self)
    )
    assert probe(path).num_frames == probe(path).num_frames == COUNT
    assert len(calls) == 1
    mtime = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(mtime, mtime))  # changed since: listed again
    probe(path)
    assert len(calls) == 2


REOPEN_UNDER_LOAD = """
import random, sys, types
from pathlib import Path
import vadx
# the decoder alone: vadx.video's __init__ also imports the preprocessing, and so torch (2 s
# of start-up in each of the processes, none of it used here)
package = types.ModuleType("vadx.video")
package.__path__ = [str(Path(vadx.__file__).parent / "video")]
sys.modules["vadx.video"] = package
from vadx.video.decode import VideoReader
for rep in range(int(sys.argv[2])):
    with VideoReader(sys.argv[1]) as video:
        order = list(range(video.info.num_frames))
        random.Random(rep).shuffle(order)
        for i in range(0, len(order), 5):
            video.read(order[i : i + 5])
"""


def test_multithreaded_decoders_never_deadlock_when_reopened(made):
    """Decoders with worker threads (dav1d here) are closed and reopened on every backward
    read. When frames carried a PyAV ``opaque`` object, a worker thread freeing it needed the
    GIL while the main thread, holding it, waited for that worker to stop: under load, every
    one of 4 such processes hung within 25 videos. Now they must all finish."""
    path = made("av1-mkv")
    runs = [
        subprocess.Popen([sys.executable, "-c", REOPEN_UNDER_LOAD, str(path), "40"])
        for _ in range(4)
    ]
    try:
        codes = [run.wait(timeout=120) for run in runs]
    except subprocess.TimeoutExpired:
        pytest.fail("decoding hung: a decoder deadlocked on reopening")
    finally:
        for run in runs:
            run.kill()
    assert codes == [0, 0, 0, 0]
