from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vadx.errors import InputError
from vadx.video import even_indices, sliding_windows


def test_even_indices_values():
    assert even_indices(20, 20).tolist() == list(range(20))
    assert even_indices(41, 5).tolist() == [0, 10, 20, 30, 40]
    assert even_indices(100, 3, start=10, stop=21).tolist() == [10, 15, 20]


@given(n=st.integers(1, 500), data=st.data())
def test_even_indices_properties(n, data):
    k = data.draw(st.integers(1, n))
    indices = even_indices(n, k)
    assert len(indices) == k and indices[0] == 0
    if k > 1:
        assert indices[-1] == n - 1
    assert np.all(np.diff(indices) >= 1)  # strictly increasing: distinct frames
    gaps = np.diff(indices)
    assert gaps.size == 0 or gaps.max() - gaps.min() <= 1  # evenly spread


def test_even_indices_refuses_short_clips():
    with pytest.raises(InputError, match="cannot sample 20 distinct frames from 12"):
        even_indices(12, 20)


def test_windows_values_and_last_window_moved_back():
    windows = sliding_windows(11, length=4, stride=3, timestamps=np.arange(11) * 0.5)
    assert [w.indices.tolist() for w in windows] == [
        [0, 1, 2, 3],
        [3, 4, 5, 6],
        [6, 7, 8, 9],
        [7, 8, 9, 10],
    ]
    assert [(w.start_time, w.end_time) for w in windows][-1] == (3.5, 5.0)
    assert [w.number for w in windows] == [0, 1, 2, 3]


def test_windows_with_a_frame_step():
    windows = sliding_windows(12, length=3, stride=4, step=2)
    assert [w.indices.tolist() for w in windows] == [[0, 2, 4], [4, 6, 8], [7, 9, 11]]


@given(
    n=st.integers(1, 300),
    length=st.integers(1, 30),
    stride=st.integers(1, 30),
    step=st.integers(1, 4),
)
def test_windows_cover_the_video_and_map_back(n, length, stride, step):
    span = (length - 1) * step + 1
    if n < span:
        with pytest.raises(InputError, match="shorter than one window"):
            sliding_windows(n, length, stride, step)
        return
    windows = sliding_windows(n, length, stride, step)
    assert windows[0].start == 0 and windows[-1].end == n - 1
    for window in windows:
        assert len(window.indices) == length
        assert np.all(np.diff(window.indices) == step)
        assert window.start >= 0 and window.end < n
    starts = [w.start for w in windows]
    assert all(b - a <= stride for a, b in itertools.pairwise(starts))
    assert len(set(starts)) == len(starts)


@pytest.mark.parametrize("bad", [{"length": 0}, {"stride": 0}, {"step": 0}])
def test_window_arguments_are_checked(bad):
    kwargs = {"length": 4, "stride": 2, "step": 1, **bad}
    with pytest.raises(InputError, match="must be at least 1"):
        sliding_windows(10, **kwargs)
