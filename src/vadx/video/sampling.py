"""Which frames make a clip: K frames spread over a clip, or sliding windows over a long video.

Both return frame **indices** (and windows keep their timestamps), so a result computed on a
clip or window maps back to exact frames of the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vadx.errors import InputError


def even_indices(num_frames: int, k: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """``k`` frame indices spread evenly over ``[start, stop)``, first and last frame included.

    This is the reference's "video generator": a trimmed clip of any length becomes ``k``
    frames, ``round(linspace(start, stop - 1, k))``.

    >>> even_indices(100, 5).tolist()
    [0, 25, 50, 74, 99]
    """
    stop = num_frames if stop is None else stop
    if k < 1:
        raise InputError(f"the number of frames to sample must be at least 1, got {k}")
    if not 0 <= start < stop <= num_frames:
        raise InputError(f"frame range [{start}, {stop}) is not inside a video of {num_frames}")
    if stop - start < k:
        raise InputError(
            f"cannot sample {k} distinct frames from {stop - start} (frames {start}…{stop - 1}); "
            f"the clip is shorter than the model's {k} frames"
        )
    return np.round(np.linspace(start, stop - 1, k)).astype(np.int64)


@dataclass(frozen=True)
class Window:
    """One window of a long video: its frame indices and time span (seconds)."""

    number: int
    indices: np.ndarray
    start_time: float
    end_time: float

    @property
    def start(self) -> int:
        """First frame index."""
        return int(self.indices[0])

    @property
    def end(self) -> int:
        """Last frame index (inclusive)."""
        return int(self.indices[-1])


def sliding_windows(
    num_frames: int,
    length: int,
    stride: int,
    step: int = 1,
    timestamps: np.ndarray | None = None,
) -> list[Window]:
    """Windows of ``length`` frames, ``step`` apart, starting every ``stride`` frames.

    The last window is moved back to end at the video's last frame so the end is always
    covered (it may then overlap its neighbour more than the others do). ``timestamps``
    (seconds per frame) default to frame numbers at 1 fps.

    >>> [w.indices.tolist() for w in sliding_windows(10, length=4, stride=3)]
    [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    >>> [w.start for w in sliding_windows(11, length=4, stride=3)]
    [0, 3, 6, 7]
    """
    for name, value in (("length", length), ("stride", stride), ("step", step)):
        if value < 1:
            raise InputError(f"window {name} must be at least 1, got {value}")
    span = (length - 1) * step + 1
    if num_frames < span:
        raise InputError(
            f"the video has {num_frames} frames, shorter than one window of {length} frames "
            f"{step} apart ({span} frames)"
        )
    times = np.arange(num_frames, dtype=np.float64) if timestamps is None else timestamps
    if len(times) != num_frames:
        raise InputError(f"{len(times)} timestamps for {num_frames} frames")
    starts = list(range(0, num_frames - span + 1, stride))
    if starts[-1] + span < num_frames:
        starts.append(num_frames - span)
    windows = []
    for number, first in enumerate(starts):
        indices = first + step * np.arange(length, dtype=np.int64)
        windows.append(Window(number, indices, float(times[indices[0]]), float(times[indices[-1]])))
    return windows
