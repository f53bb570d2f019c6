"""Reading videos: any file FFmpeg reads (through PyAV), or a folder of frame images.

Frames come out as uint8 RGB ``(N, H, W, 3)`` with their **index** (0-based, presentation order)
and **timestamp** (seconds from the first frame). Indices are exact: frame ``i`` is the ``i``-th
frame FFmpeg's decoder gives from the beginning of the file, what ``ffmpeg -i FILE -fps_mode
passthrough`` writes. MP4/MOV, Matroska/WebM and IVF store each frame's presentation time: on
opening, their packets are listed without decoding (fast), which gives the frame count, the
presentation times and the key frames, so variable-frame-rate files, edit lists and files whose
header lies about their length are handled. Other containers (AVI, MPEG-TS/PS, raw streams, Ogg,
ASF, FLV, …) carry guessed timestamps or none (an Xvid AVI's are decoding times; packed B-frames
make packets and frames differ in number), so their frames are listed by decoding the file once
on opening (remembered per file for the process). Reading a range seeks to a key frame before
it from which decoding is checked to give the same frames, and decodes only what is needed.

Grayscale, alpha and odd-sized videos are converted to RGB; a rotation in the container's display
matrix (phone videos) is applied, as FFmpeg's players do.

>>> with VideoReader("street.mp4") as video:                       # doctest: +SKIP
...     print(video.info.num_frames, video.info.fps)
...     clip = video.read([0, 10, 20])                             # Frames(data, indices, …)
"""

from __future__ import annotations

import bisect
import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vadx.errors import VadxError

#: extensions of image files read as frames of a folder "video" (UCSD Ped2 style)
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
#: extensions of video files picked up when scanning folders
VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".avi",
        ".mkv",
        ".webm",
        ".mov",
        ".m4v",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".flv",
        ".ts",
        ".mts",
        ".3gp",
        ".ogv",
        ".gif",
    }
)


class VideoError(VadxError):
    """A video cannot be opened or decoded; the message names the file and the problem."""


class TruncatedVideoWarning(UserWarning):
    """Fewer frames decode than the video's container announces: the file is cut short or
    damaged. vadx goes on with the frames there are."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video is, as read from its container (sizes after rotation)."""

    path: str
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    codec: str
    rotation: int = 0
    variable_frame_rate: bool = False
    #: how many frames the container announces (its frame count, else its duration × frame
    #: rate; None where it says neither)
    announced_frames: int | None = None
    #: fewer frames decode than the container announces: a truncated or damaged file, whose
    #: missing frames are missing from every output too
    truncated: bool = False
    #: frames the container holds as empty packets, repeats of the frame before (an AVI
    #: camera that sends only changed frames): read as that frame, so that frame ``i`` is at
    #: ``i / fps`` seconds, as the container's time base says
    null_frames: int = 0


@dataclass(frozen=True)
class Frames:
    """Decoded frames: ``data`` uint8 ``(N, H, W, 3)``, ``indices`` and ``timestamps`` ``(N,)``."""

    data: np.ndarray
    indices: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


