"""Each camera's normal learnt without labels (issue 31, first part): the statistics against
slow references, the calibration rule by hand, a normality model that finds a fight in a scene
it only ever saw quiet, its checkpoint round trip, and the commands end to end."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TINY, run_cli, tiny_checkpoint
from tests.test_reliability import assert_one_error_line
from vadx.data.synth import render_long
from vadx.detect import Event
from vadx.errors import CheckpointError, ConfigError, InputError
from vadx.models.backbones import build_backbone
from vadx.normality import (
    MARGIN,
    FrameRun,
    NormalityConfig,
    NormalityModel,
    calibrate,
    detect_unusual,
    false_alarm_rate,
    frame_roc_auc,
    frame_size_maps,
    learn_normal,
    load_normality,
    mahalanobis,
    pixel_roc_auc,
    pro_auc,
    save_normality,
    scale_values,
    unusual_probability,
    unusual_track,
)
from vadx.normality import learn as normality_learn
from vadx.normality import model as normality_model
from vadx.normality.learn import coreset, floored, inverted_file, neighbours
from vadx.normality.model import first_fine_layer, frame_batches, nearest, read_layer
from vadx.normality.update import update_normal
from vadx.settings import DetectConfig
from vadx.video import VideoReader, read_video, write_mp4

SIZE = (64, 64)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A street the model learns quiet (80 frames), then the same street with a fight."""
    root = tmp_path_factory.mktemp("normal")
    quiet = render_long(3, [("normal", 80)], SIZE)
    mixed = render_long(3, [("normal", 30), ("fight", 40)], SIZE)
    write_mp4(root / "quiet.mp4", quiet.frames, fps=10)
    write_mp4(root / "mixed.mp4", mixed.frames, fps=10)
    fight = mixed.masks.reshape(len(mixed.masks), -1).any(axis=1)
    return root, fight


@pytest.fixture(scope="module")
def learnt(scene):
    root, _ = scene
    torch.manual_seed(0)
    backbone = build_backbone("vgg19", **TINY.backbone_args)
    # the layer: the last at stride 8 (the default, the first, is chosen for ImageNet weights
    # on real footage; in this untrained tiny VGG it also flags the new clip's people)
    config = NormalityConfig(
        "vgg19",
        dict(TINY.backbone_args),
        "block4_conv4",
        appearance="gaussian",
        frame_size=SIZE,
        channels=8,
    )
    # PaDiM's per-location statistics: the fight is found where and when it is (the default
    # neighbourhood also flags the new clip's people in frames 30-45, before the fight; so
    # does a memory of this untrained network's features: ``remembered``)
    plain = {"neighbourhood": 0, "shrinkage": 0.0, "spread_floor": 0.0}
    return learn_normal(backbone, [root / "quiet.mp4"], config, holdout=0.25, **plain)


def test_the_distance_is_mahalanobis_per_location():
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(3, 5, 4, generator=generator)
    mean = torch.randn(5, 4, generator=generator)
    a = torch.randn(5, 4, 4, generator=generator)
    precision = a @ a.transpose(1, 2) + torch.eye(4)
    fast = mahalanobis(features, mean, precision)
    for n in range(3):
        for location in range(5):
            d = (features[n, location] - mean[location]).double()
            slow = float(torch.sqrt(d @ precision[location].double() @ d))
            assert fast[n, location].item() == pytest.approx(slow, rel=1e-5)


class ScoresAsGrey:
    """A stand-in normality model whose frame score is the frame's grey level."""

    def __init__(self, sharpness: float = 1.0) -> None:
        self.config = NormalityConfig(sharpness=sharpness)

    def video_maps(self, video, start, stop, progress=None, stage=""):
        for frames, _, _ in frame_batches(video, start, stop):
            yield frames.mean(axis=(1, 2, 3), dtype=np.float64)[:, None, None]

    def frame_scores(self, maps):
        return maps.reshape(len(maps), -1).max(axis=1)


def grey_footage(folder: Path, levels) -> Path:
    """An image folder (25 fps) whose frames are flat at ``levels``."""
    import cv2

    folder.mkdir()
    for index, level in enumerate(levels):
        cv2.imwrite(str(folder / f"{index:04d}.png"), np.full((8, 8, 3), level, np.uint8))
    return folder


@pytest.mark.parametrize(
    ("spike", "config", "sharpness", "expected"),
    [
        (4, DetectConfig(smooth=1), 1, 100.0),  # p = 100/(100+t) reaches 0.5 just below t=100
        (4, DetectConfig(smooth=1, on=0.8, off=0.5), 1, 25.0),  # 100/(100+t) ≥ 0.8 ⇔ t ≤ 25
        # 100⁸/(100⁸+t⁸) ≥ 0.8 ⇔ t ≤ 100 · 0.25^(1/8)
        (4, DetectConfig(smooth=1, on=0.8, off=0.5), 8, 100 * 0.25 ** (1 / 8)),
        (2, DetectConfig(smooth=1), 1, None),  # shorter than min_frames 3: never an alarm
    ],
)
def test_the_threshold_is_calibrated_as_detection_raises_alarms(
    tmp_path, spike, config, sharpness, expected
):
    # 20 frames fitted, then 20 held back (0.8 s): dark but for a spike of 4 frames at 200,
    # the one alarm 5000 an hour allows in 0.8 s, and a spike of ``spike`` frames at 100
    held_back = [0] * 2 + [200] * 4 + [0] * 2 + [100] * spike + [0] * (12 - spike)
    footage = grey_footage(tmp_path / "street", [0] * 20 + held_back)
    model = ScoresAsGrey(sharpness)
    threshold, measured = calibrate(model, [footage], 0.5, 5000.0, config)
    assert measured.held_back_alarms == 1 and measured.held_back_seconds == 0.8
    assert (measured.smooth, measured.on, measured.off, measured.min_frames) == (
        config.smooth, config.on, config.off, config.min_frames
    )  # fmt: skip
    if expected is None:  # the lowest threshold searched: the spike never holds it up
        assert threshold < 1
    else:
        assert threshold == pytest.approx(expected * (1 + MARGIN), rel=1e-5)
    # and detection at that threshold agrees: one event; just below it, the spike is another
    scores, times = np.array(held_back, float), np.arange(20) / 25
    assert len(unusual_track(scores, threshold, times, config, sharpness).events) == 1
    if expected is not None:
        below = threshold / (1 + 2 * MARGIN)
        _, event = unusual_track(scores, below, times, config, sharpness).events
        assert (event.start_frame, event.end_frame) == (8, 8 + spike - 1)
    # at 1 alarm an hour, 0.8 s allows none: the larger spike holds the threshold up too
    threshold, measured = calibrate(model, [footage], 0.5, 1.0, config)
    assert measured.held_back_alarms == 0
    if expected is not None:
        assert threshold == pytest.approx(2 * expected * (1 + MARGIN), rel=1e-5)


def test_the_threshold_keeps_the_footage_learnt_from_quiet_too(tmp_path):
    # the fitted share has a bright stretch the 0.8 s held back lacks: at 1 alarm an hour
    # (none in 1.6 s), the footage learnt from must not alarm on itself either
    fitted = [0] * 8 + [250] * 4 + [0] * 8
    held_back = [0] * 8 + [200] * 4 + [0] * 8
    footage = grey_footage(tmp_path / "street", fitted + held_back)
    config = DetectConfig(smooth=1)
    threshold, measured = calibrate(ScoresAsGrey(), [footage], 0.5, 1.0, config)
    assert threshold == pytest.approx(250 * (1 + MARGIN), rel=1e-5)
    assert (measured.held_back_alarms, measured.fitted_alarms) == (0, 0)
    assert measured.fitted_seconds == measured.held_back_seconds == 0.8
    # the held-back share alone would have put it at its own brightest
    quiet = grey_footage(tmp_path / "quiet", [0] * 20 + held_back)
    assert calibrate(ScoresAsGrey(), [quiet], 0.5, 1.0, config)[0] == pytest.approx(
        200 * (1 + MARGIN), rel=1e-5
    )


