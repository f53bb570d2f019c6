"""The domain check (vadx.detect.domain) and the model's own preprocessing on every path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.covariance import LedoitWolf

from tests.conftest import TINY, run_cli
from tests.videos import bikes_mp4
from vadx.data import VideoDataset
from vadx.data.layouts import folder_samples
from vadx.data.synth import SynthConfig, generate, render_long
from vadx.detect import DetectConfig, detect, video_features
from vadx.detect.domain import (
    DOMAIN_FILE,
    domain_summary,
    fit_domain,
    save_domain,
    verdict_line,
)
from vadx.detect.files import write_detection
from vadx.errors import CheckpointError, InputError
from vadx.explain import explain
from vadx.explanations.video import ExplainSettings, explain_video
from vadx.models import CRNN, CRNNConfig, load_model, save_model
from vadx.train.session import train_from_path
from vadx.video import Augment, VideoReader, fit_frames, frames_to_clip, write_mp4


def features(seed: int, clips: int, steps: int = 3, size: int = 5, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(size, size))
    return rng.normal(size=(clips, steps, size)) @ mixing + shift


# ----------------------------------------------------------------------------- statistics
def test_one_class_distance_is_sklearns_ledoit_wolf_mahalanobis():
    train, probe = features(0, 40), features(1, 6).reshape(-1, 5)
    stats = fit_domain(train, None, features(2, 10))
    reference = LedoitWolf().fit(train.reshape(-1, 5))
    expected = np.sqrt(reference.mahalanobis(probe))
    np.testing.assert_allclose(stats.frame_distances(probe), expected, rtol=1e-4)


def test_class_conditional_distance_is_to_the_nearest_class_mean():
    train = np.concatenate([features(0, 20), features(0, 20, shift=8.0)])
    labels = np.repeat([0, 1], 20)
    stats = fit_domain(train, labels, features(2, 10))
    frames, frame_labels = train.reshape(-1, 5), np.repeat(labels, 3)
    means = np.stack([frames[frame_labels == k].mean(0) for k in (0, 1)])
    covariance = LedoitWolf(assume_centered=True).fit(frames - means[frame_labels]).covariance_
    precision = np.linalg.inv(covariance)
    probe = np.array([means[0], means[1], means[1] + 3.0, (means[0] + means[1]) / 2])
    per_class = [np.sqrt(np.einsum("nf,fg,ng->n", probe - m, precision, probe - m)) for m in means]
    np.testing.assert_allclose(
        stats.frame_distances(probe), np.minimum(*per_class), rtol=1e-4, atol=1e-4
    )
    assert stats.frame_distances(probe)[:2] == pytest.approx([0, 0], abs=1e-3)


def test_threshold_is_the_percentile_of_the_calibration_windows():
    calibration = features(3, 50)
    stats = fit_domain(features(0, 40), None, calibration, percentile=90)
    windows = stats.frame_distances(calibration).mean(-1)
    assert stats.threshold == pytest.approx(np.percentile(windows, 90))
    assert stats.windows == 50 and stats.frames == 120
    assert stats.calibration["p100"] == pytest.approx(windows.max())
    assert (stats.scores(windows) > 1).mean() == pytest.approx(0.1)


def test_far_features_score_above_one_and_near_ones_below():
    stats = fit_domain(features(0, 200), None, features(1, 100))
    inside = stats.scores(stats.frame_distances(features(4, 30)).mean(-1))
    outside = stats.scores(stats.frame_distances(features(4, 30, shift=6.0)).mean(-1))
    assert np.median(inside) < 1 < outside.min()


def test_constant_features_do_not_break_the_fit():
    train = features(0, 20)
    train[..., 2] = 7.0  # a dead channel: zero variance
    stats = fit_domain(train, None, features(1, 4))
    assert np.isfinite(stats.frame_distances(features(2, 3))).all()


def test_fit_domain_refuses_bad_input():
    with pytest.raises(InputError, match="at least two clips"):
        fit_domain(features(0, 1), None, features(1, 2))
    with pytest.raises(InputError, match="percentile"):
        fit_domain(features(0, 4), None, features(1, 2), percentile=0)
    stats = fit_domain(features(0, 4), None, features(1, 2))
    with pytest.raises(InputError, match="another model"):
        stats.frame_distances(np.zeros((2, 7)))


def test_summary_and_verdict():
    summary = domain_summary(np.array([0.5, 2.0, 3.0]), 7.0)
    assert summary == {
        "checked": True,
        "verdict": "outside",
        "threshold": 7.0,
        "windows": 3,
        "windows_outside": 2,
        "share_outside": pytest.approx(2 / 3),
        "median_score": 2.0,
        "max_score": 3.0,
    }
    assert "67% of the windows (2 of 3)" in verdict_line(summary)
    assert domain_summary(np.array([0.5, 1.0]), 7.0)["verdict"] == "inside"
    assert verdict_line(domain_summary(np.array([0.5, 1.0]), 7.0)) is None
    assert domain_summary(np.array([0.5, 0.5, 1.5]), 7.0)["verdict"] == "partly outside"
    assert domain_summary(None, None) == {"checked": False, "verdict": "unchecked"}


# ----------------------------------------------------------------------------- checkpoint
def tiny_stats(model: CRNN):
    size = model.feature_size
    return fit_domain(features(0, 10, size=size), None, features(1, 4, size=size))


def test_statistics_travel_with_the_checkpoint_and_are_checked(tmp_path):
    torch.manual_seed(0)
    model = CRNN(TINY)
    path = save_model(model, tmp_path / "m")
    assert load_model(path).domain is None
    before = load_model(path).checkpoint.model_id
    stats = tiny_stats(model)
    save_domain(path, stats)
    loaded = load_model(path)
    assert loaded.checkpoint.model_id == before
    np.testing.assert_array_equal(loaded.domain.whitening, stats.whitening)
    assert loaded.domain.threshold == stats.threshold
    # changed statistics are refused
    data = (path / DOMAIN_FILE).read_bytes()
    (path / DOMAIN_FILE).write_bytes(data[:-4] + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="was changed; recompute it: vadx calibrate"):
        load_model(path)
    # statistics of other weights are refused
    save_domain(path, stats)
    config = json.loads((path / "config.json").read_text())
    config["domain"]["weights_sha256"] = "0" * 64
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="computed for other weights"):
        load_model(path)
    # saving new weights drops the old statistics: stale ones cannot survive
    save_model(model, path)
    assert load_model(path).domain is None and not (path / DOMAIN_FILE).exists()


def test_checkpoints_without_a_fit_were_letterboxed(tmp_path):
    path = save_model(CRNN(TINY.replace(fit="stretch")), tmp_path / "m")
    assert load_model(path).config.fit == "stretch"
    config = json.loads((path / "config.json").read_text())
    del config["model"]["preprocessing"]["fit"]
    (path / "config.json").write_text(json.dumps(config))
    assert load_model(path).config.fit == "pad"
    with pytest.raises(Exception, match="fit must be one of pad, crop, stretch"):
        CRNNConfig(fit="squash")


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained with ``fit="stretch"`` (statistics added by training), synthetic
    data, a synthetic long video and real footage (bikes.mp4)."""
    root = tmp_path_factory.mktemp("domain")
    generate(root / "data", SynthConfig(clips=(4, 3, 0), num_frames=16, size=(48, 64), seed=5))
    result = train_from_path(
        root / "data",
        root / "run",
        "cpu-scratch",
        model_changes={"num_frames": 4, "frame_size": (32, 32), "fit": "stretch"},
        train_changes={"epochs": 2, "workers": 0},
    )
    long = render_long(2, [("normal", 20), ("fire", 20), ("normal", 20)], (48, 64))
    synthetic = write_mp4(root / "long.mp4", long.frames, fps=10)
    return root, result.best, synthetic