class VideoReader:
    """Random and sequential access to the frames of a video file or an image folder.

    Args:
        source: a video file, or a folder of images (frames in file-name order).
        fps: frame rate of an image folder (ignored for files, which carry their own).
    """

    def __init__(self, source: str | os.PathLike[str], fps: float = 25.0) -> None:
        self.path = Path(source)
        if not self.path.exists():
            raise VideoError(f"video not found: {self.path}")
        if self.path.is_dir():
            self._backend: _Backend = _ImageFolder(self.path, fps)
        else:
            self._backend = _AVFile(self.path)
        self._publish()

    def _publish(self) -> None:
        """What readers see: the backend's frames, or the container's with its null frames
        (each the frame before it, at the container's frame rate)."""
        backend, self._shown = self._backend, self._backend.shown
        if self._shown is None:
            self.info, self._timestamps = backend.info, backend.timestamps
            return
        count, fps = len(self._shown), backend.shown_fps
        self._timestamps = np.arange(count, dtype=np.float64) / fps
        self.info = replace(
            backend.info,
            num_frames=count,
            fps=fps,
            duration=count / fps,
            variable_frame_rate=False,
            null_frames=count - backend.info.num_frames,
        )

    def __len__(self) -> int:
        return self.info.num_frames

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._backend.close()

    @property
    def timestamps(self) -> np.ndarray:
        """Presentation time of every frame, seconds from the first, ``(num_frames,)``."""
        return self._timestamps

    def read(self, indices: Sequence[int] | np.ndarray) -> Frames:
        """The frames at ``indices`` (any order, repeats allowed), decoded once each."""
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        if wanted.size == 0:
            raise VideoError(f"no frame indices given for {self.path}")
        bad = wanted[(wanted < 0) | (wanted >= self.info.num_frames)]
        if bad.size:
            raise VideoError(
                f"frame index {int(bad[0])} is out of range for {self.path} "
                f"({self.info.num_frames} frames)"
            )
        source = wanted if self._shown is None else self._shown[wanted]
        decoded = dict(self._backend.decode(np.unique(source).tolist()))
        data = np.stack([decoded[int(i)] for i in source])
        return Frames(data, wanted, self.timestamps[wanted])

    def read_range(self, start: int = 0, stop: int | None = None) -> Frames:
        """Frames ``start`` … ``stop - 1`` (``stop`` defaults to the end)."""
        stop = self.info.num_frames if stop is None else stop
        if not 0 <= start < stop <= self.info.num_frames:
            raise VideoError(
                f"frame range [{start}, {stop}) is not inside {self.path} "
                f"({self.info.num_frames} frames)"
            )
        return self.read(np.arange(start, stop))

    def verify(self) -> None:
        """Decode every frame once, as detection does, without keeping it; a file that FFmpeg
        cannot decode raises :class:`VideoError`. Where a file lists more frames than its
        decoder gives (damaged packets), its frames are listed anew by decoding, as FFmpeg counts
        them: ``info`` changes, and later readers of the file in this process use that list."""
        self._backend.verify()
        self._publish()

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """``(index, timestamp, frame)`` for every frame, decoded sequentially."""
        if self._shown is None:
            for index, frame in self._backend.decode(range(self.info.num_frames)):
                yield index, float(self.timestamps[index]), frame
            return
        decoded = self._backend.decode(range(self._backend.info.num_frames))
        current, frame = -1, None
        for index, source in enumerate(self._shown):
            while current < source:
                current, frame = next(decoded)
            yield index, float(self.timestamps[index]), frame


def probe(source: str | os.PathLike[str], fps: float = 25.0) -> VideoInfo:
    """:class:`VideoInfo` of a video file or image folder, without decoding frames."""
    with VideoReader(source, fps=fps) as reader:
        return reader.info


def read_video(source: str | os.PathLike[str], start: int = 0, stop: int | None = None) -> Frames:
    """All frames of ``source`` (or ``start`` … ``stop - 1``)."""
    with VideoReader(source) as reader:
        return reader.read_range(start, stop)


def frame_files(folder: Path) -> list[Path]:
    """The frames of a video given as a folder of images, in the order they play (by name)."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def video_sha256(source: str | os.PathLike[str]) -> str:
    """The sha256 of a video: its file's bytes, or for a folder of frames, each frame file's
    name and bytes in play order (a renamed, added or changed frame changes it)."""
    path = Path(source)
    digest = hashlib.sha256()
    files = frame_files(path) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.name.encode("utf-8", "surrogateescape") + b"\0")
        with open(file, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def is_video_path(path: Path) -> bool:
    """Whether ``path`` looks like a video: a file with a video extension or a frame folder."""
    if path.is_dir():
        return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir())
    return path.suffix.lower() in VIDEO_EXTENSIONS


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` of a decoded frame, display rotation applied.

    The common case — 8-bit 4:2:0 video of even size — is converted by OpenCV: 2.4× as fast as
    FFmpeg's swscale here, the same BT.601 video-range conversion, within 3 levels (mean 1.1 on
    bikes.mp4: OpenCV upsamples chroma by nearest neighbour). Other formats (gray, alpha,
    4:4:4, full range, odd sizes) go through swscale.
    """
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        import cv2

        rgb = cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420)
    else:
        rgb = frame.to_ndarray(format="rgb24")
    return apply_rotation(rgb, round(getattr(frame, "rotation", 0) or 0))