def test_the_probability_rises_with_the_sharpness_around_the_threshold():
    scores = np.array([0.0, 1.0, 2.0, 4.0])
    assert unusual_probability(scores, 2.0).tolist() == pytest.approx([0, 1 / 3, 0.5, 2 / 3])
    # 2⁸ = 256: a score half the threshold reads 1/257, twice it 256/257
    assert unusual_probability(scores, 2.0, 8).tolist() == pytest.approx(
        [0, 1 / 257, 0.5, 256 / 257]
    )
    with pytest.raises(ConfigError, match="sharpness must be above 0"):
        NormalityConfig(sharpness=0)


def test_the_threshold_keeps_the_held_back_footage_within_its_alarm_rate(learnt):
    c = learnt.calibration
    assert c["held_back_seconds"] == pytest.approx(2.0)  # the last quarter of 8 s
    assert c["held_back_alarms"] == 0  # 1 alarm/hour allows none in 2 s
    assert learnt.grid == (8, 8) and learnt.mean.shape == (64, 8)
    assert learnt.memory.numel() == 0  # a Gaussian model keeps no memory


def test_a_fight_in_a_street_learnt_quiet_is_unusual(scene, learnt):
    root, fight = scene
    scores, maps = learnt.scores(root / "mixed.mp4")
    assert maps.shape == (70, 8, 8)
    by_scale = scale_values(maps, learnt.config.scales) / learnt.scale_units.double().numpy()
    assert np.array_equal(scores, by_scale.max(axis=1))
    assert scores[fight].mean() > 3 * scores[~fight].mean()
    detection = detect_unusual(learnt, root / "mixed.mp4")
    assert detection.class_names == ("unusual", "normal")
    (event,) = detection.events
    first, last = np.flatnonzero(fight)[[0, -1]]
    early = DetectConfig().smooth // 2  # the centred moving average starts it a little early
    assert first - early <= event.start_frame <= last and event.class_name == "unusual"
    quiet = detect_unusual(learnt, root / "quiet.mp4")
    assert quiet.events == []  # its own footage raises nothing


def test_a_saved_model_gives_the_same_maps_and_refuses_a_changed_file(scene, learnt, tmp_path):
    root, _ = scene
    path = save_normality(learnt, tmp_path / "cam")
    loaded = load_normality(path)
    before, after = learnt.scores(root / "mixed.mp4")[1], loaded.scores(root / "mixed.mp4")[1]
    assert np.abs(before - after).max() < 1e-4  # float32 sums in another order
    document = json.loads((path / "config.json").read_text())
    assert document["format"] == "vadx-normality" and document["footage"][0]["sha256"]
    assert loaded.model_id == "sha256:" + document["weights"]["sha256"][:16]
    weights = path / "normality.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"xxxx")
    with pytest.raises(CheckpointError, match="corrupt or was changed"):
        load_normality(path)


def test_learn_normal_and_detect_from_the_command_line(scene, tmp_path, capsys):
    root, fight = scene
    source = tiny_checkpoint(tmp_path / "classifier")  # its CNN and preprocessing
    argv = ["learn-normal", str(source), str(root / "quiet.mp4"), "--out", str(tmp_path / "cam")]
    settings = ["--channels", "8", "--size", "64", "--frame-step", "1"]  # every frame: its
    # 16 held-back frames calibrate (at 2, 8 analysed frames make too low a threshold)
    code, out, err = run_cli([*argv, *settings], capsys)
    assert code == 0, err
    assert "threshold" in out and (tmp_path / "cam" / "normality.safetensors").is_file()
    code, out, err = run_cli(["info", str(tmp_path / "cam"), "--json"], capsys)
    described = json.loads(out)
    assert code == 0 and described["kind"] == "normality" and described["grid"] == [8, 8]
    assert described["footage"][0]["path"].endswith("quiet.mp4")
    argv = ["detect", str(tmp_path / "cam"), str(root / "mixed.mp4"), "--out", str(tmp_path / "d")]
    code, out, err = run_cli(argv, capsys)
    assert code == 0 and "calibrated" not in err, err
    events = json.loads((tmp_path / "d" / "events.json").read_text())
    assert [e["class_name"] for e in events["events"]] == ["unusual"]
    with VideoReader(tmp_path / "d" / "unusual.mp4") as maps_video:  # the maps over the frames
        assert maps_video.info.num_frames == 70 and maps_video.info.width == 64
        shown = maps_video.read(np.arange(70)).data.astype(int)
    with VideoReader(root / "mixed.mp4") as source:
        plain = source.read(np.arange(70)).data.astype(int)
    # how much of each frame the map colours (beyond the codec's noise of a few levels)
    coloured = (np.abs(shown - plain).max(axis=3) > 40).mean(axis=(1, 2))
    assert coloured[fight].mean() > 3 * coloured[~fight].mean()
    assert events["settings"]["runtime"] == "normality"
    archive = tmp_path / "archive"  # a camera's archive: a batch, one folder per video
    archive.mkdir()
    for name in ("quiet.mp4", "mixed.mp4"):
        (archive / name).write_bytes((root / name).read_bytes())
    batch = [*argv[:2], str(archive), "--out", str(tmp_path / "b")]
    code, out, err = run_cli(batch, capsys)
    assert code == 0, err
    assert "2 processed now" in out and "1 event(s) in 1 video(s)" in out
    for name in ("quiet.mp4", "mixed.mp4"):
        assert (tmp_path / "b" / "videos" / name / "unusual.mp4").is_file()
    code, out, err = run_cli(batch, capsys)  # again: nothing to redo
    assert code == 0 and "0 processed now, 2 already complete" in out
    # detection settings other than the calibration's: the rate measured no longer holds
    code, out, err = run_cli([*batch, "--on", "0.6", "--min-frames", "5"], capsys)
    assert code == 0 and "note: the model's threshold was calibrated with --on 0.5, " in err
    assert "--min-frames 3: with other settings its false-alarm rate" in err


def test_a_backbone_without_weights_says_what_to_give(scene, tmp_path, capsys):
    root, _ = scene
    argv = ["learn-normal", "vgg19", str(root / "quiet.mp4"), "--out", str(tmp_path / "cam")]
    code, _, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, "--weights are needed for vgg19")
    assert not (tmp_path / "cam").exists()


def test_the_docs_python_example_runs(tmp_path, monkeypatch):
    # 30 s of a quiet street (its last 6 s held back: 30 frames analysed, every second)
    quiet = write_mp4(tmp_path / "quiet.mp4", render_long(4, [("normal", 300)], SIZE).frames, 10)
    page = (Path(__file__).parents[1] / "docs" / "normality.md").read_text(encoding="utf-8")
    block = page.split("```python\n")[1].split("```")[0]
    for name in ("cam3-monday.mp4", "cam3-today.mp4"):
        block = block.replace(name, str(quiet))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "docs/normality.md", "exec"), namespace)
    found, model = namespace["found"], namespace["model"]
    assert namespace["maps"].shape == (300, 20, 20) and found.class_names == ("unusual", "normal")
    assert model.config.frame_size == (160, 160) and model.config.frame_step == 2
    assert np.allclose(found.anomaly_score, model.probability(namespace["scores"]))


