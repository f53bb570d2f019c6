"""Overlays, contours, composites: values, alignment of a known hot spot, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vadx.errors import InputError
from vadx.explain import display
from vadx.render import colourise, contour, contours, heatmap, label_frame, render
from vadx.render.figures import contact_sheet, frame_strip, grid
from vadx.video.preprocess import fit_frames


def test_heatmap_blends_by_opacity():
    frame = np.full((6, 6, 3), 200, np.uint8)
    value = np.linspace(0, 1, 36, dtype=np.float32).reshape(6, 6)
    assert np.array_equal(heatmap(frame, value, opacity=0.0), frame)
    assert np.array_equal(heatmap(frame, value, opacity=1.0), colourise(value))
    half = heatmap(frame, value, opacity=0.5).astype(int)
    expected = (frame.astype(int) + colourise(value).astype(int)) / 2
    assert np.abs(half - expected).max() <= 1


def test_a_known_hot_spot_lands_on_the_source_frame_through_layer_frame_and_padding():
    """8×8 layer map → 64×64 model frame (display) → 120×160 source frame (padded)."""
    source = np.zeros((1, 120, 160, 3), np.uint8)
    _, geometry, _ = fit_frames(source, (64, 64), "pad")  # scale 0.4: content 48×64 from row 8
    assert (geometry.top, geometry.left) == (8, 0)
    raw = torch.zeros(1, 1, 8, 8)
    raw[0, 0, 2, 5] = 1.0  # model rows 16–23, cols 40–47 → source rows 20–40, cols 100–120
    on_model = display(raw, "clip", size=(64, 64))[0].numpy()
    on_source = geometry.to_source(on_model)[0]
    assert on_source.shape == (120, 160)
    row, col = np.unravel_index(on_source.argmax(), on_source.shape)
    assert 20 <= row < 40 and 100 <= col < 120
    rows, cols = np.indices(on_source.shape)
    weight = on_source / on_source.sum()
    assert abs((rows * weight).sum() - 30) < 1.5 and abs((cols * weight).sum() - 110) < 1.5
    drawn = heatmap(source[0], on_source, opacity=1.0)
    assert tuple(drawn[row, col]) == tuple(colourise(np.ones((1, 1)))[0, 0])  # hottest colour


def test_contour_outlines_the_region_on_the_untouched_frame():
    frame = np.full((40, 40, 3), 90, np.uint8)
    value = np.zeros((40, 40), np.float32)
    value[10:30, 10:30] = 0.8
    out = contour(frame, value, level=0.5, colour=(255, 0, 0), thickness=1)
    changed = np.any(out != frame, axis=2)
    rows, cols = np.nonzero(changed)
    assert rows.min() >= 9 and rows.max() <= 30 and cols.min() >= 9 and cols.max() <= 30
    assert not changed[15:25, 15:25].any()  # inside is untouched: the scene stays readable
    assert changed[10, 20] or changed[9, 20]  # the top edge is drawn
    assert not np.any(contour(frame, value, level=0.9) != frame)  # nothing reaches 0.9


def test_multi_level_contours_draw_each_level_hotter_inside():
    frame = np.zeros((60, 60, 3), np.uint8)
    value = np.zeros((60, 60), np.float32)
    value[5:55, 5:55], value[15:45, 15:45], value[25:35, 25:35] = 0.3, 0.6, 0.9
    out = contours(frame, value, levels=(0.25, 0.5, 0.75), thickness=1)

    def strongest(row: int) -> np.ndarray:  # the line's fully drawn pixel (lines are anti-aliased)
        pixels = out[row - 2 : row + 3, 30].astype(int)
        return pixels[pixels.sum(1).argmax()]

    palette = colourise(np.array([[0.25, 0.5, 0.75]], np.float32))[0].astype(int)
    for row, colour in zip((5, 15, 25), palette, strict=True):
        drawn = strongest(row)  # anti-aliasing scales the colour; its hue is the level's
        assert np.abs(drawn * colour.max() / drawn.max() - colour).max() <= 3
    assert not out[30, 30].any()  # inside the innermost line: untouched
    assert palette[2][0] > palette[0][0] and palette[2][2] < palette[0][2]  # hotter inside


def test_bad_maps_and_settings_are_refused_with_a_hint():
    frame = np.zeros((10, 12, 3), np.uint8)
    with pytest.raises(InputError, match="does not match the frame's \\(10, 12\\).*to_source"):
        heatmap(frame, np.zeros((12, 10)))
    with pytest.raises(InputError, match="unknown colormap 'rainbow'"):
        heatmap(frame, np.zeros((10, 12)), colormap="rainbow")
    with pytest.raises(InputError, match="opacity must be between 0 and 1"):
        heatmap(frame, np.zeros((10, 12)), opacity=1.5)
    with pytest.raises(InputError, match="unknown view 'blur'"):
        render(frame, np.zeros((10, 12)), "blur")
    with pytest.raises(InputError, match="uint8 RGB frame"):
        heatmap(frame.astype(np.float32), np.zeros((10, 12)))


def test_label_frame_puts_its_band_below_the_picture_and_an_alert_border_around_it():
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    plain = label_frame(frame, "Fight: 98%")
    assert plain.shape == (120 + 12, 160, 3)  # int(22·0.4) + 5 rows, rounded down to even
    assert (plain[:120] == frame).all()  # not one pixel of the picture covered
    assert (plain[121, 150] == (30, 30, 30)).all() and (plain[120:, 4:60] > 200).any()
    alert = label_frame(frame, "Fight: 98%", alert=True)
    assert tuple(alert[119, 80]) == tuple(alert[60, 0]) == (220, 0, 0)
    assert (alert[121, 150] == (200, 30, 30)).all()
    assert (alert[2:118, 2:158] == frame[2:118, 2:158]).all()


def test_grid_sheet_and_strip_sizes():
    a = np.zeros((3, 20, 30, 3), np.uint8)
    b = np.zeros((2, 20, 30, 3), np.uint8)
    image = grid([("first", a), ("second", b)], ["0", "1", "2"], tile_height=40, gap=4)
    assert image.shape[0] == round(40 * 0.22) + 2 * (40 + 4) + 4
    assert image.dtype == np.uint8 and image.shape[1] > 3 * 60
    sheet = contact_sheet(
        np.zeros((7, 20, 30, 3), np.uint8), [str(i) for i in range(7)], columns=3, tile_height=40
    )
    assert sheet.shape[1] == 3 * 60 and sheet.shape[0] == 3 * (40 + round(40 * 0.16))
    strip = frame_strip(a, {"Frame occlusion": np.array([0.1, -0.2, 0.4])}, [4, 8, 12], "t")
    assert strip.ndim == 3 and strip.shape[2] == 3 and strip.shape[1] > strip.shape[0]
    with pytest.raises(InputError, match="3 frames but 2 labels"):
        contact_sheet(a, ["0", "1"])
