from __future__ import annotations

import numpy as np
import pytest
import torch

from vadx.errors import InputError
from vadx.video import (
    Augment,
    AugmentDraw,
    apply_augmentation,
    clip_to_frames,
    fit_frames,
    frames_to_clip,
)
from vadx.video.preprocess import PAD_COLOUR


def source_frame(height=2, width=4):
    values = np.arange(height * width, dtype=np.uint8).reshape(1, height, width, 1) * 10 + 10
    return np.repeat(values, 3, axis=-1)


def test_pad_keeps_everything_and_fills_with_the_imagenet_mean():
    frames = source_frame()  # 2×4 into 4×4: scale 1, one padded row above and below
    out, geometry, _ = fit_frames(frames, (4, 4), "pad")
    assert np.array_equal(out[0, 1:3], frames[0])
    assert (out[0, 0] == PAD_COLOUR).all() and (out[0, 3] == PAD_COLOUR).all()
    assert (geometry.top, geometry.left, geometry.scale_y) == (1, 0, 1.0)
    normalised = frames_to_clip(out, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert normalised[0, :, 0].abs().max() < 0.01  # padding is ≈ 0 for the network


def test_crop_takes_the_centre():
    out, geometry, _ = fit_frames(source_frame(), (2, 2), "crop")
    assert np.array_equal(out[0], source_frame()[0, :, 1:3])
    assert geometry.left == -1


def test_stretch_scales_each_axis():
    out, geometry, _ = fit_frames(source_frame(), (4, 8), "stretch")
    assert out.shape == (1, 4, 8, 3) and (geometry.scale_y, geometry.scale_x) == (2.0, 2.0)


@pytest.mark.parametrize("fit", ["pad", "crop", "stretch"])
def test_maps_go_back_onto_the_source(fit):
    frames = np.zeros((1, 30, 60, 3), np.uint8)
    masks = np.zeros((1, 30, 60), bool)
    masks[0, 10:20, 25:35] = True  # a central object survives every fit
    _, geometry, fitted_masks = fit_frames(frames, (32, 32), fit, masks=masks)
    back = geometry.to_source(fitted_masks.astype(np.float32))
    assert back.shape == (1, 30, 60)
    assert np.mean((back > 0.5) == masks) > 0.97


def test_to_source_of_a_padded_map_is_the_content():
    _, geometry, _ = fit_frames(source_frame(), (4, 4), "pad")
    maps = np.zeros((2, 4, 4), np.float32)
    maps[:, 1:3] = 7.0
    np.testing.assert_array_equal(geometry.to_source(maps), np.full((2, 2, 4), 7.0))


def test_masks_follow_the_frames():
    frames = np.zeros((2, 40, 80, 3), np.uint8)
    masks = np.zeros((2, 40, 80), bool)
    masks[:, 5:15, 60:70] = True
    frames[masks] = 255
    out, _, out_masks = fit_frames(frames, (20, 20), "pad", masks=masks)
    assert np.mean((out[..., 0] > 127) == out_masks) > 0.98


def test_flip_and_brightness_are_exact():
    frames = (np.arange(2 * 3 * 4 * 3) % 100 * 2).astype(np.uint8).reshape(2, 3, 4, 3)
    flipped, _ = apply_augmentation(frames, AugmentDraw(brightness=1.0, flip=True, zoom=1.0))
    assert np.array_equal(flipped, frames[:, :, ::-1])
    darker, _ = apply_augmentation(frames, AugmentDraw(brightness=0.5, flip=False, zoom=1.0))
    assert np.array_equal(darker, frames // 2)
    brighter, _ = apply_augmentation(frames, AugmentDraw(brightness=1.9, flip=False, zoom=1.0))
    assert brighter.max() == 255  # saturates instead of wrapping around


def test_zoom_in_magnifies_about_the_centre():
    frames = np.zeros((1, 41, 41, 3), np.uint8)
    frames[0, 18:23, 18:23] = 255  # a 5×5 square at the centre
    masks = frames[..., 0] > 0
    zoomed, zoomed_masks = apply_augmentation(frames, AugmentDraw(1.0, False, 2.0), masks)
    bright = zoomed[0, ..., 0] > 127
    assert 80 <= bright.sum() <= 121  # about 10×10 after a 2× zoom
    assert bright[20, 20] and not bright[5, 5]
    assert np.mean(bright == zoomed_masks[0]) > 0.98


def test_one_draw_per_clip_and_deterministic_per_seed():
    frame = np.random.default_rng(0).integers(0, 255, (1, 24, 32, 3), dtype=np.uint8)
    frames = np.repeat(frame, 5, axis=0)
    augment = Augment(brightness=0.3, flip=0.5, zoom=0.3)
    out, _ = augment(frames, np.random.default_rng(7))
    assert all(np.array_equal(out[0], out[t]) for t in range(5))
    again, _ = augment(frames, np.random.default_rng(7))
    assert np.array_equal(out, again)
    draws = {augment.draw(np.random.default_rng(s)).flip for s in range(20)}
    assert draws == {True, False}


def test_augment_ranges_are_checked():
    with pytest.raises(InputError, match="augmentation needs"):
        Augment(zoom=1.5)


def test_clip_round_trip():
    frames = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    clip = frames_to_clip(frames, mean, std)
    assert clip.shape == (3, 3, 8, 8) and clip.dtype == torch.float32
    assert np.array_equal(clip_to_frames(clip, mean, std), frames)


def test_bad_frames_and_fit():
    with pytest.raises(InputError, match="expected uint8 RGB frames"):
        fit_frames(np.zeros((2, 8, 8), np.uint8), (4, 4), "pad")
    with pytest.raises(InputError, match="fit must be pad, crop or stretch"):
        fit_frames(source_frame(), (4, 4), "zoom")