@pytest.mark.parametrize("step", [1, 3])
def test_a_live_stream_and_a_console_camera_find_the_events_of_detect(scene, learnt, step):
    """The normality model live (issue 31): frames pushed in chunks to an UnusualStream, and
    a console camera, give the events of detect_unusual on the same video, whether the model
    analyses every frame or every third."""
    from vadx.console.cameras import CameraConfig
    from vadx.console.engine import CameraHub
    from vadx.watch import FrameInfo
    from vadx.watch.unusual import UnusualStream

    learnt = dataclasses.replace(learnt, config=dataclasses.replace(learnt.config, frame_step=step))
    root, _ = scene
    video = root / "mixed.mp4"
    expected = [
        (e.start_frame, e.end_frame, e.class_name) for e in detect_unusual(learnt, video).events
    ]
    assert expected  # the fight
    with VideoReader(video) as reader:
        frames = reader.read(np.arange(reader.info.num_frames)).data
        times = reader.timestamps
    alerts = []
    stream = UnusualStream(learnt, on_alert=alerts.append, keep_clips=True)
    for first in range(0, len(frames), 7):  # chunks of 7, as a capture delivers them
        chunk = range(first, min(first + 7, len(frames)))
        stream.push_many([frames[i] for i in chunk], [FrameInfo.now(i, times[i]) for i in chunk])
    stream.end_segment()
    ended = [
        (a.event.start_frame, a.event.end_frame, a.event.class_name)
        for a in alerts
        if a.kind == "ended"
    ]
    assert ended == expected
    started = next(a for a in alerts if a.kind == "started")
    assert started.window is not None and started.window_frames[0] == expected[0][0]
    found = []
    camera = CameraConfig(name="street", source=str(video), model="normal", pace=False)
    hub = CameraHub(
        [camera],
        load=lambda _: learnt,
        on_alert=lambda name, a: found.append(a) if a.kind == "ended" else None,
    )
    hub.run_to_end(timeout=60)
    hub.close()
    assert spans(a.event for a in found) == expected


def spans(events) -> list[tuple[int, int, str]]:
    return [(e.start_frame, e.end_frame, e.class_name) for e in events]


def test_vadx_watch_takes_a_normality_model(scene, learnt, tmp_path, capsys):
    root, _ = scene
    model = save_normality(learnt, tmp_path / "cam")
    out = tmp_path / "w"
    code, _, err = run_cli(
        ["watch", str(model), str(root / "mixed.mp4"), "--out", str(out)], capsys
    )
    assert code == 0, err
    lines = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    ended = [(r["start_frame"], r["end_frame"], r["class"]) for r in lines if r["state"] == "ended"]
    assert ended == spans(detect_unusual(learnt, root / "mixed.mp4").events)
    # its maps are the explanation: each alert keeps them over its frames, nothing to explain
    explained = [r["explanation"] for r in lines if r["state"] == "explained"]
    assert len(explained) == len(ended) and all((out / e / "map.mp4").is_file() for e in explained)


def test_vadx_serve_takes_a_normality_model(scene, learnt, tmp_path):
    """The uploads' API with a camera's normal: described as such, its detection gives the
    events of detect_unusual and draws its maps over the video (unusual.mp4), and an explain
    job is refused with the reason."""
    from fastapi.testclient import TestClient

    from vadx.serve import Server, create_app, load_models

    root, _ = scene
    saved = save_normality(learnt, tmp_path / "street-normal")
    server = Server(load_models([saved]), tmp_path / "data")
    client = TestClient(create_app(server))
    try:
        (described,) = client.get("/api/models").json()
        assert (described["name"], described["kind"], described["frames"]) == (
            "street-normal",
            "normality",
            1,
        )
        assert described["classes"] == ["unusual", "normal"] and described["normal"] == "normal"
        with open(root / "mixed.mp4", "rb") as fh:
            video = client.post("/api/videos", files={"file": ("mixed.mp4", fh)}).json()
        job = client.post("/api/jobs", json={"kind": "detect", "video": video["id"]}).json()
        deadline = time.monotonic() + 60
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.05)
            job = client.get(f"/api/jobs/{job['id']}").json()
        assert job["state"] == "done", job
        expected = detect_unusual(learnt, root / "mixed.mp4").events
        assert expected and spans(Event(**e) for e in job["result"]["events"]) == spans(expected)
        assert "unusual.mp4" in job["files"] and job["result"]["domain"]["message"] is None
        drawn = client.get(f"/api/jobs/{job['id']}/files/unusual.mp4")
        assert drawn.status_code == 200
        (tmp_path / "unusual.mp4").write_bytes(drawn.content)
        with VideoReader(tmp_path / "unusual.mp4") as reader, VideoReader(root / "mixed.mp4") as v:
            assert reader.info.num_frames == v.info.num_frames
        refused = client.post(
            "/api/jobs", json={"kind": "explain", "video": video["id"], "start": 0, "end": 30}
        )
        assert refused.status_code == 400 and set(refused.json()) == {"error"}
        assert "normality model: its anomaly maps come with its detection" in refused.text
    finally:
        server.jobs.close()


def test_the_uploads_page_plays_a_normality_models_map_over_the_video(scene, learnt, tmp_path):
    """In Chromium: with a camera's normal, the detection plays unusual.mp4 (the map over the
    video) with a note saying so, and offers no explanation job."""
    from tests.test_serve_browser import CHROMIUM, browsing, wait_until
    from vadx.serve import Server, load_models, serving

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    root, _ = scene
    server = Server(load_models([save_normality(learnt, tmp_path / "street")]), tmp_path / "d")
    try:
        with serving(server) as url, browsing(url) as (page, errors, outside):
            page.goto(url)
            page.wait_for_selector("#model option", state="attached")
            assert "a camera's normal" in page.text_content("#model option")
            page.set_input_files("#file", str(root / "mixed.mp4"))
            page.click("#upload")
            page.wait_for_selector("#timeline-section:not([hidden])", timeout=60_000)
            wait_until(page, "document.querySelector('#player').src.includes('unusual.mp4')")
            wait_until(page, "document.querySelector('#player').readyState >= 1")
            assert page.locator("#map-note").is_visible()
            assert page.locator("#explain-here").is_hidden()
            rows = page.locator("#events tbody tr")
            assert rows.count() == len(detect_unusual(learnt, root / "mixed.mp4").events) >= 1
            assert page.locator("#events tbody tr button").count() == 0
            assert errors == [] and outside == []
    finally:
        server.jobs.close()