def test_training_stores_the_fit_and_the_domain_statistics(trained):
    _, best, _ = trained
    model = load_model(best)
    assert model.config.fit == "stretch"
    assert model.domain is not None and model.domain.feature_size == model.feature_size
    document = json.loads((best / "config.json").read_text())
    assert document["model"]["preprocessing"]["fit"] == "stretch"
    assert document["domain"]["frames"] == 4 * 4 * 4  # 4 train clips × 4 classes × 4 frames
    assert document["domain"]["windows"] == 3 * 4


def test_the_threshold_is_set_on_the_windows_detection_cuts_from_validation_videos(trained):
    root, best, _ = trained
    model = load_model(best)
    samples, _ = folder_samples(root / "data", model.class_names, "val")
    distances = np.concatenate(
        [
            detect(model, s.source, DetectConfig(on=1, off=1)).window_domain
            * model.domain.threshold
            for s in samples
        ]
    )
    assert len(distances) == model.domain.windows
    assert model.domain.threshold == pytest.approx(np.percentile(distances, 99.5), rel=1e-5)


def test_detection_and_explanation_see_frames_as_training_did(trained, tmp_path):
    _, best, _ = trained
    model = load_model(best)
    with VideoReader(bikes_mp4()) as video:
        indices = np.arange(0, 40, 10)
        got = video_features(model, video, indices)
        frames = video.read(indices).data
    assert frames.shape[1] != frames.shape[2]  # not square: pad and stretch differ
    for fit, equal in (("stretch", True), ("pad", False)):
        fitted = fit_frames(frames, model.config.frame_size, fit)[0]
        clip = frames_to_clip(fitted, model.config.mean, model.config.std)[None]
        with torch.no_grad():
            expected = model.frame_features(clip)[0].numpy()
        assert np.allclose(got, expected, atol=1e-5) == equal
    settings = ExplainSettings(methods=("gradcam",), temporal=(), timeline=False)
    explain_video(model, bikes_mp4(), tmp_path, settings, start=0, end=30)
    report = (tmp_path / "report.html").read_text()
    assert 'id="domain"' in report
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["preprocessing"] == {"fit": "stretch", "picture_share": 1.0}
    assert summary_clip_domain(tmp_path)["checked"]
    assert manifest["maps"]["gradcam"]["off_picture_share"] == [0.0]


