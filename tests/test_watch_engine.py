"""The live engine finds exactly the events ``vadx detect`` finds, one frame at a time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import half_outside_domain, stretched_model
from vadx.data.synth import render_long
from vadx.detect import DetectConfig, detect, moving_average
from vadx.errors import InputError
from vadx.models import CRNN, CRNNConfig
from vadx.video import write_png
from vadx.video.sampling import sliding_windows
from vadx.watch import FrameInfo, StreamDetector, WindowPlan

TINY = CRNNConfig(
    backbone_args={"width": 0.0625},
    num_frames=4,
    frame_size=(32, 32),
    rnn_hidden=16,
    head_hidden=(8,),
)
FPS = 25.0


def frame_folder(folder, frames):
    for t, frame in enumerate(frames):
        write_png(folder / f"{t:05d}.png", frame)
    return folder


@pytest.fixture(scope="module")
def frames():
    video = render_long(1, [("normal", 12), ("fire", 20), ("normal", 10)], (48, 48))
    return video.frames


@pytest.fixture(scope="module")
def folder(frames, tmp_path_factory):
    return frame_folder(tmp_path_factory.mktemp("frames"), frames)


@pytest.fixture(scope="module")
def model(folder):
    """An untrained model whose probabilities move from window to window
    (:func:`tests.conftest.stretched_model`)."""
    return stretched_model(folder)


def thresholds(model, folder, config, low, high):
    """on/off at quantiles of the score each track follows, so events do happen."""
    result = detect(model, folder, replace(config, on=1.0, off=0.0))
    if config.per_class:
        columns = [model.class_index(n) for n in model.class_names if n != "normal"]
        # each anomaly class's own track: its probability, smoothed as detection smooths it
        score = np.concatenate(
            [moving_average(result.frame_probabilities[:, c], config.smooth) for c in columns]
        )
    else:
        score = result.smoothed_score
    # midway across gaps between neighbouring scores wider than 1e-4: CNN batches of other
    # sizes move scores by up to ~1e-5, which must not flip a comparison
    values = np.unique(score)
    gaps = np.diff(values)
    wide = np.flatnonzero(gaps > 1e-4) if (gaps > 1e-4).any() else [int(gaps.argmax())]
    off, on = [
        (values[k] + values[k + 1]) / 2
        for k in (wide[int(q * (len(wide) - 1))] for q in (low, high))
    ]
    return replace(config, on=float(max(on, off)), off=float(min(on, off)))


def stream(model, frames, config, chunks, first_number=0):
    """Push ``frames`` in chunks of the given sizes; returns the alerts and the decisions."""
    alerts, decisions = [], []
    detector = StreamDetector(model, config, on_alert=alerts.append, on_decision=decisions.append)
    t, sizes = 0, iter(chunks)
    while t < len(frames):
        size = next(sizes, 1)
        batch = frames[t : t + size]
        infos = [FrameInfo.now(first_number + t + i, (t + i) / FPS) for i in range(len(batch))]
        detector.push_many(list(batch), infos)
        t += len(batch)
    detector.end_segment()
    return alerts, decisions, detector


def as_tuples(events, offset=0):
    """Events as (start, end, class, peak, mean), frames shifted by ``offset``."""
    return [
        (
            e.start_frame + offset,
            e.end_frame + offset,
            e.class_name,
            e.peak_probability,
            e.mean_probability,
        )
        for e in events
    ]


def assert_same_events(found, expected):
    """The same events (frames and class), with the same probabilities up to the ~1e-5 that CNN
    batches of other sizes move them."""
    assert [t[:3] for t in found] == [t[:3] for t in expected]
    np.testing.assert_allclose([t[3:] for t in found], [t[3:] for t in expected], atol=1e-4)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stride=st.integers(1, 6),
    step=st.integers(1, 3),
    smooth=st.integers(1, 6),
    min_frames=st.integers(1, 4),
    per_class=st.booleans(),
    quantiles=st.tuples(st.floats(0.1, 0.5), st.floats(0.5, 0.9)),
    chunks=st.lists(st.integers(1, 9), max_size=12),
)
def test_stream_events_equal_offline_detection(
    model, frames, folder, stride, step, smooth, min_frames, per_class, quantiles, chunks
):
    config = DetectConfig(
        stride=stride,
        step=step,
        smooth=smooth,
        min_frames=min_frames,
        per_class=per_class,
        batch_size=5,
    )
    config = thresholds(model, folder, config, *quantiles)
    offline = detect(model, folder, config)
    alerts, decisions, _ = stream(model, frames, config, chunks)
    ended = [a.event for a in alerts if a.kind == "ended"]
    ended.sort(key=lambda e: (e.start_frame, e.class_name))
    assert_same_events(as_tuples(ended), as_tuples(offline.events))
    for event in ended:  # times are the frames' times
        assert event.start_time == pytest.approx(event.start_frame / FPS)
    # every window decided, in order, with the offline probabilities
    assert [d.first.number for d in decisions] == [w.start for w in offline.windows]
    assert [d.last.number for d in decisions] == [w.end for w in offline.windows]
    np.testing.assert_allclose(
        [d.probabilities for d in decisions], offline.window_probabilities, atol=1e-5
    )
    # each event is announced once, after min_frames, before it ends; ids pair up
    started = {a.id: a for a in alerts if a.kind == "started"}
    assert sorted(started) == sorted(a.id for a in alerts if a.kind == "ended")
    for alert in alerts:
        if alert.kind == "started":
            assert alert.event.end_frame - alert.event.start_frame + 1 == min_frames
            assert alerts.index(alert) < next(
                i for i, a in enumerate(alerts) if a.kind == "ended" and a.id == alert.id
            )


def test_the_cnn_runs_once_per_frame_a_window_uses(model, frames, folder):
    config = DetectConfig(stride=4, step=2, on=1.0, off=0.0)
    calls = []
    hook = model.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        _, decisions, detector = stream(model, frames, config, [3] * 20)
    finally:
        hook.remove()
    windows = sliding_windows(len(frames), 4, 4, 2)
    needed = set(np.concatenate([w.indices for w in windows]).tolist())
    assert sum(calls) == detector.cnn_frames
    # even frames up to 40 as they arrive (40 for a window that never completes), then the odd
    # frames of the last window, moved back to end at frame 41: 35, 37, 39, 41
    assert detector.cnn_frames == len(needed | {40}) == 25
    assert len(decisions) == len(windows) * 1 == 10  # RNN + head once per window


def test_a_break_ends_the_segment_like_the_end_of_a_file(model, frames, folder, tmp_path):
    prefix = frame_folder(tmp_path / "prefix", frames[:25])
    config = thresholds(model, folder, DetectConfig(stride=3, step=1, min_frames=1), 0.3, 0.6)
    alerts, decisions = [], []
    detector = StreamDetector(model, config, on_alert=alerts.append, on_decision=decisions.append)
    for t in range(25):
        detector.push(frames[t], FrameInfo.now(t, t / FPS))
    detector.end_segment("source reconnected")
    for t in range(len(frames)):
        detector.push(frames[t], FrameInfo.now(25 + t, t / FPS, session=1))
    detector.end_segment()
    ended = [a for a in alerts if a.kind == "ended"]
    expected = as_tuples(detect(model, prefix, config).events) + as_tuples(
        detect(model, folder, config).events, offset=25
    )
    assert_same_events(as_tuples([a.event for a in ended]), expected)
    assert len(expected) >= 2
    assert all(d.first.session == d.last.session for d in decisions)  # no window spans a gap
    reasons = {a.reason for a in ended if a.event.end_frame in (24, 25 + len(frames) - 1)}
    assert reasons <= {"source reconnected", "stream ended"}
    assert len({a.id for a in alerts}) == len(ended)  # ids never reused


def test_a_started_event_carries_its_most_probable_window(model, frames):
    config = DetectConfig(stride=2, step=1, on=0.0, off=0.0, min_frames=2)  # always on
    alerts = []
    detector = StreamDetector(model, config, on_alert=alerts.append, keep_clips=True)
    for t, frame in enumerate(frames):
        detector.push(frame, FrameInfo.now(100 + t, t / FPS))
    detector.end_segment()
    started = next(a for a in alerts if a.kind == "started")
    assert started.window is not None and started.window.shape == (4, 48, 48, 3)
    first = started.window_frames[0] - 100
    np.testing.assert_array_equal(started.window, frames[first : first + 4])
    assert started.window_frames == tuple(range(100 + first, 104 + first))
    assert started.window_fps == pytest.approx(FPS)
    assert started.event.start_frame == 100  # source numbers, not segment indices


def test_window_plan():
    plan = WindowPlan(length=4, step=2, stride=3)
    assert plan.span == 7 and plan.indices(3).tolist() == [3, 5, 7, 9]
    used = {int(i) for s in range(0, 30, 3) for i in plan.indices(s)}
    assert [i for i in range(30) if plan.needed(i)] == sorted(i for i in used if i < 30)


def test_bad_input(model, frames):
    detector = StreamDetector(model)
    with pytest.raises(InputError, match="2 frames but 1 frame infos"):
        detector.push_many([frames[0], frames[1]], [FrameInfo.now(0, 0.0)])
    assert detector.push_many([], []) == [] and detector.end_segment() == []  # nothing yet


@pytest.fixture(scope="module")
def familiar_model(model, frames):
    """The model with domain statistics that put about half the video's frames outside."""
    familiar = CRNN(TINY).eval()
    familiar.load_state_dict(model.state_dict())
    familiar.domain = half_outside_domain(model, frames)
    return familiar


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stride=st.integers(1, 5),
    step=st.integers(1, 2),
    smooth=st.integers(1, 4),
    per_class=st.booleans(),
    domain=st.sampled_from(["flag", "suppress"]),
    chunks=st.lists(st.integers(1, 9), max_size=8),
)
def test_stream_domain_flags_and_suppression_equal_offline_detection(
    familiar_model, frames, folder, stride, step, smooth, per_class, domain, chunks
):
    config = DetectConfig(
        stride=stride,
        step=step,
        smooth=smooth,
        min_frames=1,
        per_class=per_class,
        batch_size=5,
        domain=domain,
    )
    config = thresholds(familiar_model, folder, config, 0.2, 0.6)
    offline = detect(familiar_model, folder, config)
    assert 0 < offline.domain["windows_outside"] < offline.domain["windows"]
    alerts, decisions, _ = stream(familiar_model, frames, config, chunks)
    ended = sorted(
        (a.event for a in alerts if a.kind == "ended"), key=lambda e: (e.start_frame, e.class_name)
    )
    assert_same_events(as_tuples(ended), as_tuples(offline.events))
    assert [e.out_of_domain for e in ended] == pytest.approx(
        [e.out_of_domain for e in offline.events]
    )
    assert all(e.out_of_domain is not None for e in ended)
    if domain == "suppress":
        assert all(e.out_of_domain == 0 for e in ended)
    np.testing.assert_allclose(
        [d.domain_score for d in decisions], offline.window_domain, rtol=1e-5
    )