def test_learn_normal_records_a_live_camera_then_learns(scene, tmp_path, capsys):
    """`vadx learn-normal SOURCE tcp://… --record-minutes M`: the stream's packets copied for
    M minutes into a file kept beside the model (its fingerprint recorded), then learnt from
    as any footage; a live source without a duration, and a stream that ends too soon, are one
    error line each."""
    from tests.streams import free_port, tcp_server
    from vadx.video import video_sha256

    root, _ = scene
    source = tiny_checkpoint(tmp_path / "classifier")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    out = tmp_path / "cam"
    argv = ["learn-normal", str(source), url, "--out", str(out), "--channels", "8", "--size", "64"]
    code, _, err = run_cli(argv, capsys)  # no duration: nothing is opened
    assert code == 2 and "give --record-minutes" in err and err.count("\n") == 1
    with tcp_server(root / "quiet.mp4", port, realtime=True):  # 8 s of street at 10 fps
        code, printed, err = run_cli([*argv, "--record-minutes", "0.08"], capsys)
    assert code == 0, err
    (recorded,) = (tmp_path / "cam-footage").iterdir()
    assert recorded.suffix == ".mkv" and f"recorded 0.08 min of {url}" in printed
    with VideoReader(recorded) as reader:  # 4.8 s: 48 frames at the camera's 10 fps, as sent
        # (less the last few that needed a later frame to decode: the cut is on a packet)
        assert reader.info.fps == pytest.approx(10, rel=0.05) and 44 <= reader.info.num_frames <= 48
    model = load_normality(out)
    assert model.footage[0]["path"] == str(recorded)
    assert model.footage[0]["sha256"] == video_sha256(recorded)
    assert np.isfinite(model.threshold)
    port = free_port()  # a stream shorter than the stretch asked
    late = [*argv[:2], f"tcp://127.0.0.1:{port}", *argv[3:], "--record-minutes", "1"]
    with tcp_server(root / "quiet.mp4", port):  # as fast as it goes: 8 s of stream, then ends
        code, _, err = run_cli([*late, "--recordings", str(tmp_path / "late")], capsys)
    assert code == 2 and err.count("\n") == 1 and "ended after 7.9 s of the 60 s asked" in err
    assert list((tmp_path / "late").iterdir()) == []  # nothing half-written


def test_explain_draws_a_normality_models_own_maps_in_the_report(scene, learnt, tmp_path, capsys):
    """`vadx explain CAMERA_MODEL VIDEO`: report.html with the model's own maps (threshold
    units) in the classifier's player, the frames' scores as the curve; drawn in Chromium as
    vadx.render.overlay draws them."""
    import cv2

    from tests.test_report_browser import CHROMIUM, drawn
    from vadx.render.overlay import render

    root, _ = scene
    saved = save_normality(learnt, tmp_path / "street")
    out = tmp_path / "explained"
    code, printed, err = run_cli(
        ["explain", str(saved), str(root / "mixed.mp4"), "--out", str(out)], capsys
    )
    assert code == 0, err
    (event,) = detect_unusual(learnt, root / "mixed.mp4").events
    kept = np.load(out / "maps.npz")
    frames = kept["frames"]
    # the event's frames (at most 64), with the most unusual one
    assert frames[0] >= event.start_frame and frames[-1] <= event.end_frame
    assert len(frames) == min(64, event.end_frame - event.start_frame + 1)
    scores, maps = learnt.scores(root / "mixed.mp4")
    np.testing.assert_allclose(kept["maps"], maps[frames] / learnt.cell_unit(), atol=1e-6)
    np.testing.assert_allclose(kept["scores"], scores[frames] / learnt.threshold, atol=1e-6)
    peak = int(frames[np.argmax(kept["scores"])])
    assert f"most unusual frame {peak}" in printed and "report.html" in printed
    page = (out / "report.html").read_text()
    assert "these are the scores detection read" in page and "Frame Shapley" not in page
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "normality" and manifest["peak"]["frame"] == peak
    code, _, err = run_cli(
        [
            "explain",
            str(saved),
            str(root / "mixed.mp4"),
            "--out",
            str(tmp_path / "x"),
            "--start",
            "90",
        ],
        capsys,
    )
    assert code == 2 and "not inside the video's 70 frames" in err and err.count("\n") == 1
    if CHROMIUM is None:
        return
    from playwright.sync_api import sync_playwright

    with VideoReader(root / "mixed.mp4") as reader:
        source = reader.read(frames).data
    t = int(np.argmax(kept["scores"]))
    height, width = source.shape[1:3]
    shown = cv2.resize(kept["maps"][t], (width, height)).clip(0, 1)  # (stretch: frame = grid)
    expected = render(
        source[t],
        cv2.resize(cv2.resize(kept["maps"][t], (64, 64)), (width, height)).clip(0, 1),
        "heatmap",
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"file://{out / 'report.html'}")
            assert page.text_content("#verdict").strip().startswith("Unusual")
            assert page.locator("#importance polyline").count() == 1
            page.fill("#scrub", str(t))
            page.dispatch_event("#scrub", "input")
            canvas = drawn(page, "unusual", "heatmap", t).astype(int)
            assert canvas.shape == expected.shape
            difference = np.abs(canvas - expected.astype(int)).max(-1)
            assert np.mean(difference) < 8 and shown.max() > 0.5  # a map to see, drawn right
            assert errors == []
        finally:
            browser.close()


# ---------------------------------------------------------------- evaluation (issue 31 item 4)


def test_pro_by_hand():
    # one frame of 4 pixels: a region of two (scores 4 and 2), two normal ones (3 and 1)
    maps = np.array([[[4.0, 2.0, 3.0, 1.0]]])
    masks = np.array([[[True, True, False, False]]])
    # curve: (0, 0) → t=4 (0, ½) → t=3 (½, ½) → t=2 (½, 1) → t=1 (1, 1)
    assert pro_auc(maps, masks, max_fpr=1.0) == pytest.approx(0.5 / 2 + 0.5 * 1 / 2 + 0.5 / 2)
    # up to 0.3: flat at ½ after the jump; up to ½ exactly: the step at ½ adds nothing
    assert pro_auc(maps, masks, max_fpr=0.3) == pytest.approx(0.5)
    assert pro_auc(maps, masks, max_fpr=0.5) == pytest.approx(0.5)
    # the overlap is per region: a small region counts as much as a large one
    maps = np.array([[[9.0, 8.0, 7.0, 0.0, 1.0, 2.0]]])  # a region of 3 found, one of 1 missed
    masks = np.array([[[True, True, True, False, True, False]]])
    curve_at_zero = (1 / 3 + 1 / 3 + 1 / 3) / 2  # the big region found whole, the small not
    assert pro_auc(maps, masks, max_fpr=0.3) == pytest.approx(curve_at_zero)


def brute_pro(maps, masks, max_fpr):
    """PRO by its definition: each threshold's FPR and mean region overlap, then the area."""
    import cv2

    regions = []
    for t, mask in enumerate(masks):
        found, labelled = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        regions += [(t, labelled == r) for r in range(1, found)]
    points = [(0.0, 0.0)]
    for threshold in sorted(set(maps.ravel().tolist()), reverse=True):
        flagged = maps >= threshold
        fpr = flagged[~masks].mean()
        overlap = np.mean([flagged[t][region].mean() for t, region in regions])
        points.append((fpr, overlap))
    area = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 >= max_fpr:
            break
        if x1 > max_fpr:  # cut the segment at max_fpr
            y1, x1 = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0), max_fpr
        area += (x1 - x0) * (y0 + y1) / 2
    return area / max_fpr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pro_and_pixel_auc_match_their_definitions_with_ties(seed):
    rng = np.random.default_rng(seed)
    masks = np.zeros((3, 6, 7), bool)
    masks[0, 1:3, 1:3] = True
    masks[0, 4:6, 5:7] = True  # two regions in one frame
    masks[2, 2:5, 0:4] = True  # frame 1 is all normal
    maps = rng.integers(0, 6, masks.shape).astype(float) + 2 * masks  # ties on purpose
    for max_fpr in (0.05, 0.3, 1.0):
        assert pro_auc(maps, masks, max_fpr) == pytest.approx(brute_pro(maps, masks, max_fpr))
    # pixel ROC-AUC: the chance a planted pixel outscores a normal one, ties counting half
    pos, neg = maps[masks], maps[~masks]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert pixel_roc_auc(maps, masks) == pytest.approx(pairs)
    assert frame_roc_auc([3, 1, 2, 2], [True, False, True, False]) == pytest.approx(0.875)