def test_real_footage_is_flagged_and_its_alerts_can_be_suppressed(trained, tmp_path):
    _, best, synthetic = trained
    model = load_model(best)
    every = {"on": 1e-6, "off": 1e-6, "min_frames": 1, "step": 1}  # any score but 0 alerts
    real = detect(model, bikes_mp4(), DetectConfig(**every))
    familiar = detect(model, synthetic, DetectConfig(**every))
    assert real.domain["checked"] and familiar.domain["checked"]
    assert real.domain["median_score"] > familiar.domain["median_score"]
    assert real.domain["share_outside"] > familiar.domain["share_outside"]
    assert real.frame_domain.shape == (real.info.num_frames,)
    flagged = [e for e in real.events if e.out_of_domain]
    assert flagged and all(0 < e.out_of_domain <= 1 for e in flagged)
    suppressed = detect(model, bikes_mp4(), DetectConfig(**every, domain="suppress"))
    assert all(e.out_of_domain == 0 for e in suppressed.events)
    assert suppressed.events and not any(
        suppressed.outside_domain[e.start_frame : e.end_frame + 1].any() for e in suppressed.events
    )
    unchecked = detect(model, bikes_mp4(), DetectConfig(**every, domain="off"))
    assert unchecked.domain == {"checked": False, "verdict": "unchecked"}
    assert unchecked.events[0].out_of_domain is None
    write_detection(tmp_path, real, bikes_mp4(), annotate=False)
    document = json.loads((tmp_path / "events.json").read_text())
    assert document["domain"]["windows_outside"] == real.domain["windows_outside"]
    header, first = (tmp_path / "scores.csv").read_text().splitlines()[:2]
    assert header.endswith("event,domain_score,out_of_domain")
    assert float(first.split(",")[-2]) == pytest.approx(real.frame_domain[0], abs=1e-3)


