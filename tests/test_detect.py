from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vadx.data.synth import render_long
from vadx.detect import (
    DetectConfig,
    Event,
    detect,
    event_window,
    find_events,
    moving_average,
    spread_over_frames,
)
from vadx.detect.files import write_detection
from vadx.errors import InputError
from vadx.models import CRNN, CRNNConfig
from vadx.video import VideoReader, fit_frames, frames_to_clip, sliding_windows, write_mp4

CLASSES = ("fight", "shooting", "fire", "normal")
TINY = CRNNConfig(
    backbone_args={"width": 0.0625},
    num_frames=4,
    frame_size=(32, 32),
    rnn_hidden=16,
    head_hidden=(8,),
)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    video = render_long(1, [("normal", 12), ("fire", 20), ("normal", 10)], (48, 48))
    return write_mp4(tmp_path_factory.mktemp("det") / "long.mp4", video.frames, fps=10)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CRNN(TINY).eval()


def test_spread_over_frames_averages_covering_windows():
    windows = sliding_windows(6, length=4, stride=2)  # frames 0-3 and 2-5
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0]])
    spread = spread_over_frames(windows, probabilities, 6)
    assert spread[:, 0].tolist() == [1, 1, 0.5, 0.5, 0, 0]


def test_moving_average_shrinks_at_the_ends():
    values = np.array([0.0, 3.0, 6.0, 9.0])
    assert moving_average(values, 3).tolist() == [1.5, 3.0, 6.0, 7.5]
    assert moving_average(values, 1).tolist() == values.tolist()


def test_hysteresis_events():
    score = np.array([0.0, 0.6, 0.4, 0.3, 0.7, 0.8, 0.36, 0.2])
    probs = np.stack([score, np.zeros(8), np.zeros(8), 1 - score], 1)
    config = DetectConfig(on=0.5, off=0.35, min_frames=1)
    events = find_events(score, probs, CLASSES, "normal", np.arange(8) / 10, config)
    assert [(e.start_frame, e.end_frame, e.class_name) for e in events] == [
        (1, 2, "fight"),
        (4, 6, "fight"),
    ]
    assert events[1].peak_probability == 0.8 and events[1].start_time == 0.4
    longer = find_events(
        score,
        probs,
        CLASSES,
        "normal",
        np.arange(8) / 10,
        DetectConfig(on=0.5, off=0.35, min_frames=3),
    )
    assert [(e.start_frame, e.end_frame) for e in longer] == [(4, 6)]


def test_cached_features_equal_recomputing_every_window(model, long_video):
    calls = []
    hook = model.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        result = detect(model, long_video, DetectConfig(stride=3, step=2, batch_size=8))
    finally:
        hook.remove()
    needed = np.unique(np.concatenate([w.indices for w in result.windows]))
    assert sum(calls) == len(needed) == 39  # each needed frame once, not once per window
    assert len(result.windows) * 4 == 52  # what recomputing every window would cost
    with VideoReader(long_video) as video:
        frames, _, _ = fit_frames(video.read_range().data, TINY.frame_size, TINY.fit)
    clip = frames_to_clip(frames, model.config.mean, model.config.std)
    with torch.no_grad():
        naive = torch.stack(
            [model(clip[w.indices][None])[0].softmax(-1) for w in result.windows]
        ).numpy()
    np.testing.assert_allclose(result.window_probabilities, naive, rtol=1e-4, atol=1e-6)
    assert result.frame_probabilities.shape == (42, 4)
    assert result.windows[-1].end == 41 and result.settings.step == 2


def test_outputs(model, long_video, tmp_path):
    result = detect(model, long_video, DetectConfig(stride=2, on=0.0, off=0.0, min_frames=1))
    write_detection(tmp_path, result, long_video, "sha256:x")
    document = json.loads((tmp_path / "events.json").read_text())
    assert document["model"] == "sha256:x" and document["settings"]["stride"] == 2
    assert len(document["events"]) == 1  # the score is always ≥ 0: one event, whole video
    assert document["events"][0]["start_frame"] == 0 and document["events"][0]["end_frame"] == 41
    lines = (tmp_path / "scores.csv").read_text().splitlines()
    assert len(lines) == 43 and lines[0].startswith("frame,time,p_fight")
    with VideoReader(tmp_path / "annotated.mp4") as annotated:
        assert len(annotated) == 42
        frame = annotated.read([5]).data[0]
    assert frame.shape[:2] == (48 + 12, 48)  # the label's band below the 48×48 picture
    assert frame[-3, -24, 0] > 150 and frame[-3, -24, 1] < 90  # red: an alert


def test_bad_input(model, tmp_path):
    short = write_mp4(tmp_path / "short.mp4", np.zeros((3, 32, 32, 3), np.uint8), fps=5)
    with pytest.raises(InputError, match="fewer than one window"):
        detect(model, short)
    with pytest.raises(InputError, match="off ≤ on"):
        DetectConfig(on=0.3, off=0.5)


def test_an_events_window_is_its_most_anomalous_overlapping_one_else_the_nearest():
    windows = sliding_windows(12, length=4, stride=2)  # frames 0-3, 2-5, 4-7, 6-9, 8-11
    fight = np.array([[0.1], [0.9], [0.7], [0.95], [0.2]])  # p(fight) per window
    names = ("fight",)

    def event(first, last):
        return Event(first, last, first / 10, last / 10, "fight", 0.9, 0.8)

    assert event_window(windows, fight, names, event(4, 5)).number == 1  # 0.9 beats 0.7
    assert event_window(windows, fight, names, event(0, 11)).number == 3  # overall best
    assert event_window(windows, fight, names, event(0, 1)).number == 0  # the only overlap
    short = sliding_windows(12, length=4, stride=4)[:2]  # frames 0-3 and 4-7; 8-11 uncovered
    assert event_window(short, fight[:2], names, event(10, 11)).number == 1  # the nearest


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 9, 40])
def test_moving_average_takes_the_live_engines_frames_for_any_width(width):
    values = np.array([0.0, 1.0, 4.0, 2.0, 8.0])
    left, right = width // 2, (width - 1) // 2  # the frames StreamDetector averages
    expected = [values[max(0, t - left) : t + right + 1].mean() for t in range(5)]
    np.testing.assert_allclose(moving_average(values, width), expected)  # wider than 5 too