def test_evaluation_refuses_what_it_cannot_score():
    with pytest.raises(InputError, match="both anomalous and normal"):
        frame_roc_auc([1, 2], [True, True])
    with pytest.raises(InputError, match="frame_size_maps"):
        pixel_roc_auc(np.zeros((2, 3, 3)), np.zeros((2, 6, 6), bool))
    maps = frame_size_maps(np.array([[[0.0, 1.0]]]), (2, 4))
    assert maps.shape == (1, 2, 4) and np.allclose(maps[0, 0], [0, 0.25, 0.75, 1])


def test_false_alarms_per_hour_with_their_upper_bound():
    none = false_alarm_rate(0, 1800)  # half an hour, no alarm
    assert (none.per_hour, none.hours) == (0.0, 0.5)
    assert none.upper_per_hour == pytest.approx(-np.log(0.05) / 0.5)  # 5.99 per hour
    two = false_alarm_rate(2, 7200)
    assert two.per_hour == 1.0 and two.upper_per_hour == pytest.approx(6.2958 / 2, rel=1e-4)


@pytest.mark.parametrize("step", [1, 2])
def test_fitting_frames_fit_every_kth_frame_exactly(scene, step):
    root, _ = scene
    torch.manual_seed(0)
    backbone = build_backbone("vgg19", **TINY.backbone_args)
    config = NormalityConfig(
        "vgg19",
        dict(TINY.backbone_args),
        appearance="gaussian",
        frame_size=SIZE,
        channels=8,
        frame_step=step,
    )
    # 60 frames fitted (80, a quarter held back); at most 20 → every 3rd: frames 0, 3, …, 57
    plain = {"neighbourhood": 0, "shrinkage": 0.0, "spread_floor": 0.0}  # PaDiM's statistics
    model = learn_normal(
        backbone, [root / "quiet.mp4"], config, holdout=0.25, fitting_frames=20, **plain
    )
    assert model.fitting == {"fitting_frames": 20, "frames": 20, "every": 3, **plain}
    frames = read_video(root / "quiet.mp4").data
    chosen = np.arange(0, 60, 3)
    features, grey = model.features(frames[chosen])
    f = features.double()
    mean = f.mean(0)
    covariance = torch.einsum("nld,nle->lde", f - mean, f - mean) / len(f)
    covariance += 0.01 * torch.eye(8, dtype=torch.float64)
    assert torch.allclose(model.mean.double(), mean, atol=1e-5)
    assert torch.allclose(model.precision.double(), torch.linalg.inv(covariance), rtol=1e-3)
    # motion: each chosen frame against the one ``step`` before it, as the model analyses
    # frames (frame 0 against itself)
    change = (grey - model.grey_cells(frames[np.maximum(chosen - step, 0)])).abs()
    assert torch.allclose(model.motion[0], change.mean(0), atol=1e-6)
    distances = mahalanobis(features, model.mean, model.precision)
    assert torch.allclose(model.appearance[0], distances.mean(0), atol=1e-4)
    # each scale's unit: the median of its values on the fitted frames' own maps
    unusual = ((distances - model.appearance[0]) / model.appearance[1]).clamp(min=0)
    unusual = torch.maximum(unusual, (change - model.motion[0]) / model.motion[1])
    values = scale_values(unusual.reshape(-1, 8, 8).numpy(), config.scales)
    expected = np.median(values, axis=0).clip(min=1e-3)
    assert np.allclose(model.scale_units.numpy(), expected, rtol=1e-3)
    saved = load_normality(save_normality(model, root / f"fitted-{step}"))
    assert saved.config.frame_step == step and torch.equal(saved.scale_units, model.scale_units)
    assert saved.fitting == {"fitting_frames": 20, "frames": 20, "every": 3, **plain}
    with pytest.raises(InputError, match="fitting_frames must be an integer from 2"):
        learn_normal(backbone, [root / "quiet.mp4"], config, fitting_frames=1)


def test_neighbourhood_shrinkage_and_floor_by_hand():
    # a 2×3 grid, one feature dimension: each cell's statistic is its index
    statistic = torch.arange(6, dtype=torch.float64)[:, None]
    pooled = neighbours(statistic, (2, 3), 1)[:, 0]
    # cell 0 (top left) sees cells 0, 1, 3, 4; cell 1 sees all six
    assert pooled.tolist() == pytest.approx([2.0, 2.5, 3.0, 2.0, 2.5, 3.0])
    assert torch.equal(neighbours(statistic, (2, 3), 0), statistic)
    assert neighbours(statistic, (2, 3), 40)[:, 0].tolist() == pytest.approx([2.5] * 6)
    spreads = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    assert floored(spreads, 0.5).tolist() == [2.0, 2.0, 2.0, 3.0, 4.0]
    assert floored(spreads, 0.0).tolist() == pytest.approx([1e-3, 1.0, 2.0, 3.0, 4.0])


def test_the_gaussians_pool_neighbours_and_shrink_exactly(scene):
    root, _ = scene
    torch.manual_seed(0)
    backbone = build_backbone("vgg19", **TINY.backbone_args)
    config = NormalityConfig(
        "vgg19", dict(TINY.backbone_args), appearance="gaussian", frame_size=SIZE, channels=8
    )
    model = learn_normal(
        backbone, [root / "quiet.mp4"], config, holdout=0.25, neighbourhood=1, shrinkage=0.5
    )
    features, _ = model.features(read_video(root / "quiet.mp4").data[:60])
    f = features.double()  # (60, 64 cells of an 8×8 grid, 8)
    location = 9  # row 1, column 1: its 3×3 neighbourhood is rows 0–2, columns 0–2
    cells = [row * 8 + column for row in range(3) for column in range(3)]
    samples = f[:, cells].reshape(-1, 8)
    mean = samples.mean(0)
    covariance = (samples - mean).T @ (samples - mean) / len(samples)
    covariance = 0.5 * covariance + 0.5 * covariance.diagonal().mean() * torch.eye(8)
    covariance += 0.01 * torch.eye(8, dtype=torch.float64)
    assert torch.allclose(model.mean[location].double(), mean, atol=1e-5)
    expected = torch.linalg.inv(covariance)
    assert torch.allclose(model.precision[location].double(), expected, rtol=1e-3, atol=1e-4)


def test_nearest_is_the_distance_to_the_closest_row_of_the_memory(monkeypatch):
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(3, 5, 4, generator=generator)
    memory = torch.randn(7, 4, generator=generator)
    fast = nearest(features, memory)
    for n in range(3):
        for location in range(5):
            cell = features[n, location].double()
            slow = min(float(torch.dist(cell, row.double())) for row in memory)
            assert fast[n, location].item() == pytest.approx(slow, rel=1e-4)
    monkeypatch.setattr(normality_model, "NEAREST_PRODUCTS", 28)  # 15 cells, 4 at once
    assert torch.equal(nearest(features, memory), fast)
    assert float(nearest(memory[None], memory).max()) < 1e-3  # each row is its own nearest