def apply_rotation(frame: np.ndarray, degrees: int) -> np.ndarray:
    """Rotate a frame counter-clockwise by a multiple of 90° (a display matrix's rotation)."""
    turns = round(degrees / 90) % 4
    return np.ascontiguousarray(np.rot90(frame, turns)) if turns else frame


class _Backend:
    info: VideoInfo
    timestamps: np.ndarray
    #: where the container's frames include null frames: for each of them, the frame decoded
    #: that it shows (None: every frame is decoded)
    shown: np.ndarray | None = None
    shown_fps: float = 0.0

    def decode(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError

    def verify(self) -> None:
        for _ in self.decode(range(self.info.num_frames)):
            pass

    def close(self) -> None:
        pass


class _Mismatch(Exception):
    """The decoder's frames do not follow the index from the point decoding restarted at."""


@dataclass(frozen=True)
class _Packet:
    pts: int | None
    dts: int | None
    pos: int | None
    size: int
    key: bool
    discard: bool

    @staticmethod
    def of(packet: av.Packet) -> _Packet:
        return _Packet(
            packet.pts, packet.dts, packet.pos, packet.size, packet.is_keyframe, packet.is_discard
        )


@dataclass(frozen=True)
class _Index:
    """Where the frames of a video stream come from.

    ``labels[i]`` is the packet frame ``i`` is decoded from (the packet's rank in file order,
    counting the stream's non-empty packets); ``timestamps[i]`` its time in seconds from the first
    frame. ``keys`` recognises a packet after a seek by its ``key_field`` (``pts``, ``pos`` or
    ``dts``) and size (``sizes``, by rank: the packets that follow must have the same sizes too),
    or is None where packets cannot be told apart (decoding then restarts at the beginning).
    ``restarts`` maps frame indices to ``(packet, seek timestamp)`` of the key frames from which
    decoding gives every later frame exactly as a decode from the beginning does.
    """

    labels: np.ndarray
    timestamps: np.ndarray
    key_field: str
    keys: dict[int, int] | None
    sizes: np.ndarray
    restarts: dict[int, tuple[int, int]]
    dimensions: tuple[int, int]  # width, height of the decoded pictures (before rotation)
    rotation: int
    decoded: bool
    threads: str = "AUTO"  # the decoder's threading ("SLICE" where frame threads lose frames)
    discarded: int = 0  # packets an edit list hides (no frame of the index comes from them)


#: containers that store every frame's presentation time (MP4/MOV, Matroska/WebM, IVF): their
#: frames are listed from the packets alone, without decoding. In others (AVI, MPEG-TS/PS, raw
#: streams, …) packet timestamps are guessed or absent, and a decoder may give more or fewer
#: frames than there are packets (packed B-frames), so they are listed by decoding them once.
PTS_CONTAINERS = frozenset({"mov", "mp4", "matroska", "webm", "ivf"})
_DECODED_INDEXES: OrderedDict[tuple[str, int, int], _Index] = OrderedDict()
_DECODED_INDEXES_KEPT = 64  # files listed by decoding, remembered by (path, size, mtime)
_DECODED_INDEXES_LOCK = threading.Lock()


#: the files whose truncation this process has told of already (by path, size, mtime)
_TRUNCATION_SAID: set[tuple] = set()


def _first_time(said: set[tuple], key: tuple) -> bool:
    with _DECODED_INDEXES_LOCK:
        first = key not in said
        said.add(key)
    return first


def _null_frames(timestamps: np.ndarray, rate: float, announced: int) -> np.ndarray | None:
    """Where the decoded frames sit on a grid of ``rate`` frames per second that the container's
    ``announced`` frames fill, with gaps — the null frames (empty packets: repeats of the one
    before) a camera that sends only changed frames leaves: for each of the ``announced``, the
    decoded frame it shows. None when the frames are off that grid, have no gap (a file cut
    short), or stop before its end by more than the longest gap (a file cut short too)."""
    slots = timestamps * rate
    grid = np.round(slots).astype(np.int64)
    steps = np.diff(grid)
    if len(grid) < 2 or grid[0] != 0 or not np.all(np.abs(slots - grid) < 0.01):
        return None
    if steps.min() < 1 or steps.max() < 2 or not 0 <= announced - 1 - grid[-1] < steps.max():
        return None
    return np.searchsorted(grid, np.arange(announced), side="right") - 1


class _AVFile(_Backend):
    """A file FFmpeg reads. Frame ``i`` is the ``i``-th frame FFmpeg's decoder gives when it
    decodes the stream from the beginning, as ``ffmpeg -i FILE -fps_mode passthrough`` does.

    Each packet sent to the decoder carries its rank in place of its presentation time (FFmpeg
    gives a frame the properties of the packet it was decoded from), so a decoded frame is
    recognised whatever the file's timestamps say. (Not with ``opaque``: PyAV frees an opaque
    object under the GIL from whichever thread drops it last, and a decoder's worker thread
    doing so while the main thread, holding the GIL, closes that decoder deadlocks — seen with
    AV1 under load.) Random
    access seeks to a key frame from which decoding is known to give every later frame, checks
    where the seek landed (a container may seek by decoding time, or land early or late), drops
    the frames shown before that key frame (leading frames of an open GOP), and checks that the
    frames come out in index order; where they do not, it restarts from an earlier key frame,
    and at worst from the beginning of the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.stat().st_size == 0:
            raise VideoError(f"{path} is empty (0 bytes)")
        self._threads = "AUTO"
        self.container = self._open()
        self._frames: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._position = -1  # index of the frame self._frames gave last
        self._last: av.VideoFrame | None = None
        self._error: str | None = None  # why the last packet the decoder refused was refused
        self._announced = self._announced_length()
        try:
            self._index()
            if self.info.truncated and not self.index.decoded:
                self._index_anew()  # list the frames that decode, not the packets there are
        except BaseException:
            self.close()
            raise
        if self.info.truncated and _first_time(_TRUNCATION_SAID, self._key):
            warnings.warn(
                f"{path} is truncated or damaged: decoding stopped at frame "
                f"{self.info.num_frames}, the container announces {self.info.announced_frames} "
                "frames; "
                "the missing end is left out",
                TruncatedVideoWarning,
                stacklevel=3,
            )

    def _open(self) -> av.container.InputContainer:
        try:
            container = av.open(str(self.path), metadata_errors="ignore")
        except (av.error.FFmpegError, UnicodeDecodeError) as err:
            raise VideoError(f"{self.path} is not a video FFmpeg can read: {_reason(err)}") from err
        if not container.streams.video:
            container.close()
            raise VideoError(f"{self.path} has no video stream")
        self.stream = container.streams.video[0]
        self.stream.thread_type = self._threads
        return container

    def _announced_length(self) -> tuple[int | None, float | None]:
        """What the container says of the stream's length: its frame count (MP4, AVI, …) or
        else its duration in seconds (Matroska, MPEG-TS, …); None where it does not say."""
        stream = self.stream
        if stream.frames > 0:
            return int(stream.frames), None
        if stream.duration is not None and stream.time_base:
            return None, float(stream.duration * stream.time_base)
        container = self.container
        if not container.duration:
            return None, None
        start = container.start_time or 0  # Matroska's duration runs from time 0
        since_zero = bool(set(container.format.name.split(",")) & {"matroska", "webm"})
        return None, (container.duration - (start if since_zero else 0)) / av.time_base

    def _reopen(self) -> None:
        self.container.close()
        self.container = self._open()

    # ----------------------------------------------------------------------------- the index
    def _index(self) -> None:
        stat = self.path.stat()
        self._key = (str(self.path.resolve()), stat.st_size, stat.st_mtime_ns)
        with _DECODED_INDEXES_LOCK:
            index = _DECODED_INDEXES.get(self._key)
            if index is not None:
                _DECODED_INDEXES.move_to_end(self._key)
        if index is not None:
            self._use(index)
            return
        formats = set(self.container.format.name.split(","))
        if not (formats & PTS_CONTAINERS and self._index_from_packets()):
            self._index_anew()

    def _index_anew(self) -> None:
        """List the frames by decoding, and remember the list for this file."""
        index = self._index_by_decoding()
        with _DECODED_INDEXES_LOCK:
            _DECODED_INDEXES[self._key] = index
            while len(_DECODED_INDEXES) > _DECODED_INDEXES_KEPT:
                _DECODED_INDEXES.popitem(last=False)
        self._use(index)

    def _index_from_packets(self) -> bool:
        """List the frames in the order of the packets' timestamps (no decoding); False where
        the timestamps cannot be trusted: missing, repeated, or not those of the decoded frames."""
        packets = []
        try:
            for packet in self.container.demux(self.stream):
                if packet.size:
                    packets.append(_Packet.of(packet))
        except av.error.FFmpegError as err:
            raise VideoError(
                f"{self.path} is corrupt: reading its packets failed: {_reason(err)}"
            ) from err
        pts = [p.pts for p in packets]
        if not packets or None in pts or len(set(pts)) < len(pts):
            return False
        shown = [i for i, p in enumerate(packets) if not p.discard]
        if not shown:
            return False
        labels = np.array(sorted(shown, key=pts.__getitem__), dtype=np.int64)
        stamps = np.array([pts[i] for i in labels], dtype=np.int64)
        keys = [i for i in shown if packets[i].key]
        index = _Index(
            labels=labels,
            timestamps=(stamps - stamps[0]).astype(np.float64) * self._time_base(),
            key_field="pts",
            keys={p: i for i, p in enumerate(pts)},
            sizes=np.array([p.size for p in packets], dtype=np.int64),
            restarts=_restart_points(labels, packets, keys),
            dimensions=(0, 0),
            rotation=0,
            decoded=False,
            discarded=len(packets) - len(shown),
        )
        self._use(index)
        try:  # the first frame decoded must be the first listed
            first = self._frame(0)
        except VideoError:
            return False
        self.index = replace(
            index, dimensions=(first.width, first.height), rotation=_rotation(first)
        )
        self._describe()  # (and go on decoding from the first frame)
        return True

    def _index_by_decoding(self) -> _Index:
        """Decode the stream once from the beginning: its frames in the decoder's output order,
        each with the packet it came from.

        A stream with a damaged packet is decoded again without frame threads: with them, a
        decoding error reaches PyAV late, as it drains the decoder, and the frames still in the
        decoder are lost (FFmpeg's command line, which goes on receiving them, gives them).
        """
        self._threads, self._error = "AUTO", None
        index = self._decode_index()
        if self._error is not None:
            self._threads = "SLICE"
            index = replace(self._decode_index(), threads="SLICE")
        return index

    def _decode_index(self) -> _Index:
        self._stop()
        self._reopen()
        packets: list[_Packet] = []
        frames: list[tuple[int, bool]] = []  # label, key frame
        first: av.VideoFrame | None = None
        for packet in self._packets(0, record=packets):
            for frame in self._decode(packet):
                frames.append((_label(frame), bool(frame.key_frame)))
                if first is None:
                    first = frame
        if first is None:
            if not packets:
                raise VideoError(f"{self.path} has no video frames")
            why = f": {self._error}" if self._error else ""
            raise VideoError(
                f"{self.path} has no frame FFmpeg can decode ({len(packets)} video packets{why})"
            )
        labels = np.array([label for label, _ in frames], dtype=np.int64)
        # a frame's time is that of the packet it was decoded from
        pts = [packets[label].pts if 0 <= label < len(packets) else None for label in labels]
        if labels.min() < 0 or len(np.unique(labels)) < len(labels):
            labels[:] = -1  # frames not told apart by packet: counted from the beginning only
        if None not in pts and np.all(np.diff(np.asarray(pts, dtype=np.int64)) > 0):
            stamps = np.asarray(pts, dtype=np.int64)
            timestamps = (stamps - stamps[0]).astype(np.float64) * self._time_base()
        else:  # timestamps missing or not those of the frames (packed B-frames): nominal rate
            rate = self.stream.average_rate or self.stream.guessed_rate or 25
            timestamps = np.arange(len(frames), dtype=np.float64) / float(rate)
        field, keys = "pos", None  # how to recognise a packet after a seek
        for field in ("pos", "dts", "pts"):
            values = [getattr(p, field) for p in packets]
            if None in values or len(set(values)) < len(values):
                continue
            if field == "pos" and min(values) < 0:  # -1: position unknown
                continue
            keys = {value: i for i, value in enumerate(values)}
            break
        key_frames = {label for label, key in frames if key and label >= 0}
        restarts = {}
        if keys is not None and labels.min() >= 0:
            restarts = _restart_points(
                labels, packets, [i for i, p in enumerate(packets) if p.key and i in key_frames]
            )
        self._stop()
        sizes = np.array([p.size for p in packets], dtype=np.int64)
        return _Index(
            labels,
            timestamps,
            field,
            keys,
            sizes,
            restarts,
            (first.width, first.height),
            _rotation(first),
            decoded=True,
            discarded=sum(p.discard for p in packets),
        )

    def _use(self, index: _Index) -> None:
        self._stop()
        if index.threads != self._threads:
            self._threads = index.threads
            self._reopen()
        self.index = index
        self._index_of = np.full(int(index.labels.max()) + 1, -1, dtype=np.int64)
        self._index_of[index.labels[index.labels >= 0]] = np.flatnonzero(index.labels >= 0)
        self._restarts = sorted(index.restarts)
        self._describe()

    def _describe(self) -> None:
        index = self.index
        self.timestamps = index.timestamps
        count = len(index.labels)
        stream = self.stream
        rate = stream.average_rate or stream.guessed_rate
        steps = np.diff(self.timestamps)
        step = float(np.median(steps)) if count > 1 else 0.0
        variable = bool(count > 2 and np.ptp(steps) > 0.5 * step)
        if variable or not rate:  # the nominal rate says little: frames per second of the file
            fps = (count - 1) / float(self.timestamps[-1]) if self.timestamps[-1] > 0 else 25.0
        else:
            fps = float(rate)
        width, height = index.dimensions
        if index.rotation % 180:
            width, height = height, width
        self.rotation = index.rotation
        said_frames, said_seconds = self._announced
        duration = float(self.timestamps[-1]) + step
        self.shown = None
        if said_frames is not None:  # (an edit list hides some of the frames it counts)
            announced, short = said_frames, said_frames - index.discarded - count > 1
            if short and rate:
                self.shown = _null_frames(self.timestamps, float(rate), said_frames)
                short, self.shown_fps = self.shown is None, float(rate)
        elif said_seconds is not None:  # (a variable frame rate: compare times, not frames)
            announced = round(said_seconds * fps)
            short = said_seconds - duration > 1.5 * (step or 1 / fps)
        else:
            announced, short = None, False
        self.info = VideoInfo(
            path=str(self.path),
            num_frames=count,
            fps=fps,
            duration=duration,
            width=width,
            height=height,
            codec=stream.codec_context.name,
            rotation=index.rotation,
            variable_frame_rate=variable,
            announced_frames=announced,
            truncated=short,
        )

    def _time_base(self) -> float:
        return float(self.stream.time_base or Fraction(1, 1))

    # ------------------------------------------------------------------------------ decoding
    def decode(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        for target in sorted(set(indices)):
            yield target, frame_to_rgb(self._frame(target))

    def verify(self) -> None:
        if self.index.decoded:  # listed by decoding every frame
            return
        try:
            for target in range(len(self.index.labels)):
                self._frame(target)
        except VideoError:  # packets the decoder gives no frame for (damaged): count as FFmpeg
            self._index_anew()

    def _frame(self, target: int) -> av.VideoFrame:
        """The decoded frame ``target``, continuing the current decode where that is cheapest."""
        if self._position == target and self._last is not None:
            return self._last
        while True:
            restart = (
                self._restarts[bisect.bisect_right(self._restarts, target) - 1]
                if (self._restarts and self._restarts[0] <= target)
                else 0
            )
            if self._frames is None or self._position >= target or self._position + 1 < restart:
                self._stop()
                self._frames = self._decode_from(restart)
            try:
                while self._position < target:
                    self._position, self._last = next(self._frames)
                return self._last
            except (_Mismatch, StopIteration) as err:
                self._stop()
                if restart > 0:
                    self._restarts.remove(restart)  # decode from an earlier key frame instead
                    continue
                why = f": {self._error}" if self._error else ""
                if isinstance(err, _Mismatch):
                    raise VideoError(
                        f"{self.path}: frame {err.args[0]} could not be decoded{why}"
                    ) from None
                total = len(self.index.labels)
                raise VideoError(
                    f"{self.path} is truncated or damaged: frame {target} of "
                    f"{total} could not be decoded{why}"
                ) from None

    def _stop(self) -> None:
        if self._frames is not None:
            self._frames.close()  # type: ignore[attr-defined]
        self._frames, self._position, self._last = None, -1, None

    def _decode_from(self, start: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """``(index, frame)`` from frame ``start`` (0 or a restart point) on; raises
        :class:`_Mismatch` where the frames do not follow the index."""
        if start == 0:
            self._reopen()
            packet_rank = 0
        else:
            packet_rank, timestamp = self.index.restarts[start]
            try:
                self.container.seek(timestamp, stream=self.stream, backward=True)
            except av.error.FFmpegError:
                raise _Mismatch(start) from None
        expected = start
        labelled = self.index.labels[0] >= 0  # (else frames are counted from the beginning)
        for packet in self._packets(packet_rank, seeking=start > 0):
            for frame in self._decode(packet):
                label = _label(frame) if labelled else -1
                index = int(self._index_of[label]) if 0 <= label < len(self._index_of) else -1
                if expected == start and start > 0 and index < start:
                    continue  # shown before the key frame decoding restarted at
                if index == -1 and (label >= 0 or start > 0):
                    continue  # a frame the index does not list (discarded by an edit list)
                if label >= 0 and index != expected:
                    raise _Mismatch(expected)
                yield expected, frame
                expected += 1

    def _packets(
        self, first: int, seeking: bool = False, record: list[_Packet] | None = None
    ) -> Iterator[av.Packet]:
        """The stream's non-empty packets from rank ``first`` on, each labelled with its rank,
        then an empty one that drains the decoder. After a seek, packets are recognised by
        ``index.keys``; a seek that landed past packet ``first`` raises :class:`_Mismatch`.
        ``record`` collects each packet as the file has it (before its label)."""
        keys, field = (self.index.keys, self.index.key_field) if seeking else (None, "")
        sizes = self.index.sizes if seeking else None
        rank = first - 1
        try:
            for packet in self.container.demux(self.stream):
                if packet.size == 0:
                    continue
                if keys is not None and sizes is not None:
                    if rank < first:  # where did the seek land?
                        known = keys.get(getattr(packet, field))
                        if known is None or known < first or sizes[known] != packet.size:
                            continue
                        if known > first:
                            raise _Mismatch(first)
                    elif rank + 1 >= len(sizes) or sizes[rank + 1] != packet.size:
                        raise _Mismatch(first)  # not the packets listed: a wrong landing
                rank += 1
                if record is not None:
                    record.append(_Packet.of(packet))
                packet.pts = rank  # the label the decoder passes on to its frames
                yield packet
        except av.error.FFmpegError as err:
            raise VideoError(
                f"{self.path} is corrupt: reading its packets failed: {_reason(err)}"
            ) from err
        if seeking and rank < first:
            raise _Mismatch(first)  # the seek landed past packet ``first``
        yield None  # type: ignore[misc]

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        """What the decoder gives for ``packet`` (None: the frames it still holds); a packet it
        refuses is skipped, as FFmpeg does, and the reason kept for error messages."""
        try:
            return self.stream.codec_context.decode(packet)
        except av.error.FFmpegError as err:
            self._error = _reason(err)
            return []

    def close(self) -> None:
        self._stop()
        self.container.close()


def _restart_points(
    labels: np.ndarray, packets: list[_Packet], keys: list[int]
) -> dict[int, tuple[int, int]]:
    """Frame index → (packet, seek timestamp) of the key packets ``keys`` from which decoding
    gives every later frame: no frame shown after the key frame is decoded from a packet before
    it. The seek timestamp is the smaller of the packet's pts and dts (containers seek by one or
    the other)."""
    index_of = np.full(len(packets), -1, dtype=np.int64)
    index_of[labels] = np.arange(len(labels))
    latest_first = np.minimum.accumulate(labels[::-1])[::-1]  # smallest label from i on
    restarts = {}
    for rank in keys:
        index = int(index_of[rank])
        stamps = [t for t in (packets[rank].pts, packets[rank].dts) if t is not None]
        if index > 0 and latest_first[index] >= rank and stamps:
            restarts[index] = (rank, min(stamps))
    return restarts


def _label(frame: av.VideoFrame) -> int:
    """The rank of the packet ``frame`` was decoded from (-1: unknown)."""
    return frame.pts if frame.pts is not None and frame.pts >= 0 else -1


def _rotation(frame: av.VideoFrame) -> int:
    return round(getattr(frame, "rotation", 0) or 0)


class _ImageFolder(_Backend):
    def __init__(self, folder: Path, fps: float) -> None:
        import cv2  # noqa: F401  (fail early if OpenCV is missing)

        self.files = frame_files(folder)
        if not self.files:
            raise VideoError(
                f"{folder} is a folder without frame images ({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        if fps <= 0:
            raise VideoError(f"fps of an image folder must be positive, got {fps}")
        first = self._load(0)
        self.timestamps = np.arange(len(self.files), dtype=np.float64) / fps
        self.info = VideoInfo(
            path=str(folder),
            num_frames=len(self.files),
            fps=float(fps),
            duration=len(self.files) / fps,
            width=first.shape[1],
            height=first.shape[0],
            codec="images",
        )

    def _load(self, index: int) -> np.ndarray:
        return read_image(self.files[index])

    def decode(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        for index in sorted(set(indices)):
            frame = self._load(index)
            if frame.shape[:2] != (self.info.height, self.info.width):
                raise VideoError(
                    f"{self.files[index]} is {frame.shape[1]}×{frame.shape[0]}, other frames "
                    f"of {self.info.path} are {self.info.width}×{self.info.height}"
                )
            yield index, frame


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB ``(H, W, 3)``: grayscale is replicated, alpha dropped."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise VideoError(f"cannot read image {path}: unreadable or not an image")
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return str(text).splitlines()[0]