def test_cli_calibrate_adds_statistics_and_detect_reports_them(trained, tmp_path, capsys):
    root, best, _ = trained
    trained = load_model(best)  # the same weights and metadata, no statistics
    plain = save_model(trained, tmp_path / "plain", metadata=trained.checkpoint.metadata)
    video = str(bikes_mp4())
    code, _, err = run_cli(
        ["detect", str(plain), video, "--out", str(tmp_path / "a"), "--no-annotate", "--step", "1"],
        capsys,
    )
    assert code == 0 and "no domain statistics" in err and f"vadx calibrate {plain}" in err
    code, _, err = run_cli(
        ["detect", str(plain), video, "--out", str(tmp_path / "b"), "--domain", "suppress"], capsys
    )
    assert code == 2 and err.startswith("error:") and "needs domain statistics" in err
    code, out, _ = run_cli(["calibrate", str(plain), str(root / "data")], capsys)
    assert code == 0 and "model id is unchanged" in out
    assert load_model(plain).domain.threshold == pytest.approx(load_model(best).domain.threshold)
    code, out, err = run_cli(
        ["detect", str(plain), video, "--out", str(tmp_path / "c"), "--no-annotate", "--step", "1"],
        capsys,
    )
    assert code == 0 and "in domain" in out and "no domain statistics" not in err
    code, _, err = run_cli(
        ["detect", str(plain), video, "--out", str(tmp_path / "d"), "--domain", "maybe"], capsys
    )
    assert code == 2 and "domain must be flag, suppress, off" in err
    for argv, message in [
        ([str(plain), video], "is a video, not a dataset"),
        ([str(plain), str(tmp_path / "missing")], "dataset not found"),
        (
            [str(plain), str(root / "data"), "--percentile", "0"],
            "'--percentile': must be a finite number from 0.1 to 100",
        ),
        ([str(tmp_path / "nothing"), str(root / "data")], "no checkpoint at"),
    ]:
        code, _, err = run_cli(["calibrate", *argv], capsys)
        assert code == 2 and err.startswith("error:") and message in err, err
        assert "Traceback" not in err


def test_dataset_items_say_where_the_picture_is(trained):
    root, _, _ = trained
    samples, classes = folder_samples(root / "data", None, "val")  # 64×48 frames
    letterboxed = VideoDataset(samples, classes, num_frames=4, frame_size=(32, 32), fit="pad")
    picture = letterboxed[0].picture.numpy()
    assert picture.shape == (32, 32) and picture[4:28].all() and not picture[:4].any()
    assert not picture[28:].any()
    stretched = VideoDataset(samples, classes, num_frames=4, frame_size=(32, 32), fit="stretch")
    assert stretched[0].picture.all()
    augmented = VideoDataset(samples, classes, num_frames=4, frame_size=(32, 32), augment=Augment())
    assert augmented[0].picture is None


def test_display_maps_stay_on_the_picture():
    torch.manual_seed(0)
    model = CRNN(TINY).eval()
    frames = np.random.default_rng(0).integers(0, 255, (4, 20, 64, 3), np.uint8)
    fitted, geometry, _ = fit_frames(frames, (32, 32), "pad")
    picture = geometry.picture()
    assert picture.sum() == 10 * 32 and picture[:11].sum() == 0 and picture[21:].sum() == 0
    clip = frames_to_clip(fitted, model.config.mean, model.config.std)[None]
    e = explain(
        model,
        clip,
        methods=("gradcam", "saliency"),
        temporal=(),
        picture=torch.from_numpy(picture)[None],
    )
    plain = explain(model, clip, methods=("gradcam", "saliency"), temporal=())
    for name in ("gradcam", "saliency"):
        shown = e[name].display[0]
        assert shown[:, ~picture].max() == 0 and shown[:, picture].max() == pytest.approx(1)
        magnitude = plain[name].display[0]  # one scale for the whole clip: shares are kept
        expected = magnitude[:, ~picture].sum() / magnitude.sum()
        assert e[name].off_picture[0] == pytest.approx(expected, rel=1e-4)
    assert e.manifest()["maps"]["saliency"]["off_picture_share"][0] == pytest.approx(
        float(e["saliency"].off_picture[0]), abs=1e-6
    )


def summary_clip_domain(folder):
    (clip,) = json.loads((folder / "summary.json").read_text())["clips"]
    return clip["domain"]