@pytest.mark.parametrize("seed", range(6))
def test_the_coreset_is_greedy_k_centre_within_twice_the_best_cover(seed, monkeypatch):
    points = torch.randn(9, 2, generator=torch.Generator().manual_seed(seed))
    chosen = coreset(points, 3, torch.Generator().manual_seed(seed))
    index = [int((points == row).all(1).nonzero()[0]) for row in chosen]
    assert len(set(index)) == 3
    for k in range(1, 3):  # each next row: the farthest from those chosen before it
        gaps = torch.cdist(points, points[index[:k]]).min(1).values
        assert float(gaps[index[k]]) == pytest.approx(float(gaps.max()), rel=1e-4)

    def cover(rows) -> float:
        return float(torch.cdist(points, rows).min(1).values.max())

    best = min(cover(points[list(c)]) for c in itertools.combinations(range(9), 3))
    assert best <= cover(chosen) <= 2 * best + 1e-5
    assert torch.equal(coreset(points, 9, torch.Generator()), points)  # as many: all kept
    monkeypatch.setattr(normality_learn, "MEMORY_POOL", 5)  # chosen among 5 rows drawn
    drawn = coreset(points, 20, torch.Generator().manual_seed(seed))
    assert len(drawn) == 5 and len({tuple(row.tolist()) for row in drawn}) == 5
    assert all(bool((points == row).all(1).any()) for row in drawn)


@pytest.mark.parametrize("seed", range(4))
def test_the_inverted_file_finds_every_row_and_never_underestimates(seed):
    generator = torch.Generator().manual_seed(seed)
    centres = 4 * torch.randn(12, 6, generator=generator)
    memory = centres[torch.arange(480) % 12] + torch.randn(480, 6, generator=generator)
    memory = coreset(memory, 240, generator)
    listed, centres, offsets = inverted_file(memory, 8)
    assert centres.shape == (8, 6) and offsets.tolist()[::8] == [0, 240]
    assert bool((offsets[1:] >= offsets[:-1]).all())
    # the same rows, each in the list of its nearest centre
    assert sorted(map(tuple, listed.tolist())) == sorted(map(tuple, memory.tolist()))
    for c in range(8):
        rows = listed[int(offsets[c]) : int(offsets[c + 1])]
        assert bool((normality_model.nearest_centres(rows, centres, 1)[:, 0] == c).all())
    # a row finds itself (to float32's |x|² - 2x·m + |m|² at norms near 100); a query is never
    # closer than its true nearest row
    assert float(nearest(listed, listed, centres, offsets, probes=1).max()) < 0.02
    queries = 4 * torch.randn(300, 6, generator=generator)
    exact = nearest(queries, listed)
    for probes in (1, 2, 4):
        probed = nearest(queries, listed, centres, offsets, probes=probes)
        assert bool((probed >= exact - 0.02).all())
    assert torch.allclose(nearest(queries, listed, centres, offsets, probes=8), exact)
    # fewer than 4 rows a list, or no lists asked: none
    assert inverted_file(memory[:31], 8)[1].numel() == 0
    assert inverted_file(memory, 0)[1].numel() == 0


def test_a_memory_model_reads_its_units_on_the_held_back_frames(scene):
    root, _ = scene
    torch.manual_seed(0)
    backbone = build_backbone("vgg19", **TINY.backbone_args)
    config = NormalityConfig(
        "vgg19", dict(TINY.backbone_args), "block4_conv4", frame_size=SIZE, channels=8
    )
    quiet = [root / "quiet.mp4"]
    whole = {"memory_size": 4000, "memory_lists": 0}  # every feature, searched whole
    model = learn_normal(backbone, quiet, config, holdout=0.25, spread_floor=0, **whole)
    frames = read_video(root / "quiet.mp4").data
    fitted, _ = model.features(frames[:60])
    # 60 frames fitted × 64 cells, fewer than 4000: the memory keeps them all
    assert torch.allclose(model.memory, fitted.flatten(0, 1), atol=1e-5)
    assert model.mean.numel() == 0 and model.precision.numel() == 0
    assert model.fitting["memory_size"] == 4000 and model.fitting["memory"] == 3840
    assert model.fitting["memory_lists"] == 0 and model.memory_centres.numel() == 0
    # the held-back quarter (frames 60-79), each against the frame 2 before it
    held, grey = model.features(frames[60:])
    distances = nearest(held, model.memory)
    assert torch.allclose(model.appearance[0], distances.mean(0), atol=1e-4)
    assert torch.allclose(model.appearance[1], floored(distances.std(0), 0.0), atol=1e-4)
    change = (grey - model.grey_cells(frames[58:78])).abs()
    unusual = ((distances - model.appearance[0]) / model.appearance[1]).clamp(min=0)
    unusual = torch.maximum(unusual, (change - model.motion[0]) / model.motion[1])
    values = scale_values(unusual.reshape(-1, 8, 8).numpy(), config.scales)
    expected = np.median(values, axis=0).clip(min=1e-3)
    assert np.allclose(model.scale_units.numpy(), expected, rtol=1e-3)
    # a smaller memory: that many of the fitted features
    stages = []
    small = learn_normal(
        backbone,
        quiet,
        config,
        holdout=0.25,
        memory_size=2000,
        progress=lambda stage, done, total: stages.append((stage, done, total)),
    )
    # progress through the fitted frames, then the held-back ones the units are read on
    assert ("fitting quiet.mp4", 60, 60) in stages and ("units quiet.mp4", 20, 20) in stages
    assert stages.index(("fitting quiet.mp4", 60, 60)) < stages.index(("units quiet.mp4", 20, 20))
    assert small.memory.shape == (2000, 8) and small.fitting["memory_size"] == 2000
    # in 32 lists by default, searched 4 at a time
    assert small.fitting["memory_lists"] == small.fitting["lists"] == 32
    assert small.memory_centres.shape == (32, 8) and small.memory_offsets[-1] == 2000
    gaps = torch.cdist(small.memory, model.memory).min(1).values
    assert float(gaps.max()) < 1e-3  # each a fitted feature (cdist in float32)


def test_a_memory_needs_two_held_back_frames_to_measure_its_units(tmp_path, capsys):
    short = write_mp4(tmp_path / "short.mp4", render_long(4, [("normal", 12)], SIZE).frames, 10)
    torch.manual_seed(0)
    backbone = build_backbone("vgg19", **TINY.backbone_args)
    config = NormalityConfig("vgg19", dict(TINY.backbone_args), frame_size=SIZE, channels=8)
    # 12 frames, 5 % held back: frame 11 alone
    with pytest.raises(InputError, match=r"gives 1 frame\(s\) to measure the memory's units"):
        learn_normal(backbone, [short], config, holdout=0.05)
    gaussian = dataclasses.replace(config, appearance="gaussian")  # in-sample units: it learns
    assert learn_normal(backbone, [short], gaussian, holdout=0.05).grid == (8, 8)
    assert learn_normal(backbone, [short], config, holdout=0.2).memory.shape == (9 * 64, 8)
    source = tiny_checkpoint(tmp_path / "classifier")
    argv = ["learn-normal", str(source), str(short), "--out", str(tmp_path / "no")]
    code, _, err = run_cli([*argv, "--holdout", "0.05", "--size", "64"], capsys)
    assert_one_error_line(code, err, "hold back more of it")
    assert not (tmp_path / "no").exists()


def test_a_memory_model_finds_the_fight_and_survives_saving(scene, tmp_path):
    root, fight = scene
    torch.manual_seed(0)
    backbone = build_backbone("vgg19", **TINY.backbone_args)
    config = NormalityConfig(
        "vgg19", dict(TINY.backbone_args), "block4_conv4", frame_size=SIZE, channels=8
    )
    model = learn_normal(backbone, [root / "quiet.mp4"], config, holdout=0.25)
    scores, maps = model.scores(root / "mixed.mp4")
    assert scores[fight].mean() > 3 * scores[:30].mean()  # the street as learnt: quiet
    assert detect_unusual(model, root / "quiet.mp4").events == []
    saved = load_normality(save_normality(model, tmp_path / "memory"))
    assert saved.config.appearance == "memory" and torch.equal(saved.memory, model.memory)
    assert np.array_equal(saved.scores(root / "mixed.mp4")[1], maps)


