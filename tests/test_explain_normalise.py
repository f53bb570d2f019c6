"""Display maps: normalisation modes, magnitudes of signed maps, aligned upsampling."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vadx.errors import ConfigError
from vadx.explain import display, upsample


def test_a_known_hot_cell_lands_on_its_pixels_without_shift():
    raw = torch.zeros(1, 1, 4, 8)
    raw[0, 0, 1, 5] = 1.0  # cell (1, 5) of a 4×8 grid covers rows 8–15, cols 20–23 of 32×32
    shown = upsample(raw, (32, 32))[0, 0]
    rows, cols = torch.nonzero(shown == shown.max(), as_tuple=True)
    assert set(rows.tolist()) <= set(range(8, 16)) and set(cols.tolist()) <= set(range(20, 24))
    # symmetric about the cell's centre: bilinear with aligned pixel centres, no half-pixel shift
    torch.testing.assert_close(shown[8:16, 20:24], shown[8:16, 20:24].flip(0))
    torch.testing.assert_close(shown[8:16, 16:28], shown[8:16, 16:28].flip(1))
    mass_rows = shown.sum(1)
    assert torch.argmax(mass_rows) in (11, 12)


def test_normalisation_modes():
    raw = torch.tensor([[[[1.0, 0.0]], [[4.0, 2.0]]], [[[0.0, 0.0]], [[0.0, 0.5]]]])
    assert display(raw, "clip").tolist() == [
        [[[0.25, 0.0]], [[1.0, 0.5]]],
        [[[0.0, 0.0]], [[0.0, 1.0]]],
    ]
    frame = display(raw, "frame")
    assert frame[0, :, 0].tolist() == [[1.0, 0.0], [1.0, 0.5]]
    assert frame[1, 0].tolist() == [[0.0, 0.0]]  # an all-zero frame stays zero, not NaN
    assert torch.equal(display(raw, "none"), raw)
    with pytest.raises(ConfigError, match="normalisation must be one of"):
        display(raw, "video")


def test_signed_maps_are_shown_by_magnitude_and_unsigned_clamped():
    raw = torch.tensor([[[[-2.0, 1.0]]]])
    assert display(raw, "clip", signed=True).tolist() == [[[[1.0, 0.5]]]]
    assert display(raw, "clip", signed=False).tolist() == [[[[0.0, 1.0]]]]


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 6),
    st.integers(1, 6),
    st.sampled_from(["clip", "frame"]),
    st.integers(0, 2**31 - 1),
)
def test_display_maps_are_in_unit_range_and_peak_at_one(b, t, h, w, mode, seed):
    raw = torch.rand(b, t, h, w, generator=torch.Generator().manual_seed(seed))
    shown = display(raw, mode, size=(h * 3, w * 2))
    assert shown.shape == (b, t, h * 3, w * 2)
    assert shown.min() >= 0 and shown.max() <= 1
    peaks = shown.amax((1, 2, 3) if mode == "clip" else (2, 3))
    torch.testing.assert_close(peaks, torch.ones_like(peaks))