def test_learn_normal_takes_the_fitting_settings_and_records_them(scene, tmp_path, capsys):
    root, _ = scene
    source = tiny_checkpoint(tmp_path / "classifier")
    out = tmp_path / "cam"
    argv = ["learn-normal", str(source), str(root / "quiet.mp4"), "--out", str(out)]
    argv += ["--channels", "8", "--size", "64", "--fitting-frames", "20"]
    settings = ["--neighbourhood", "1", "--shrinkage", "0.5", "--spread-floor", "0"]
    settings += ["--appearance", "gaussian"]
    code, _, err = run_cli([*argv, *settings, "--frame-step", "2"], capsys)
    assert code == 0, err
    document = json.loads((out / "config.json").read_text())
    assert document["config"]["frame_step"] == 2
    assert document["config"]["appearance"] == "gaussian"
    fitting = document["fitting"]
    # 64 frames learnt from (a fifth of 80 held back): every 4th keeps within 20
    assert fitting == {
        "fitting_frames": 20, "frames": 16, "every": 4,
        "neighbourhood": 1, "shrinkage": 0.5, "spread_floor": 0.0,
    }  # fmt: skip
    assert load_normality(out).fitting == fitting
    code, _, err = run_cli([*argv[:5], "--out", str(tmp_path / "no"), "--shrinkage", "2"], capsys)
    assert_one_error_line(code, err, "--shrinkage")
    code, _, err = run_cli([*argv[:5], "--out", str(tmp_path / "no"), "--frame-step", "0"], capsys)
    assert_one_error_line(code, err, "--frame-step")
    nowhere = [*argv[:5], "--out", str(tmp_path / "no")]
    code, _, err = run_cli([*nowhere, "--memory-size", "0"], capsys)
    assert_one_error_line(code, err, "--memory-size")
    code, _, err = run_cli([*nowhere, "--appearance", "knn"], capsys)
    assert_one_error_line(code, err, "appearance must be memory or gaussian")
    assert not (tmp_path / "no").exists()
    # the default: a memory of at most --memory-size features, recorded
    code, _, err = run_cli([*argv, "--memory-size", "100", "--out", str(tmp_path / "m")], capsys)
    assert code == 0, err
    remembered = load_normality(tmp_path / "m")
    assert remembered.config.appearance == "memory" and remembered.memory.shape == (100, 8)
    assert remembered.fitting["memory_size"] == 100 and remembered.fitting["memory"] == 100
    code, out_text, _ = run_cli(["info", str(tmp_path / "m")], capsys)
    assert "memory (100 features)" in out_text  # too few for lists: searched whole
    assert remembered.fitting["memory_lists"] == 32 and remembered.fitting["lists"] == 0


def test_a_frame_score_reads_its_map_at_every_scale_in_their_units():
    maps = np.array([[[4.0, 0.0], [2.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]]])
    # scales of one cell, half the cells (2), all four: the means of the most unusual
    assert scale_values(maps, (0.0, 0.5, 1.0)).tolist() == [[4.0, 3.0, 2.0], [1.0, 1.0, 1.0]]
    config = NormalityConfig(scales=(0.0, 0.5, 1.0))
    model = NormalityModel(config, None, *(torch.zeros(0),) * 5, (2, 2), threshold=3.0)
    model.scale_units = torch.tensor([2.0, 1.0, 0.5])
    # frame 1: 4/2, 3/1, 2/0.5 → 4 (its whole area is unusual); frame 2: 0.5, 1, 2 → 2
    assert model.frame_scores(maps).tolist() == [4.0, 2.0]
    assert model.cell_unit() == 6.0  # one cell alone reaches the threshold at 3 × 2
    for bad in [(0.5,), (0.0, 0.2, 0.1), (0.0, 1.5), ()]:
        with pytest.raises(ConfigError, match="scales must start at 0"):
            NormalityConfig(scales=bad)
    with pytest.raises(ConfigError, match="frame_step must be from 1"):
        NormalityConfig(frame_step=0)


def test_every_kth_frame_is_analysed_and_the_frames_between_keep_its_map(scene, learnt):
    root, _ = scene
    model = dataclasses.replace(learnt, config=dataclasses.replace(learnt.config, frame_step=3))
    frames = read_video(root / "mixed.mp4").data
    scores, maps = model.scores(root / "mixed.mp4")
    # frames 0, 3, 6 … analysed, each against the one analysed before it
    analysed = learnt.maps(frames[::3])
    assert np.allclose(maps, np.repeat(analysed, 3, axis=0)[: len(frames)], atol=1e-4)
    assert np.allclose(scores, model.frame_scores(maps))
    # a stream given the frames in chunks of 7 reads them alike
    run = FrameRun()
    chunks = [model.run_maps(frames[i : i + 7], run) for i in range(0, len(frames), 7)]
    assert np.allclose(np.concatenate(chunks), maps, atol=1e-4)
    assert run.frames == len(frames) and run.analysed_frames == len(analysed)


def test_a_model_saved_before_scales_scores_frames_by_their_largest_cell(scene, learnt, tmp_path):
    from safetensors.torch import load_file, save_file

    from vadx.models.weights import file_sha256

    root, _ = scene
    path = save_normality(learnt, tmp_path / "old")
    weights = path / "normality.safetensors"
    tensors = load_file(str(weights))
    del tensors["scale_units"], tensors["memory"]
    save_file(tensors, str(weights))
    document = json.loads((path / "config.json").read_text())
    for key in ("scales", "frame_step", "sharpness", "appearance"):
        del document["config"][key]
    document["weights"]["sha256"] = file_sha256(weights)
    (path / "config.json").write_text(json.dumps(document))
    old = load_normality(path)
    assert old.config.scales == (0.0,) and old.config.frame_step == 1
    assert old.config.sharpness == 1.0
    assert old.config.appearance == "gaussian" and old.memory.numel() == 0  # as learnt
    scores, maps = old.scores(root / "mixed.mp4")
    assert np.array_equal(scores, maps.reshape(len(maps), -1).max(axis=1))
    assert old.cell_unit() == old.threshold


def test_a_new_model_reads_the_first_layer_at_stride_8_and_records_it(scene, learnt, tmp_path):
    lite = build_backbone("efficientnet_lite0").eval()
    assert (first_fine_layer(lite), lite.cam_layer(fine=True)) == ("block3", "block4")
    vgg = build_backbone("vgg19", **TINY.backbone_args).eval()
    assert (first_fine_layer(vgg), vgg.cam_layer(fine=True)) == ("block3_pool", "block4_conv4")
    # the layer is resolved when the model learns, and saved
    default = dataclasses.replace(learnt.config, layer=None)
    new = learn_normal(learnt.backbone, [scene[0] / "quiet.mp4"], default, holdout=0.25)
    assert new.config.layer == "block3_pool"
    path = save_normality(new, tmp_path / "cam")
    assert json.loads((path / "config.json").read_text())["config"]["layer"] == "block3_pool"
    assert new.projection.shape[0] != learnt.projection.shape[0]  # 16 channels against 32
    # a model saved without a layer (before it was recorded) reads the last at stride 8, as
    # it was learnt: its maps are those of the model that names that layer
    unnamed = dataclasses.replace(learnt, config=default)
    frames = read_video(scene[0] / "mixed.mp4").data[:4]
    assert read_layer(learnt.backbone, default) == "block4_conv4"
    assert np.array_equal(unnamed.maps(frames), learnt.maps(frames))


def test_an_unknown_layer_is_one_error_line_before_any_work(scene, tmp_path, capsys):
    root, _ = scene
    source = tiny_checkpoint(tmp_path / "classifier")
    out = tmp_path / "cam"
    argv = ["learn-normal", str(source), str(root / "quiet.mp4"), "--out", str(out)]
    code, _, err = run_cli([*argv, "--layer", "block99"], capsys)
    assert_one_error_line(code, err, "unknown layer 'block99'")
    assert not out.exists()
    code, _, err = run_cli(
        [*argv, "--layer", "block2_pool", "--channels", "8", "--size", "64"], capsys
    )
    assert code == 0, err
    assert load_normality(out).config.layer == "block2_pool"
    assert load_normality(out).grid == (16, 16)  # stride 4 at 64 px


def test_learning_again_with_footage_judged_normal_equals_learning_from_all_of_it(
    scene, learnt, tmp_path
):
    root, fight = scene
    # the fight, judged normal by an operator: learnt again, the model no longer finds it
    updated = update_normal(learnt, [root / "mixed.mp4"], reason="a rehearsal")
    config = learnt.config  # a Gaussian model's
    plain = {"neighbourhood": 0, "shrinkage": 0.0, "spread_floor": 0.0}
    both = [root / "quiet.mp4", root / "mixed.mp4"]
    anew = learn_normal(learnt.backbone, both, config, holdout=0.25, **plain)
    for name in ("projection", "mean", "precision", "appearance", "motion", "scale_units"):
        assert torch.equal(getattr(updated, name), getattr(anew, name)), name
    assert updated.threshold == anew.threshold and updated.fitting == anew.fitting
    # a memory model's: its memory chosen again from all the footage, of the size it had
    memory = dataclasses.replace(config, appearance="memory")
    remembered = learn_normal(learnt.backbone, both[:1], memory, holdout=0.25, memory_size=500)
    again = update_normal(remembered, both[1:])
    fresh = learn_normal(learnt.backbone, both, memory, holdout=0.25, memory_size=500)
    assert again.memory.shape == (500, 8) and torch.equal(again.memory, fresh.memory)
    assert again.fitting == fresh.fitting and again.threshold == fresh.threshold
    assert [f["path"] for f in updated.footage] == [str(p) for p in both]
    (update,) = updated.updates
    assert update["reason"] == "a rehearsal" and update["replaces"] == learnt.model_id
    assert update["added"] == [
        {"path": str(root / "mixed.mp4"), "sha256": anew.footage[1]["sha256"]}
    ]
    assert (update["threshold_before"], update["threshold_after"]) == (
        learnt.threshold, updated.threshold
    )  # fmt: skip
    before, _ = learnt.scores(root / "mixed.mp4")
    after, _ = updated.scores(root / "mixed.mp4")
    assert after[fight].mean() / updated.threshold < 0.5 * before[fight].mean() / learnt.threshold
    assert learnt.updates == []  # the model given is left as it was
    # saved and loaded, the history stays, and a second update adds to it
    saved = load_normality(save_normality(updated, tmp_path / "cam"))
    assert saved.updates == updated.updates
    extra = tmp_path / "more.mp4"
    write_mp4(extra, render_long(5, [("normal", 24)], SIZE).frames, fps=10)
    assert len(update_normal(saved, [extra]).updates) == 2


def test_learning_again_refuses_what_it_cannot_learn_from(
    scene, learnt, tmp_path, capsys, monkeypatch
):
    root, _ = scene
    copy = tmp_path / "quiet.mp4"
    copy.write_bytes((root / "quiet.mp4").read_bytes())
    model = dataclasses.replace(learnt, footage=[{**learnt.footage[0], "path": str(copy)}])
    path = save_normality(model, tmp_path / "cam")
    argv = ["update-normal", str(path), str(root / "mixed.mp4"), "--out", str(tmp_path / "new")]
    with pytest.raises(InputError, match="already learnt from"):
        update_normal(model, [root / "quiet.mp4"])
    with pytest.raises(InputError, match="give the footage to add"):
        update_normal(model, [])
    with pytest.raises(InputError, match="records no footage"):
        update_normal(dataclasses.replace(model, footage=[]), [root / "mixed.mp4"])
    code, _, err = run_cli([*argv[:2], str(tmp_path / "gone.mp4"), *argv[3:]], capsys)
    assert_one_error_line(code, err, "no footage at")
    copy.write_bytes(copy.read_bytes() + b"\0")
    code, _, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, "changed since the model learnt from it")
    copy.unlink()
    code, _, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, "which the model learnt from, is gone")
    assert not (tmp_path / "new").exists()
    copy.write_bytes((root / "quiet.mp4").read_bytes())
    monkeypatch.chdir(root)  # footage given relative to where the command runs: kept absolute
    argv[2] = "mixed.mp4"
    code, out, err = run_cli([*argv, "--reason", "false alarm, a delivery"], capsys)
    assert code == 0, err
    assert "learnt again from 2 video(s), 1 added" in out
    assert load_normality(tmp_path / "new").footage[1]["path"] == str(root / "mixed.mp4")
    code, out, _ = run_cli(["info", str(tmp_path / "new")], capsys)
    assert "1 video(s) added, false alarm, a delivery; threshold" in " ".join(out.split())


def test_the_console_s_events_judged_normal_are_learnt_from_their_clips(
    scene, learnt, tmp_path, capsys
):
    from tests.test_console_store import alert
    from vadx.console.store import CLIP, EventStore

    root, _ = scene
    store = EventStore(tmp_path / "console")
    judged, unjudged, other = (
        store.record(camera, alert(number, "started", at=1000.0 + number), "sha256:a")
        for number, camera in ((1, "cam3"), (2, "cam3"), (1, "door"))
    )
    for event in (judged, unjudged, other):
        folder = store.footage_folder(event.id)
        folder.mkdir(parents=True)
        (folder / CLIP).write_bytes((root / "mixed.mp4").read_bytes())
        store.set_footage(event.id, folder.relative_to(store.folder).as_posix())
    store.review(judged.id, judged_normal=True)
    store.review(other.id, judged_normal=True)  # another camera's
    store.close()
    model = save_normality(learnt, tmp_path / "cam")
    argv = ["update-normal", str(model), "--console", str(tmp_path / "console")]
    argv += ["--camera", "cam3", "--out", str(tmp_path / "new")]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "learnt again from 2 video(s), 1 added" in out
    copy = tmp_path / "new-footage" / f"cam3-event-{judged.id}.mp4"
    updated = load_normality(tmp_path / "new")
    assert (
        updated.footage[1]["path"] == str(copy)
        and copy.read_bytes() == (root / "mixed.mp4").read_bytes()
    )  # a copy: the console may delete its clips when it needs the room
    # again: nothing judged normal that the model has not learnt
    again = [argv[0], str(tmp_path / "new"), *argv[2:6], "--out", str(tmp_path / "newer")]
    code, _, err = run_cli(again, capsys)
    assert_one_error_line(code, err, "no event of camera cam3")
    code, _, err = run_cli([*argv[:4], "--out", str(tmp_path / "newer")], capsys)
    assert_one_error_line(code, err, "--console and --camera go together")
    code, _, err = run_cli([*argv[:2], "--out", str(tmp_path / "newer")], capsys)
    assert_one_error_line(code, err, "give the footage to add")
    assert not (tmp_path / "newer").exists()
